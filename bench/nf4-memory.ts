// Bench: resident memory of a ≥ 300M-parameter Llama-shaped model loaded fp32 vs loaded 4-bit
// (BitsAndBytesConfig loadIn4bit, NF4, double quant), issue 6 "Speed and memory": target peak RSS
// (4-bit) ≤ 0.25× peak RSS (fp32).
//   npx tsx bench/nf4-memory.ts [--layers 24] [--hidden 1024] [--intermediate 2816] [--T 64] [--keep]
// The parent writes random fp32 weights as a sharded HF folder under /tmp (saveSafetensors, untimed),
// then, for each case, runs a fresh child process (maxRSS is per process) that loads it with
// AutoModelForCausalLM.fromPretrained and runs one forward (B=1, T tokens, with labels: the inference
// graph CausalLM.forward compiles). The child reports RSS after its imports (Node + tsx + our modules +
// onnxruntime), after the load, after the forward, its peak RSS, and the bytes the model holds by kind.
// As bitsandbytes does, only the decoder's nn.Linear weights are quantised; embed_tokens, lm_head and the
// RMSNorm weights are stored float16, as transformers stores them for a 4-bit model loaded without a dtype
// (src/models/float-weights.ts), and cast to fp32 in the graphs. Helpers: bench/lib/random-checkpoint.ts.
// Not here: load-time peak vs model size (load-memory.ts), speed (forward-mfu.ts, lora-step.ts).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AutoModelForCausalLM } from '../src/models/index.js';
import { BitsAndBytesConfig } from '../src/quant/index.js';
import { argOf, checkpointSize, describeShape, llamaConfigJson, shapeFromArgs, writeRandomCheckpoint } from './lib/random-checkpoint.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => argOf(argv, name, dflt);

const TARGET = 0.25;
const MB = 2 ** 20;

// ---- child: load + one forward in a fresh process ------------------------------------------------------

interface ChildResult {
  baselineMB: number;
  afterLoadMB: number;
  afterForwardMB: number;
  peakMB: number;
  embedMB: number;
  lmHeadMB: number;
  normsMB: number;
  /** fp32 decoder linears (the fp32 case) or their packed 4-bit codes + absmax + double-quant state. */
  linearsMB: number;
  /** dtype of embed_tokens / lm_head as held. */
  denseDtype: string;
  loss: number;
  loadS: number;
  forwardS: number;
}

async function child(): Promise<void> {
  const dir = arg('dir', '');
  const quant = argv.includes('--nf4');
  const T = Number(arg('T', '64'));
  const baselineMB = process.memoryUsage().rss / MB;
  const t0 = performance.now();
  const opts: Parameters<typeof AutoModelForCausalLM.fromPretrained>[1] = {};
  if (quant) opts.quantizationConfig = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true });
  const model = await AutoModelForCausalLM.fromPretrained(dir, opts);
  const afterLoadMB = process.memoryUsage().rss / MB;
  const t1 = performance.now();
  const ids = Array.from({ length: T }, (_, i) => (i * 7919 + 13) % model.config.vocabSize);
  const out = await model.forward({ inputIds: [ids], labels: [ids] });
  const t2 = performance.now();
  const afterForwardMB = process.memoryUsage().rss / MB;
  const peakMB = process.resourceUsage().maxRSS / 1024;
  let embed = 0;
  let lmHead = 0;
  let norms = 0;
  let linears = 0;
  let denseDtype = '';
  for (const [k, v] of model.stateDict()) {
    if (k === 'lm_head.weight') denseDtype = v.dtype;
    if (k === 'model.embed_tokens.weight') embed += v.byteLength;
    else if (k === 'lm_head.weight') lmHead += v.byteLength;
    else if (k.endsWith('norm.weight')) norms += v.byteLength;
    else linears += v.byteLength;
  }
  const res: ChildResult = {
    baselineMB,
    afterLoadMB,
    afterForwardMB,
    peakMB,
    embedMB: embed / MB,
    lmHeadMB: lmHead / MB,
    normsMB: norms / MB,
    linearsMB: linears / MB,
    denseDtype,
    loss: out.loss ?? NaN,
    loadS: (t1 - t0) / 1000,
    forwardS: (t2 - t1) / 1000,
  };
  process.stdout.write(`RESULT ${JSON.stringify(res)}\n`);
}

function runChild(dir: string, nf4: boolean, T: number): ChildResult {
  const self = fileURLToPath(import.meta.url);
  const args = ['--import', 'tsx', self, '--child', '--dir', dir, '--T', String(T)];
  if (nf4) args.push('--nf4');
  const p = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = p.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`child (${nf4 ? 'nf4' : 'fp32'}) failed (status ${p.status}):\n${p.stderr.slice(-3000)}`);
  return JSON.parse(line.slice(7)) as ChildResult;
}

// ---- parent ------------------------------------------------------------------------------------------

async function parent(): Promise<void> {
  const shape = shapeFromArgs(argv);
  const T = Number(arg('T', '64'));
  const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');
  const root = mkdtempSync('/tmp/tsft-nf4-memory-');
  try {
    const t0 = performance.now();
    // --model-dir reuses a folder an earlier run kept (--keep): it must have been written with the same shape.
    const dir = arg('model-dir', '') || join(root, 'fp32');
    const ck = arg('model-dir', '') ? checkpointSize(shape) : await writeRandomCheckpoint(dir, shape, 'float32', 4, llamaConfigJson(shape));
    const f = (x: number): string => x.toFixed(0);
    console.log(
      `nf4-memory: ${describeShape(shape)}: ` +
        `${(ck.params / 1e6).toFixed(1)}M params, fp32 ${f(ck.bytes / MB)} MB in ${ck.shardBytes.length} shards (written in ${((performance.now() - t0) / 1000).toFixed(1)} s, untimed)`,
    );
    console.log(`  each case: fresh child process, fromPretrained + one forward (B=1, T=${T}, with labels); load average at start: ${load()}`);
    const fp32 = runChild(dir, false, T);
    const nf4 = runChild(dir, true, T);
    console.log('');
    console.log('| case | RSS after imports | after load | after forward | peak RSS | embed | lm_head | norms | decoder linears | model held | load | forward | loss |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const [name, r] of [['fp32', fp32], ['nf4 + double quant', nf4]] as const) {
      const held = r.embedMB + r.lmHeadMB + r.normsMB + r.linearsMB;
      console.log(
        `| ${name} | ${f(r.baselineMB)} MB | ${f(r.afterLoadMB)} MB | ${f(r.afterForwardMB)} MB | ${f(r.peakMB)} MB | ${f(r.embedMB)} MB ${r.denseDtype} | ${f(r.lmHeadMB)} MB ${r.denseDtype} | ` +
          `${r.normsMB.toFixed(2)} MB | ${f(r.linearsMB)} MB | ${f(held)} MB | ${r.loadS.toFixed(1)} s | ${r.forwardS.toFixed(1)} s | ${r.loss.toFixed(4)} |`,
      );
    }
    const heldOf = (r: ChildResult): number => r.embedMB + r.lmHeadMB + r.normsMB + r.linearsMB;
    const ratio = nf4.peakMB / fp32.peakMB;
    console.log('');
    console.log(`  peak RSS nf4 / fp32: ${f(nf4.peakMB)} / ${f(fp32.peakMB)} MB = ${ratio.toFixed(3)}× vs target ≤ ${TARGET}×: ${ratio <= TARGET ? 'PASS' : 'MISS'}`);
    console.log(`  RSS after forward nf4 / fp32: ${(nf4.afterForwardMB / fp32.afterForwardMB).toFixed(3)}×; (peak − imports) nf4 / fp32: ${((nf4.peakMB - nf4.baselineMB) / (fp32.peakMB - fp32.baselineMB)).toFixed(3)}×`);
    console.log(`  model held nf4 / fp32: ${f(heldOf(nf4))} / ${f(heldOf(fp32))} MB = ${(heldOf(nf4) / heldOf(fp32)).toFixed(3)}×`);
    const linBits = (8 * nf4.linearsMB * MB) / ((fp32.linearsMB * MB) / 4);
    const fullPrec = nf4.embedMB + nf4.lmHeadMB + nf4.normsMB;
    console.log(
      `  composition: the decoder linears go ${f(fp32.linearsMB)} → ${f(nf4.linearsMB)} MB (${linBits.toFixed(3)} bits/weight: 4-bit codes + double-quantised absmax); ` +
        `embed_tokens, lm_head and the norms are not quantised and held in ${nf4.denseDtype} (${f(fullPrec)} MB = ${((100 * fullPrec) / heldOf(nf4)).toFixed(0)}% of the 4-bit model). ` +
        `RSS also carries the process baseline (${f(nf4.baselineMB)} MB after imports), ORT's copy of the weights (memory-mapped external data) and its session memory.`,
    );
    console.log(`  load average at end: ${load()}`);
  } finally {
    if (!argv.includes('--keep')) rmSync(root, { recursive: true, force: true });
    else console.log(`kept ${root}`);
  }
}

if (argv.includes('--child')) await child();
else await parent();
