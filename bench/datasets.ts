// Speed and memory of src/data on a dataset shaped like jtatman/python-code-dataset-500k (issue 3, "Speed and
// memory"): load ≤ 15 s, map to `messages` ≤ 20 s, filter ≤ 5 s, shuffle + trainTestSplit ≤ 3 s, peak RSS
// ≤ 2.5× the raw text size (sum of the UTF-8 byte lengths of every string cell).
// The parent generates the parquet into a temp folder under /tmp with parquet-wasm's arrow-rs writer (zstd,
// 20k-row groups, dictionary encoding on, as pyarrow writes Hub files; our own writer cannot write zstd): columns
// instruction (~200 chars), output (~800 chars, ~3% of rows ≤ 50 so the filter keeps something) and system (~50
// chars, a handful of distinct prompts), made of Python-like lines so zstd compresses them the way it does code.
// Generation is not measured. The figures come from a fresh child process (maxRSS is per process) that uses only
// the public API of src/data: Dataset.fromParquet, map, filter, shuffle, trainTestSplit.
// Times are wall seconds (the targets); CPU seconds are printed too because the machines are shared — compare
// the load average printed with them.
// `--trace` adds where the memory is after each step of the child (RSS, its high-water mark VmHWM, V8 heap
// used/total, external and ArrayBuffer bytes): what docs/data.md's memory analysis is based on.
// Not here: the Hub download path (network) and saveToDisk; see the tests in test/data for correctness.
// Run: npx tsx bench/datasets.ts [--rows 500000] [--file existing.parquet --text-bytes N] [--keep] [--trace]
// (or npm run bench datasets). At 500k rows: ~1 GB of temp file work and ~1.2 GB of RSS in the child.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RecordBatch } from 'apache-arrow';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}

const GROUP = 20_000;
const fmtLoad = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');

// ---------------------------------------------------------------------------------------------------------
// Generation (parent)

/** mulberry32: a tiny seeded generator, so the file is the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ('def return self import from for in if else elif while try except with as class lambda yield ' +
  'print len range list dict str int float None True False data result value items key index count total ' +
  'numbers string file path line lines text word words node tree left right parent child queue stack matrix ' +
  'row col sum max min sorted append extend join split strip open read write json os sys re math random ' +
  'function program write create given calculate find check convert number element array input output user')
  .split(' ');

function makePool(r: () => number, n: number, minLen: number, maxLen: number, code: boolean): string[] {
  const pool: string[] = [];
  const ops = [' = ', '(', ')', '.', ', ', ' + ', ' == ', '[', ']', ': '];
  for (let i = 0; i < n; i++) {
    const target = minLen + Math.floor(r() * (maxLen - minLen));
    let s = code ? ' '.repeat(4 * Math.floor(r() * 3)) : '';
    while (s.length < target) {
      s += WORDS[Math.floor(r() * WORDS.length)]!;
      s += code ? ops[Math.floor(r() * ops.length)]! : ' ';
      if (r() < 0.08) s += String(Math.floor(r() * 1000));
    }
    pool.push(code ? s + '\n' : s);
  }
  return pool;
}

function fill(r: () => number, pool: string[], target: number): string {
  let s = '';
  while (s.length < target) s += pool[Math.floor(r() * pool.length)]!;
  return s.slice(0, target);
}

async function generate(file: string, rows: number): Promise<number> {
  const A = await import('apache-arrow');
  const PW = await import('parquet-wasm');
  const r = rng(20240503);
  const codeLines = makePool(r, 20_000, 15, 70, true);
  const prose = makePool(r, 5_000, 30, 90, false);
  const systems = [
    'Below is an instruction that describes a task.',
    'You are a helpful Python coding assistant.',
    'Write Python code that completes the request below.',
    'You are an expert programmer; answer with Python code.',
    'Below is an instruction. Write a response in Python.',
  ];
  let textBytes = 0;
  const batches: RecordBatch<any>[] = [];
  for (let s = 0; s < rows; s += GROUP) {
    const n = Math.min(GROUP, rows - s);
    const ins: string[] = new Array(n);
    const out: string[] = new Array(n);
    const sys: string[] = new Array(n);
    for (let i = 0; i < n; i++) {
      ins[i] = fill(r, prose, 100 + Math.floor(r() * 200));
      out[i] = r() < 0.03 ? fill(r, codeLines, 10 + Math.floor(r() * 41)) : fill(r, codeLines, 400 + Math.floor(r() * 800));
      sys[i] = systems[Math.floor(r() * systems.length)]!;
      textBytes += ins[i]!.length + out[i]!.length + sys[i]!.length; // ASCII: chars = UTF-8 bytes
    }
    const t = new A.Table({
      instruction: A.vectorFromArray(ins, new A.Utf8()),
      output: A.vectorFromArray(out, new A.Utf8()),
      system: A.vectorFromArray(sys, new A.Utf8()),
    });
    batches.push(...t.batches);
  }
  const props = new PW.WriterPropertiesBuilder()
    .setCompression(PW.Compression.ZSTD)
    .setMaxRowGroupSize(GROUP)
    .setDictionaryEnabled(true)
    .build();
  const ipc = A.tableToIPC(new A.Table(batches), 'stream');
  batches.length = 0;
  const bytes = PW.writeParquet(PW.Table.fromIPCStream(ipc), props);
  writeFileSync(file, bytes);
  return textBytes;
}

// ---------------------------------------------------------------------------------------------------------
// Measurement (child)

interface Phase {
  wallS: number;
  cpuS: number;
}
/** Memory after one step of the child, in MiB. */
interface MemStage {
  step: string;
  rss: number;
  hwm: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}
interface ChildResult {
  trace?: MemStage[];
  baselineMB: number;
  peakMB: number;
  rows: number;
  kept: number;
  train: number;
  test: number;
  load0: string;
  load1: string;
  phases: Record<'load' | 'map' | 'filter' | 'split', Phase>;
}

function timed<T>(f: () => T): [T, Phase] {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const v = f();
  const wallS = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return [v, { wallS, cpuS: (c.user + c.system) / 1e6 }];
}

async function timedAsync<T>(f: () => Promise<T>): Promise<[T, Phase]> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const v = await f();
  const wallS = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return [v, { wallS, cpuS: (c.user + c.system) / 1e6 }];
}

/** VmHWM (peak RSS so far) from /proc on Linux; maxRSS elsewhere. */
function highWaterMB(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS / 1024;
}

function memStage(step: string): MemStage {
  const u = process.memoryUsage();
  const mb = (x: number): number => Math.round((x / 2 ** 20) * 10) / 10;
  return { step, rss: mb(u.rss), hwm: Math.round(highWaterMB() * 10) / 10, heapUsed: mb(u.heapUsed), heapTotal: mb(u.heapTotal), external: mb(u.external), arrayBuffers: mb(u.arrayBuffers) };
}

async function child(): Promise<void> {
  const { Dataset } = await import('../src/data/index.js');
  const file = arg('file', '');
  const trace: MemStage[] | undefined = process.argv.includes('--trace') ? [] : undefined;
  const mark = (step: string): void => void trace?.push(memStage(step));
  const baselineMB = process.memoryUsage().rss / 2 ** 20;
  mark('after imports');
  const load0 = fmtLoad();
  const [ds, load] = await timedAsync(() => Dataset.fromParquet(file));
  mark('load');
  const [conv, map] = timed(() => ds.map((s) => ({
    messages: [
      { role: 'system', content: s.system },
      { role: 'user', content: s.instruction },
      { role: 'assistant', content: s.output },
    ],
  })));
  mark('map');
  const [short, filter] = timed(() => ds.filter((s) => s.output.length <= 50));
  mark('filter');
  const [parts, split] = timed(() => conv.shuffle({ seed: 42 }).trainTestSplit({ testSize: 0.1, seed: 42 }));
  // Touch a row of each result so nothing lazy goes unmeasured in the RSS figure.
  if (!conv.get(-1).messages || !parts.train.get(0).messages || !parts.test.get(-1).messages) throw new Error('empty messages');
  mark('shuffle + split');
  const res: ChildResult = {
    ...(trace ? { trace } : {}),
    baselineMB,
    peakMB: process.resourceUsage().maxRSS / 1024,
    rows: ds.numRows,
    kept: short.numRows,
    train: parts.train.numRows,
    test: parts.test.numRows,
    load0,
    load1: fmtLoad(),
    phases: { load, map, filter, split },
  };
  process.stdout.write(`RESULT ${JSON.stringify(res)}\n`);
}

function runChild(file: string): ChildResult {
  const self = fileURLToPath(import.meta.url);
  const extra = process.argv.includes('--trace') ? ['--trace'] : [];
  const p = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', '--file', file, ...extra], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
    env: { ...process.env, TS_FINETUNE_NO_PROGRESS: '1' },
  });
  const line = p.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`child failed (status ${p.status}):\n${p.stderr.slice(-3000)}`);
  return JSON.parse(line.slice(7)) as ChildResult;
}

// ---------------------------------------------------------------------------------------------------------

async function parent(): Promise<number> {
  const rows = Number(arg('rows', '500000'));
  let file = arg('file', '');
  let textBytes = Number(arg('text-bytes', '0'));
  let dir = '';
  if (!file) {
    dir = mkdtempSync(join(tmpdir(), 'ts-finetune-bench-datasets-'));
    file = join(dir, 'python-code-like.parquet');
    const t0 = performance.now();
    textBytes = await generate(file, rows);
    console.log(`generated ${file}: ${rows} rows, ${(statSync(file).size / 2 ** 20).toFixed(1)} MiB zstd, ` +
      `${(textBytes / 1e6).toFixed(1)} MB of text, in ${((performance.now() - t0) / 1000).toFixed(1)} s (not measured)`);
  } else if (!textBytes) {
    throw new Error('--file needs --text-bytes (the raw text size printed when it was generated)');
  }
  try {
    const r = runChild(file);
    const scale = r.rows / 500_000;
    const rowsNote = r.rows === 500_000 ? '' : ` (targets scaled linearly to ${r.rows} rows: indicative only, fixed costs dominate small runs)`;
    console.log(`\nsrc/data on ${r.rows} rows${rowsNote}; kept by filter ${r.kept}, split train ${r.train} / test ${r.test}`);
    console.log(`load average (1/5/15 min): before ${r.load0}, after ${r.load1}`);
    console.log('');
    console.log('step                         wall s   cpu s   target      result');
    let misses = 0;
    const row = (name: string, p: Phase, targetS: number): void => {
      const t = targetS * scale;
      const ok = p.wallS <= t;
      if (!ok) misses++;
      console.log(`${name.padEnd(28)} ${p.wallS.toFixed(2).padStart(6)}  ${p.cpuS.toFixed(2).padStart(6)}   ≤ ${t.toFixed(2).padStart(5)} s   ${ok ? 'PASS' : 'MISS'}`);
    };
    row('load (Dataset.fromParquet)', r.phases.load, 15);
    row('map to messages', r.phases.map, 20);
    row('filter output.length <= 50', r.phases.filter, 5);
    row('shuffle + trainTestSplit', r.phases.split, 3);
    const textMB = textBytes / 2 ** 20;
    const ratio = r.peakMB / textMB;
    const ok = ratio <= 2.5;
    if (!ok) misses++;
    console.log(`peak RSS                     ${r.peakMB.toFixed(0)} MiB = ${ratio.toFixed(2)}× text (${textMB.toFixed(0)} MiB)   ≤ 2.50×   ${ok ? 'PASS' : 'MISS'}`);
    console.log(`  (baseline RSS after imports ${r.baselineMB.toFixed(0)} MiB; peak − baseline = ${((r.peakMB - r.baselineMB) / textMB).toFixed(2)}× text)`);
    if (r.trace) {
      console.log('\nmemory after each step, MiB     rss     hwm  heapUsed heapTotal  external  arrayBuffers');
      for (const m of r.trace) {
        const f = (x: number): string => x.toFixed(0).padStart(7);
        console.log(`  ${m.step.padEnd(28)}${f(m.rss)} ${f(m.hwm)}   ${f(m.heapUsed)}   ${f(m.heapTotal)}   ${f(m.external)}       ${f(m.arrayBuffers)}`);
      }
    }
    return misses;
  } finally {
    if (dir && !process.argv.includes('--keep')) rmSync(dir, { recursive: true, force: true });
    else if (dir) console.log(`kept ${file} (--file ${file} --text-bytes ${textBytes})`);
  }
}

if (process.argv.includes('--child')) await child();
else process.exitCode = (await parent()) ? 1 : 0;
