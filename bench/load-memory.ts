// Peak resident memory while AutoModelForCausalLM.fromPretrained loads a sharded Llama-shaped checkpoint,
// against the size of what it loaded (issue 6: peak RSS during load ≤ 1.3× the loaded model).
// The parent writes random checkpoints to a temp folder under /tmp (fp32 in 3 shards, the same weights in
// bf16 in 2 shards), then loads each in a fresh child process (maxRSS is per process):
//   fp32         fp32 on disk → fp32 host weights
//   bf16         bf16 on disk → fp32 host weights (the CPU computes in fp32)
//   nf4-dq       fp32 on disk → NF4 + double quant for the decoder linears, fp32 embeddings / norms / lm_head
// Each child reports its RSS after the imports (the baseline: Node + tsx + our modules), the peak RSS after
// the load, and the bytes the model holds (dense fp32 tensors + packed 4-bit codes and absmax).
// Run: node --import tsx bench/load-memory.ts [--layers 8] [--hidden 1024] [--cases fp32,bf16,nf4-dq] [--keep]
// (about a minute on the shared 2-core VM: writing ~1 GB of random weights, three loads, one quantisation).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AutoModelForCausalLM } from '../src/models/index.js';
import { BitsAndBytesConfig } from '../src/quant/index.js';
import { llamaConfigJson, writeRandomCheckpoint, type Shape } from './lib/random-checkpoint.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}

/** The library's Llama config.json for `s`, with the dtype the shards are written in. */
function config(s: Shape, dtype: string): Record<string, unknown> {
  return { ...llamaConfigJson(s), torch_dtype: dtype };
}


interface ChildResult {
  baselineMB: number;
  peakMB: number;
  modelMB: number;
  denseMB: number;
  quantMB: number;
  loadS: number;
}

async function child(): Promise<void> {
  const dir = arg('dir', '');
  const quant = arg('quant', '');
  const baselineMB = process.memoryUsage().rss / 2 ** 20;
  const t0 = performance.now();
  const opts: Parameters<typeof AutoModelForCausalLM.fromPretrained>[1] = {};
  if (quant) opts.quantizationConfig = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true });
  const model = await AutoModelForCausalLM.fromPretrained(dir, opts);
  const loadS = (performance.now() - t0) / 1000;
  const peakMB = process.resourceUsage().maxRSS / 1024;
  let dense = 0;
  for (const t of model.dense.values()) dense += t.byteLength;
  let quantBytes = 0;
  for (const [k, v] of model.stateDict()) if (!model.dense.has(k)) quantBytes += v.byteLength;
  const res: ChildResult = { baselineMB, peakMB, modelMB: (dense + quantBytes) / 2 ** 20, denseMB: dense / 2 ** 20, quantMB: quantBytes / 2 ** 20, loadS };
  process.stdout.write(`RESULT ${JSON.stringify(res)}\n`);
}

function runChild(dir: string, quant: string): ChildResult {
  const self = fileURLToPath(import.meta.url);
  const args = ['--import', 'tsx', self, '--child', '--dir', dir];
  if (quant) args.push('--quant', quant);
  const p = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = p.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`child (${dir} ${quant}) failed (status ${p.status}):\n${p.stderr.slice(-3000)}`);
  return JSON.parse(line.slice(7)) as ChildResult;
}

async function parent(): Promise<void> {
  const hidden = Number(arg('hidden', '1024'));
  const shape: Shape = {
    layers: Number(arg('layers', '8')),
    hidden,
    heads: hidden / 64,
    kvHeads: hidden / 128,
    intermediate: Math.round((hidden * 11) / 4 / 64) * 64,
    vocab: 32000,
  };
  const cases = arg('cases', 'fp32,bf16,nf4-dq').split(',');
  const root = mkdtempSync('/tmp/tsft-load-memory-');
  try {
    const t0 = performance.now();
    const fp32Dir = join(root, 'fp32');
    const bf16Dir = join(root, 'bf16');
    const fp32 = await writeRandomCheckpoint(fp32Dir, shape, 'float32', 3, config(shape, 'float32'));
    const bf16 = cases.includes('bf16') ? await writeRandomCheckpoint(bf16Dir, shape, 'bfloat16', 2, config(shape, 'bfloat16')) : undefined;
    const mb = (b: number): string => (b / 2 ** 20).toFixed(0);
    console.log(
      `Llama shape: ${shape.layers} layers, C=${shape.hidden}, H=${shape.heads}, K=${shape.kvHeads}, F=${shape.intermediate}, V=${shape.vocab} ` +
        `(${(fp32.bytes / 4 / 1e6).toFixed(1)}M params); fp32 ${mb(fp32.bytes)} MB in shards [${fp32.shardBytes.map(mb).join(', ')}] MB` +
        (bf16 ? `, bf16 ${mb(bf16.bytes)} MB in [${bf16.shardBytes.map(mb).join(', ')}] MB` : '') +
        ` (written in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
    console.log('case     baseline  peak RSS  model held  peak/model  (peak-baseline)/model  load');
    for (const c of cases) {
      const r = c === 'bf16' ? runChild(bf16Dir, '') : c === 'nf4-dq' ? runChild(fp32Dir, 'nf4-dq') : runChild(fp32Dir, '');
      const held = c === 'nf4-dq' ? `${r.modelMB.toFixed(0)} MB (${r.denseMB.toFixed(0)} fp32 + ${r.quantMB.toFixed(0)} 4-bit)` : `${r.modelMB.toFixed(0)} MB`;
      console.log(
        `${c.padEnd(8)} ${r.baselineMB.toFixed(0).padStart(5)} MB ${r.peakMB.toFixed(0).padStart(6)} MB  ${held.padEnd(10)}  ` +
          `${(r.peakMB / r.modelMB).toFixed(2)}×       ${((r.peakMB - r.baselineMB) / r.modelMB).toFixed(2)}×      ${r.loadS.toFixed(1)} s`,
      );
      if (c === 'nf4-dq') {
        const largest = Math.max(...fp32.shardBytes) / 2 ** 20;
        console.log(
          `         4-bit: peak − baseline = ${(r.peakMB - r.baselineMB).toFixed(0)} MB vs largest fp32 shard ${largest.toFixed(0)} MB + model ${r.modelMB.toFixed(0)} MB ` +
            `= ${(largest + r.modelMB).toFixed(0)} MB; vs fp32 model ${mb(fp32.bytes)} MB: ${((r.peakMB - r.baselineMB) / (fp32.bytes / 2 ** 20)).toFixed(2)}×`,
        );
      }
    }
  } finally {
    if (!process.argv.includes('--keep')) rmSync(root, { recursive: true, force: true });
    else console.log(`kept ${root}`);
  }
}

if (process.argv.includes('--child')) await child();
else await parent();
