// Bench: peak resident memory of one LoRA / QLoRA training step on a ≥ 300M-parameter Llama, with and
// without gradient checkpointing (issue 7 "Speed and memory": QLoRA peak RSS ≤ 0.35× fp32-LoRA peak, and
// gradient checkpointing ≤ 0.5× without).
//   npx tsx bench/lora-memory.ts [--B 2] [--T 1024] [--cases fp32,fp32+ckpt,nf4,nf4+ckpt] [--layers 24]
//                                [--keep | --model-dir DIR] [--attention-block ROWS] [--detail] [--no-prepack] [--steps N]
// The parent writes random fp32 weights as a sharded HF folder under /tmp (bench/lib/random-checkpoint.ts,
// the 348.7M shape of bench/nf4-memory.ts), then runs each case in a fresh child process (maxRSS is per
// process): fromPretrained (fp32, or BitsAndBytesConfig NF4 + double quant) → getPeftModel (LoRA r=16,
// α=32, 'all-linear': the 7 linears of every layer) → [gradientCheckpointingEnable()] → one training step
// exactly as the trainer runs it for gradientAccumulationSteps = 1 (as bench/lora-step.ts): StepProgram
// (forward, loss, backward, gradients out) → global-norm clip → AdamW (adamw_torch).
// Why B=2, T=1024 by default: there the activations a step keeps without checkpointing (per layer and
// sequence ≈ 16 heads × T² attention scores and probabilities + ~20 [T, C] / [T, F] tensors: ≈ 7.8 GB over
// 24 layers) are about twice everything else (fp32 weights held by JS and ORT ≈ 4 GB), as in real
// fine-tuning, so the checkpointing comparison measures something. The QLoRA comparison depends on the
// opposite (weights dominating): at B=1, T=1024 the checkpointed QLoRA / fp32-LoRA ratio is lower
// (docs/models.md "Memory" has both runs). Each case's RSS after each phase shows where the memory goes.
// `--attention-block` overrides the step graphs' causal attention block (query rows; 0 = one block).
// `--detail` prints, per case and phase, anonymous memory vs memory-mapped file pages (rssDetail).
// `--no-prepack` runs the steps with ORT's `session.disable_prepacking` (no packed copies of fp32 weights).
// `--fresh-grads`: a new gradient vector per step (before the trainer's reused buffer); `--copy-params`: the
// trainable values copied into the worker each step (before the trainer lent them); `--in-process`: no worker.
// `--no-arena` turns ORT's CPU arena off; `--maps` prints the 10 mappings holding the most resident memory.
// Not here: speed (lora-step.ts), the forward-only NF4 ratio (nf4-memory.ts).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AutoModelForCausalLM } from '../src/models/index.js';
import { StepProgram } from '../src/models/program.js';
import { causalLmObjective } from '../src/models/step-graph.js';
import { clipCoefficient, globalL2Norm } from '../src/optim/grad-clip.js';
import { createOptimizer } from '../src/optim/create.js';
import { LoraConfig, getPeftModel } from '../src/peft/index.js';
import { BitsAndBytesConfig } from '../src/quant/index.js';
import { randomBatch } from './lib/llama-50m.js';
import { argOf, checkpointSize, describeShape, llamaConfigJson, shapeFromArgs, writeRandomCheckpoint } from './lib/random-checkpoint.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => argOf(argv, name, dflt);
const flag = (name: string): boolean => argv.includes(`--${name}`);
const MB = 2 ** 20;
const QLORA_TARGET = 0.35;
const CKPT_TARGET = 0.5;
const ALL_CASES = ['fp32', 'fp32+ckpt', 'nf4', 'nf4+ckpt'] as const;
type CaseName = (typeof ALL_CASES)[number];

// ---- child: one case in a fresh process ----------------------------------------------------------------

interface Phase {
  name: string;
  rssMB: number;
  /** Peak RSS of the process so far (after this phase). */
  peakMB: number;
  seconds: number;
}

interface ChildResult {
  phases: Phase[];
  peakMB: number;
  trainable: number;
  loss: number;
}

/**
 * Where the RSS is (--detail): anonymous memory (JS heap, ArrayBuffers, ORT's arena and packed weights)
 * vs file pages (external-data files ORT memory-maps: the 4-bit weights it reads), and the ArrayBuffers
 * among the anonymous memory (the host's weights, trainable values, optimizer state).
 */
function rssDetail(): string {
  const kb = (k: string): number => Number(/(\d+) kB/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8').split('\n').find((l) => l.startsWith(`${k}:`)) ?? '')?.[1] ?? NaN);
  const mb = (x: number): string => `${Math.round(x / 1024)} MB`;
  return `anonymous ${mb(kb('Anonymous'))} (ArrayBuffers ${Math.round(process.memoryUsage().arrayBuffers / MB)} MB), file pages ${mb(kb('Rss') - kb('Anonymous'))}`;
}

/** The 10 mappings with the most resident memory (--maps): an arena region shows as one large anonymous mapping. */
function largestMappings(): string {
  const maps: { what: string; size: number; rss: number }[] = [];
  let cur: { what: string; size: number; rss: number } | undefined;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      cur = { what: head[3] || 'anon', size: (parseInt(head[2]!, 16) - parseInt(head[1]!, 16)) / MB, rss: 0 };
      maps.push(cur);
    } else if (cur && line.startsWith('Rss:')) cur.rss = Number(/(\d+)/.exec(line)![1]) / 1024;
  }
  return maps.sort((a, b) => b.rss - a.rss).slice(0, 10).map((m) => `${m.what.split('/').pop()} ${m.rss.toFixed(0)}/${m.size.toFixed(0)}`).join(', ');
}

async function child(): Promise<void> {
  const dir = arg('dir', '');
  const name = arg('case', 'fp32') as CaseName;
  const B = Number(arg('B', '2'));
  const T = Number(arg('T', '1024'));
  const phases: Phase[] = [];
  let t = performance.now();
  const mark = (phase: string): void => {
    const now = performance.now();
    phases.push({ name: phase, rssMB: process.memoryUsage().rss / MB, peakMB: process.resourceUsage().maxRSS / 1024, seconds: (now - t) / 1000 });
    if (flag('detail')) process.stderr.write(`  ${name} after ${phase}: ${rssDetail()}\n`);
    if (flag('maps')) process.stderr.write(`  ${name} after ${phase}: largest mappings ${largestMappings()}\n`);
    t = now;
  };
  mark('imports');
  const opts: Parameters<typeof AutoModelForCausalLM.fromPretrained>[1] = {};
  if (name.startsWith('nf4')) opts.quantizationConfig = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true });
  const model = await AutoModelForCausalLM.fromPretrained(dir, opts);
  if (name.endsWith('+ckpt')) model.gradientCheckpointingEnable();
  mark('load');
  const peft = getPeftModel(model, new LoraConfig({ r: 16, loraAlpha: 32, targetModules: 'all-linear', taskType: 'CAUSAL_LM' }));
  const block = arg('attention-block', '');
  const formulation = block === '' ? {} : { attentionBlock: Number(block) };
  const session = {
    ...(flag('no-prepack') ? { sessionConfig: { 'session.disable_prepacking': '1' } } : {}),
    ...(flag('no-arena') ? { enableCpuMemArena: false } : {}),
    ...(flag('in-process') ? { worker: false } : {}),
  };
  const lendFloat32 = flag('no-lend-f32') ? { lendFloat32: false } : {};
  const prog = await StepProgram.compile(peft, { B, T, objective: causalLmObjective, withGrad: true, training: true, formulation, ...lendFloat32 }, session);
  let params = peft.trainableValues(prog.step.layout);
  const opt = await createOptimizer('adamw_torch', params.length, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
  mark('compile');
  // The trainer's optimizer step for one micro-batch (src/train/trainer.ts, accumulation 1); `--steps N`
  // runs more, each its own phase (the first step pays ORT's first-run costs).
  let gradsBuf: Float32Array = new Float32Array(params.length);
  const step = async (): Promise<number> => {
    const res = await prog.run(randomBatch(model.config, B, T), params, {
      ...(flag('fresh-grads') ? {} : { gradsInto: gradsBuf }),
      ...(flag('copy-params') ? {} : { lendParams: (p: Float32Array) => (params = p) }),
    });
    const grads = (gradsBuf = res.grads!);
    const coef = clipCoefficient(globalL2Norm([grads]), 1.0);
    if (coef < 1) for (let i = 0; i < grads.length; i++) grads[i]! *= coef;
    await opt.step(params, grads, 1e-4);
    return res.loss;
  };
  const loss = await step();
  mark('step');
  for (let i = 2; i <= Number(arg('steps', '1')); i++) {
    await step();
    mark(`step ${i}`);
  }
  const out: ChildResult = { phases, peakMB: process.resourceUsage().maxRSS / 1024, trainable: params.length, loss };
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`);
  await prog.release();
  await opt.release();
}

function runChild(dir: string, name: CaseName, B: number, T: number): ChildResult {
  const self = fileURLToPath(import.meta.url);
  const args = ['--import', 'tsx', self, '--child', '--dir', dir, '--case', name, '--B', String(B), '--T', String(T)];
  if (flag('detail')) args.push('--detail');
  if (flag('no-prepack')) args.push('--no-prepack');
  if (flag('no-lend-f32')) args.push('--no-lend-f32');
  if (flag('no-arena')) args.push('--no-arena');
  if (flag('in-process')) args.push('--in-process');
  if (flag('fresh-grads')) args.push('--fresh-grads');
  if (flag('copy-params')) args.push('--copy-params');
  if (flag('maps')) args.push('--maps');
  args.push('--steps', arg('steps', '1'));
  const block = arg('attention-block', '');
  if (block !== '') args.push('--attention-block', block);
  const p = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = p.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (flag('detail') || flag('maps')) process.stderr.write(p.stderr.split('\n').filter((l) => l.startsWith('  ') && l.includes(' after ')).join('\n') + '\n');
  if (!line) throw new Error(`child (${name}) failed (status ${p.status}, signal ${p.signal}):\n${p.stderr.slice(-3000)}`);
  return JSON.parse(line.slice(7)) as ChildResult;
}

// ---- parent ------------------------------------------------------------------------------------------

async function parent(): Promise<void> {
  const shape = shapeFromArgs(argv);
  const B = Number(arg('B', '2'));
  const T = Number(arg('T', '1024'));
  const cases = arg('cases', ALL_CASES.join(',')).split(',') as CaseName[];
  for (const c of cases) if (!ALL_CASES.includes(c)) throw new Error(`unknown case '${c}' (known: ${ALL_CASES.join(', ')})`);
  const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');
  const root = mkdtempSync('/tmp/tsft-lora-memory-');
  const f = (x: number): string => x.toFixed(0);
  try {
    const t0 = performance.now();
    // --model-dir reuses a folder an earlier run kept (--keep): it must have been written with the same shape.
    const dir = arg('model-dir', '') || join(root, 'fp32');
    const ck = arg('model-dir', '') ? checkpointSize(shape) : await writeRandomCheckpoint(dir, shape, 'float32', 4, llamaConfigJson(shape));
    console.log(
      `lora-memory: ${describeShape(shape)}: ${(ck.params / 1e6).toFixed(1)}M params, fp32 ${f(ck.bytes / MB)} MB in ${ck.shardBytes.length} shards ` +
        `(written in ${((performance.now() - t0) / 1000).toFixed(1)} s, untimed)`,
    );
    console.log(
      `  each case: fresh child process, fromPretrained → getPeftModel(LoRA r=16, α=32, all-linear) → one training step ` +
        `(StepProgram forward+backward, clip, adamw_torch) at B=${B}, T=${T}; load average at start: ${load()}`,
    );
    const results = new Map<CaseName, ChildResult>();
    for (const c of cases) results.set(c, runChild(dir, c, B, T));
    console.log('');
    const phaseNames = results.values().next().value?.phases.map((p) => p.name) ?? [];
    console.log(`| case | ${phaseNames.map((p) => `RSS after ${p} (peak so far)`).join(' | ')} | peak RSS | trainable | loss | load s | compile s | step s | later steps s |`);
    console.log(`|---|${phaseNames.map(() => '---:').join('|')}|---:|---:|---:|---:|---:|---:|---:|`);
    for (const [c, r] of results) {
      const cells = r.phases.map((p) => `${f(p.rssMB)} (${f(p.peakMB)}) MB`);
      const sec = (n: string): string => (r.phases.find((p) => p.name === n)?.seconds ?? NaN).toFixed(1);
      console.log(`| ${c} | ${cells.join(' | ')} | **${f(r.peakMB)} MB** | ${(r.trainable / 1e6).toFixed(2)}M | ${r.loss.toFixed(4)} | ${sec('load')} | ${sec('compile')} | ${sec('step')} | ${r.phases.filter((p) => p.name.startsWith('step ')).map((p) => p.seconds.toFixed(1)).join(', ') || '–'} |`);
    }
    console.log('');
    const ratio = (a: CaseName, b: CaseName, target: number, what: string): void => {
      const ra = results.get(a);
      const rb = results.get(b);
      if (!ra || !rb) return;
      const x = ra.peakMB / rb.peakMB;
      console.log(`  ${what}: ${a} / ${b} = ${f(ra.peakMB)} / ${f(rb.peakMB)} MB = ${x.toFixed(3)}× vs target ≤ ${target}×: ${x <= target ? 'PASS' : 'MISS'}`);
    };
    ratio('nf4+ckpt', 'fp32+ckpt', QLORA_TARGET, 'QLoRA vs fp32-LoRA, both checkpointed (the QLoRA recipe)');
    ratio('nf4', 'fp32', QLORA_TARGET, 'QLoRA vs fp32-LoRA, neither checkpointed');
    ratio('fp32+ckpt', 'fp32', CKPT_TARGET, 'gradient checkpointing vs without, fp32-LoRA');
    ratio('nf4+ckpt', 'nf4', CKPT_TARGET, 'gradient checkpointing vs without, QLoRA');
    console.log(`  load average at end: ${load()}`);
  } finally {
    if (!argv.includes('--keep')) rmSync(root, { recursive: true, force: true });
    else console.log(`kept ${root}`);
  }
}

if (argv.includes('--child')) await child();
else await parent();
