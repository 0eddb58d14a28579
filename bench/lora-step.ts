// Bench: one full LoRA training step (forward, backward, AdamW) on the 50M-parameter Llama shape of issues
// 6/7 (8 layers, C=512, H=8, K=4, F=1376, V=32000; LoRA r=16 on all 7 linears; B=4, T=256), against the
// CPU's FMA peak measured in the same run (bench/fma-peak.c, compiled here with g++).
//   npx tsx bench/lora-step.ts [--steps 5] [--warmup 2] [--variants baseline,final] [--profile DIR]
//                              [--isolate] [--ort-threads N] [--layers 8] [--B 4] [--T 256] [--no-fma]
//                              [--torch [--torch-blas DIR]]
// The step is the trainer's (src/train/trainer.ts, gradientAccumulationSteps = 1): StepProgram.run →
// grads out → global norm + clip in JS → adamw_torch session. Weights are random, built in memory.
// Variants (formulation and session options) run interleaved step by step in ONE process, so machine
// noise (±10%, more while other engineers run tests) hits all alike; medians and ratios are reported.
// `--isolate` runs each variant alone in a child process instead (peak RSS is per process; the MALLOC_*
// variants need their own process too). See bench/README.md and docs/performance.md.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CausalLMConfig } from '../src/models/config.js';
import { StepProgram, type BatchFeeds } from '../src/models/program.js';
import { causalLmObjective, type StepGraphOptions } from '../src/models/step-graph.js';
import type { NnFormulation } from '../src/nn/formulation.js';
import { fmaPeak, llamaConfig, randomBatch, randomModel } from './lib/llama-50m.js';
import { clipCoefficient, globalL2Norm } from '../src/optim/grad-clip.js';
import { createOptimizer } from '../src/optim/create.js';
import type { Optimizer, OptimizerOptions } from '../src/optim/optimizer.js';
import { LoraConfig, getPeftModel, type PeftModel } from '../src/peft/index.js';
import type { SessionOptions } from '../src/runtime/index.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const flag = (n: string): boolean => argv.includes(`--${n}`);
const arg = (n: string, d: string): string => {
  const i = argv.indexOf(`--${n}`);
  const v = i >= 0 ? argv[i + 1] : undefined;
  return v !== undefined && !v.startsWith('--') ? v : d;
};

// ---- variants ------------------------------------------------------------------------------------------

/** The MALLOC_* settings DESIGN.md measured for the process that runs ORT (fresh output buffers). */
const MALLOC_ENV = {
  MALLOC_MMAP_THRESHOLD_: '1073741824',
  MALLOC_TRIM_THRESHOLD_: '4294967295',
  MALLOC_TOP_PAD_: '268435456',
};

interface Variant {
  /** nn formulation overrides (src/nn/formulation.ts); {} = the library's defaults. */
  formulation: Partial<NnFormulation>;
  session: SessionOptions;
  /** Optimizer option overrides (e.g. the AdamW engine). */
  optimizer?: Partial<OptimizerOptions>;
  /** Step graph option overrides (e.g. opaqueShapes). */
  step?: Partial<StepGraphOptions>;
  /** Needs its own process with these environment variables (only with --isolate). */
  env?: Record<string, string>;
  /** Copy the trainable values to the worker and the gradients back each step (before session 8). */
  copies?: boolean;
  about: string;
}

/** The formulation the library had before this bench's changes (HEAD at the start of issue 7's speed work). */
const BEFORE: Partial<NnFormulation> = { rope: 'primitives', rmsNorm: 'primitives', attention: 'grouped' };

/** The library's defaults at the start of the second round of speed work (issue 7, session 2). */
const ROUND1: Partial<NnFormulation> = { loraInput: 'separate' };

const VARIANTS: Record<string, Variant> = {
  round1: { formulation: ROUND1, session: {}, optimizer: { engine: 'graph' }, about: 'the defaults after round 1: AdamW as an ORT graph, one LoRA A GEMM per module' },
  'adamw-graph': { formulation: {}, session: {}, optimizer: { engine: 'graph' }, about: 'final with the AdamW update as an ORT graph' },
  'weights-in-memory': { formulation: {}, session: { externalDataVia: 'memory' }, about: 'final with the weights handed to ORT as buffers instead of memory-mapped files' },
  'lora-separate': { formulation: { loraInput: 'separate' }, session: {}, about: 'final with one LoRA A GEMM per module' },
  baseline: { formulation: { ...BEFORE, ...ROUND1 }, session: {}, optimizer: { engine: 'graph' }, about: 'RoPE and RMSNorm from primitives, grouped attention with broadcast K/V (before)' },
  final: { formulation: {}, session: {}, about: 'the library defaults now' },
  'head-chunked': { formulation: { lmHeadLoss: 'chunked' }, session: {}, about: 'final with the head + loss in chunks of 256 tokens (kernels/lm-head-loss.ts, as under checkpointing)' },
  'head-1024': { formulation: { lmHeadLoss: 'chunked', lmHeadChunkBytes: 1024 * 4 * 32000 }, session: {}, about: 'final with the head + loss as kernels/lm-head-loss.ts in one chunk' },
  'final+malloc': { formulation: {}, session: {}, env: MALLOC_ENV, about: 'final in a process with the MALLOC_* settings' },
  'rope-fused': { formulation: { ...BEFORE, rope: 'fused' }, session: {}, about: 'baseline + com.microsoft RotaryEmbedding' },
  'rmsnorm-fused': { formulation: { ...BEFORE, rmsNorm: 'fused' }, session: {}, about: 'baseline + SimplifiedLayerNormalization' },
  'attn-stacked': { formulation: { ...BEFORE, attention: 'stacked' }, session: {}, about: 'baseline + query heads stacked as GEMM rows' },
  'mempattern-on': { formulation: {}, session: { enableMemPattern: true }, about: 'final with ORT memory patterns on' },
  'no-spin': { formulation: {}, session: { sessionConfig: { 'session.intra_op.allow_spinning': '0' } }, about: 'final, ORT threads do not spin' },
  'no-prepack': { formulation: {}, session: { sessionConfig: { 'session.disable_prepacking': '1' } }, about: 'final, ORT does not pre-pack constant GEMM operands' },
  'blocks-128': { formulation: { attentionBlock: 128 }, session: {}, about: 'final, causal attention in query blocks of 128 tokens' },
  'blocks-off': { formulation: { attentionBlock: 0 }, session: {}, about: 'final with the attention in one block (all T query rows)' },
  'core-primitives': { formulation: { attentionCore: 'primitives' }, session: {}, about: 'final with the attention core differentiated op by op (no kernels/attention-block.ts)' },
  'blocks-64': { formulation: { attentionBlock: 64 }, session: {}, about: 'final, causal attention in query blocks of 64 tokens' },
  'blocks-32': { formulation: { attentionBlock: 32 }, session: {}, about: 'final, causal attention in query blocks of 32 tokens' },
  'affinity-2': { formulation: {}, session: { sessionConfig: { 'session.intra_op_thread_affinities': '2' } }, about: 'final, the ORT worker thread pinned to CPU 2' },
  'in-process': { formulation: {}, session: { worker: false }, about: 'final with ORT on the calling thread (no worker: no input copies, no messages)' },
  'threads-4': { formulation: {}, session: { threads: 4 }, about: 'final with 4 ORT threads (GEMMs split in 4 parts, taken by whichever core is free)' },
  'threads-4-nospin': { formulation: {}, session: { threads: 4, sessionConfig: { 'session.intra_op.allow_spinning': '0' } }, about: 'threads-4, threads do not spin' },
  'opaque-shapes': { formulation: {}, session: {}, step: { opaqueShapes: true }, about: 'final with the activation shapes hidden from ORT\'s planner (as checkpointed steps)' },
  'telemetry-on': { formulation: {}, session: {}, env: { ORT_DISABLE_TELEMETRY: '0' }, about: "final in a process with onnxruntime's telemetry on (its default; ts-finetune turns it off)" },
  copies: { formulation: {}, session: {}, copies: true, about: 'final with the trainable values copied to the worker and fresh gradient buffers (the bench before session 8)' },
  'opt-extended': { formulation: {}, session: { graphOptimizationLevel: 'extended' }, about: 'final at optimization level extended' },
};

// ---- the model ----------------------------------------------------------------------------------------

const LAYERS = Number(arg('layers', '8'));
const B = Number(arg('B', '4'));
const T = Number(arg('T', '256'));
const R = 16;

function loraParams(cfg: CausalLMConfig): number {
  const { hiddenSize: C, intermediateSize: F, numAttentionHeads: H, numKeyValueHeads: K, headDim: D } = cfg;
  const shapes: [number, number][] = [[C, H * D], [C, K * D], [C, K * D], [H * D, C], [C, F], [C, F], [F, C]];
  return cfg.numHiddenLayers * shapes.reduce((n, [i, o]) => n + R * (i + o), 0);
}

/** FLOPs of one step: 6·N_trainable + 4·N_frozen (GEMM weights) per token, plus attention (fwd 4·T·C per token per layer, ×3). */
function stepFlops(cfg: CausalLMConfig, nTrainable: number): { total: number; nFrozen: number; attention: number } {
  const { hiddenSize: C, intermediateSize: F, numAttentionHeads: H, numKeyValueHeads: K, headDim: D, vocabSize: V } = cfg;
  const perLayer = C * H * D * 2 + 2 * C * K * D + 3 * C * F;
  const nFrozen = cfg.numHiddenLayers * perLayer + V * C; // the embedding is a lookup, not a GEMM
  const tokens = B * T;
  const attention = 3 * cfg.numHiddenLayers * tokens * 4 * T * H * D;
  return { total: tokens * (6 * nTrainable + 4 * nFrozen) + attention, nFrozen, attention };
}

// ---- one variant: program + optimizer + params ---------------------------------------------------------

interface Sample {
  stepMs: number;
  graphMs: number;
  clipMs: number;
  optMs: number;
  cpuMs: number;
  loss: number;
}

class Runner {
  samples: Sample[] = [];
  rssGrowthMB = 0;
  compileMs = 0;
  private grads: Float32Array | undefined;
  private constructor(
    readonly name: string,
    private readonly prog: StepProgram,
    private readonly opt: Optimizer,
    private params: Float32Array,
    private readonly copies: boolean,
  ) {}

  static async create(name: string, v: Variant, model: PeftModel, profileDir?: string): Promise<Runner> {
    const t0 = performance.now();
    const opts: StepGraphOptions = { B, T, objective: causalLmObjective, withGrad: true, training: true, formulation: v.formulation, ...v.step };
    const session: SessionOptions = { ...v.session };
    if (ORT_THREADS) session.threads = ORT_THREADS;
    if (profileDir) session.profileFilePrefix = join(profileDir, name);
    const prog = await StepProgram.compile(model, opts, session);
    const params = model.trainableValues(prog.step.layout);
    const opt = await createOptimizer('adamw_torch', params.length, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, ...v.optimizer });
    const r = new Runner(name, prog, opt, params, v.copies === true);
    r.compileMs = performance.now() - t0;
    return r;
  }

  /** The trainer's optimizer step for one micro-batch (trainer.ts optimizerStep, accumulation 1). */
  async step(feeds: BatchFeeds): Promise<Sample> {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    // As the trainer runs it (trainer.ts trainStep): the trainable values lent to the session worker and the
    // gradients written into a buffer kept across steps, not copied each way.
    const res = this.copies
      ? await this.prog.run(feeds, this.params)
      : await this.prog.run(feeds, this.params, { gradsInto: this.grads ?? new Float32Array(this.params.length), lendParams: (p) => (this.params = p) });
    const t1 = performance.now();
    const grads = (this.grads = res.grads!);
    const norm = globalL2Norm([grads]);
    const coef = clipCoefficient(norm, 1.0);
    if (coef < 1) for (let i = 0; i < grads.length; i++) grads[i]! *= coef;
    const t2 = performance.now();
    await this.opt.step(this.params, grads, 1e-4);
    const t3 = performance.now();
    const c = process.cpuUsage(c0);
    return { stepMs: t3 - t0, graphMs: t1 - t0, clipMs: t2 - t1, optMs: t3 - t2, cpuMs: (c.user + c.system) / 1000, loss: res.loss };
  }

  get gradSize(): number {
    return this.params.length;
  }

  async release(): Promise<void> {
    await this.prog.release();
    await this.opt.release();
  }
}

/** PyTorch eager doing the same step in its own process (bench/lora-step-torch.py), one step per request. */
class TorchRunner {
  samples: Sample[] = [];
  rssGrowthMB = 0;
  compileMs = 0;
  maxRssMB = 0;
  info = '';
  private lines: string[] = [];
  private waiting: ((l: string) => void) | undefined;
  private constructor(private readonly child: ChildProcess) {
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (this.waiting) {
          const w = this.waiting;
          this.waiting = undefined;
          w(line);
        } else this.lines.push(line);
      }
    });
  }

  readonly name = 'pytorch-eager';

  private next(): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((res, rej) => {
      this.waiting = res;
      this.child.once('exit', (code) => rej(new Error(`pytorch child exited (${code})`)));
    });
  }

  static async create(blasDir: string | undefined): Promise<TorchRunner> {
    const t0 = performance.now();
    const env = { ...process.env };
    if (blasDir) env.LD_LIBRARY_PATH = [blasDir, env.LD_LIBRARY_PATH].filter(Boolean).join(':');
    const child = spawn(arg('python', '/usr/bin/python3'), [join(HERE, 'lora-step-torch.py'), String(LAYERS), String(B), String(T), String(ORT_THREADS ?? THREADS)], {
      env,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const r = new TorchRunner(child);
    const ready = JSON.parse(await r.next()) as { threads: number; blas: string[]; torch: string };
    r.info = `torch ${ready.torch}, ${ready.threads} threads, BLAS ${ready.blas.map((b) => b.split('/').pop()).join(', ') || '(none found in maps)'}`;
    r.compileMs = performance.now() - t0;
    return r;
  }

  async step(): Promise<Sample> {
    this.child.stdin!.write('step\n');
    const o = JSON.parse(await this.next()) as { stepMs: number; cpuMs: number; loss: number; maxRssMB: number };
    this.maxRssMB = o.maxRssMB;
    return { stepMs: o.stepMs, graphMs: o.stepMs, clipMs: 0, optMs: 0, cpuMs: o.cpuMs, loss: o.loss };
  }

  async release(): Promise<void> {
    this.child.stdin!.end();
    await new Promise((res) => (this.child.exitCode !== null ? res(undefined) : this.child.once('exit', res)));
  }
}

// ---- reporting ----------------------------------------------------------------------------------------

const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const min = (a: number[]): number => Math.min(...a);
const fmt = (x: number, d = 0): string => x.toFixed(d);
/** `part` as a % of `peak`, or – when no peak was measured (--no-fma). */
const pct = (part: number, peak: number): string => (peak > 0 ? `${fmt((100 * part) / peak, 1)}%` : '–');

/** CPUs the FMA peak runs on (all of them). */
const THREADS = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
/** ORT intra-op threads for every variant (default: src/runtime's, the physical cores). */
const ORT_THREADS = Number(arg('ort-threads', '0')) || undefined;

interface Report {
  name: string;
  about: string;
  medianMs: number;
  minMs: number;
  graphMs: number;
  clipMs: number;
  optMs: number;
  cpuMs: number;
  loss: number;
  rssMB: number;
  compileMs: number;
  steps: number;
}

function reportOf(r: { name: string; samples: Sample[]; compileMs: number }, v: Pick<Variant, 'about'>, rssMB: number): Report {
  const s = r.samples;
  return {
    name: r.name,
    about: v.about,
    medianMs: median(s.map((x) => x.stepMs)),
    minMs: min(s.map((x) => x.stepMs)),
    graphMs: median(s.map((x) => x.graphMs)),
    clipMs: median(s.map((x) => x.clipMs)),
    optMs: median(s.map((x) => x.optMs)),
    cpuMs: median(s.map((x) => x.cpuMs)),
    loss: s[s.length - 1]!.loss,
    rssMB,
    compileMs: r.compileMs,
    steps: s.length,
  };
}

function printTable(reports: Report[], flops: number, peak: number, baseName: string): void {
  const base = reports.find((r) => r.name === baseName) ?? reports[0]!;
  const tokens = B * T;
  console.log('');
  console.log(
    `| variant | median ms | min ms | tok/s | GFLOP/s | % of FMA peak | CPU-s/step | % of peak by CPU time | vs ${base.name} | graph ms | clip ms | AdamW ms | peak RSS MB | loss |`,
  );
  console.log(`|---|${'---:|'.repeat(13)}`);
  for (const r of reports) {
    const gf = flops / (r.medianMs / 1000) / 1e9;
    // CPU time of the whole process over the step (all threads), spread over the cores: what the step
    // would take if it had the cores to itself. ORT's spinning threads count too, so this is conservative.
    const cpuGf = flops / (r.cpuMs / 1000 / Math.min(ORT_THREADS ?? THREADS, THREADS)) / 1e9;
    console.log(
      `| ${r.name} | ${fmt(r.medianMs)} | ${fmt(r.minMs)} | ${fmt(tokens / (r.medianMs / 1000))} | ${fmt(gf)} | ${pct(gf, peak)} | ` +
        `${fmt(r.cpuMs / 1000, 2)} | ${pct(cpuGf, peak)} | ` +
        `${fmt(base.medianMs / r.medianMs, 2)}× | ${fmt(r.graphMs)} (${fmt((100 * r.graphMs) / r.medianMs)}%) | ` +
        (r.name === 'pytorch-eager'
          ? '– | – | '
          : `${fmt(r.clipMs, 1)} (${fmt((100 * r.clipMs) / r.medianMs, 1)}%) | ${fmt(r.optMs, 1)} (${fmt((100 * r.optMs) / r.medianMs, 1)}%) | `) +
        `${fmt(r.rssMB)} | ${r.loss.toFixed(4)} |`,
    );
  }
  console.log('');
  for (const r of reports) console.log(`  ${r.name}: ${r.about}; compile ${fmt(r.compileMs)} ms, ${r.steps} timed steps`);
}

// ---- main ---------------------------------------------------------------------------------------------

async function runInProcess(names: string[]): Promise<Report[]> {
  const cfg = llamaConfig(LAYERS);
  const model = getPeftModel(randomModel(cfg), new LoraConfig({ r: R, loraAlpha: 32, targetModules: 'all-linear', taskType: 'CAUSAL_LM' }));
  const feeds = randomBatch(cfg, B, T);
  const steps = Number(arg('steps', '5'));
  const warmup = Number(arg('warmup', '2'));
  const profileDir = flag('profile') ? arg('profile', join(tmpdir(), 'ts-finetune-profile')) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const runners: Runner[] = [];
  const rss: number[] = [];
  for (const n of names) {
    const before = process.memoryUsage().rss;
    const r = await Runner.create(n, VARIANTS[n]!, model, profileDir);
    for (let i = 0; i < warmup; i++) await r.step(feeds);
    r.rssGrowthMB = (process.memoryUsage().rss - before) / 2 ** 20;
    runners.push(r);
    rss.push(process.resourceUsage().maxRSS / 1024);
    process.stderr.write(`  ${n}: compiled in ${fmt(r.compileMs)} ms, warm\n`);
  }
  const torch = flag('torch') ? await TorchRunner.create(flag('torch-blas') ? arg('torch-blas', '') : undefined) : undefined;
  if (torch) {
    for (let i = 0; i < warmup; i++) await torch.step();
    process.stderr.write(`  pytorch-eager: ${torch.info}, warm\n`);
  }
  const all: (Runner | TorchRunner)[] = torch ? [...runners, torch] : runners;
  for (let i = 0; i < steps; i++) {
    // Rotate the order each round so no variant always runs right after the same neighbour.
    for (let k = 0; k < all.length; k++) {
      const r = all[(i + k) % all.length]!;
      r.samples.push(r instanceof Runner ? await r.step(feeds) : await r.step());
    }
    process.stderr.write(`  round ${i + 1}/${steps}: ${all.map((r) => `${r.name} ${fmt(r.samples.at(-1)!.stepMs)} ms`).join(', ')}\n`);
  }
  if (runners[0]!.gradSize !== loraParams(cfg)) throw new Error(`trainable ${runners[0]!.gradSize} ≠ counted ${loraParams(cfg)}: fix loraParams`);
  // In one process only the first variant's peak is its own; later ones report the growth they added.
  const reports = runners.map((r, i) => reportOf(r, VARIANTS[r.name]!, i === 0 ? rss[0]! : r.rssGrowthMB));
  for (const r of runners) await r.release();
  if (torch) {
    reports.push(reportOf(torch, { about: `PyTorch eager in its own process (${torch.info}); peak RSS is its process maxRSS` }, torch.maxRssMB));
    await torch.release();
  }
  return reports;
}

interface ProfileSummary {
  runs: number;
  /** Median over runs of the summed kernel time. */
  kernelMs: number;
  /** Σ over nodes of each node's fastest run: the kernels' cost with the least interference from other processes. */
  kernelMinMs: number;
  /** Per op type: [median-run ms, Σ per-node min ms]. */
  byOp: Map<string, [number, number]>;
}

/**
 * Kernel times from ORT's JSON trace of one variant (written at release), leaving out the warm-up run.
 * On a shared machine a kernel's time in a given run includes the time it was descheduled; the fastest
 * of a node's runs is the better estimate of its own cost, so both are reported.
 */
function summarizeProfile(dir: string, name: string): ProfileSummary | undefined {
  const file = readdirSync(dir)
    .filter((f) => f.startsWith(name + '_') && f.endsWith('.json'))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!file) return undefined;
  type Ev = { cat: string; name: string; ts: number; dur: number; args?: { op_name?: string } };
  const events = JSON.parse(readFileSync(file, 'utf8')) as Ev[];
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').slice(1);
  const runOf = (e: Ev): number => runs.findIndex((r) => e.ts >= r.ts && e.ts <= r.ts + r.dur);
  const perRun = runs.map(() => 0);
  const nodeMin = new Map<string, { op: string; min: number; sum: number }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const r = runOf(e);
    if (r < 0) continue;
    perRun[r]! += e.dur;
    const n = nodeMin.get(e.name) ?? { op: e.args?.op_name ?? '?', min: Infinity, sum: 0 };
    n.min = Math.min(n.min, e.dur);
    n.sum += e.dur;
    nodeMin.set(e.name, n);
  }
  const byOp = new Map<string, [number, number]>();
  let kernelMin = 0;
  for (const n of nodeMin.values()) {
    const cur = byOp.get(n.op) ?? [0, 0];
    cur[0] += n.sum / runs.length / 1000;
    cur[1] += n.min / 1000;
    byOp.set(n.op, cur);
    kernelMin += n.min / 1000;
  }
  return { runs: runs.length, kernelMs: median(perRun) / 1000, kernelMinMs: kernelMin, byOp };
}

function printProfiles(dir: string, names: string[], flops: number, peak: number): void {
  const sums = names.map((n) => [n, summarizeProfile(dir, n)] as const).filter((x): x is readonly [string, ProfileSummary] => x[1] !== undefined);
  if (sums.length === 0) return;
  console.log(`
ORT profile (${dir}), kernel ms per run: mean over runs / Σ per-node fastest run`);
  const ops = new Map<string, number>();
  for (const [, s] of sums) for (const [op, [, m]] of s.byOp) ops.set(op, Math.max(ops.get(op) ?? 0, m));
  const top = [...ops].sort((a, b) => b[1] - a[1]).slice(0, 18).map(([op]) => op);
  console.log(`| op | ${sums.map(([n]) => n).join(' | ')} |`);
  console.log(`|---|${sums.map(() => '---:').join('|')}|`);
  for (const op of top) console.log(`| ${op} | ${sums.map(([, s]) => { const v = s.byOp.get(op); return v ? `${fmt(v[0])} / ${fmt(v[1])}` : '–'; }).join(' | ')} |`);
  console.log(`| **all kernels** | ${sums.map(([, s]) => `${fmt(s.kernelMs)} / ${fmt(s.kernelMinMs)}`).join(' | ')} |`);
  console.log(
    `| GFLOP/s at Σ fastest (% of peak) | ${sums.map(([, s]) => { const g = flops / (s.kernelMinMs / 1000) / 1e9; return `${fmt(g)} (${pct(g, peak)})`; }).join(' | ')} |`,
  );
}

async function main(): Promise<void> {
  const names = arg('variants', 'baseline,final').split(',');
  for (const n of names) if (!VARIANTS[n]) throw new Error(`unknown variant '${n}'; known: ${Object.keys(VARIANTS).join(', ')}`);
  if (flag('child')) {
    // One variant in this process (spawned by --isolate); the parent reads the JSON line.
    const reports = await runInProcess(names);
    process.stdout.write(`RESULT ${JSON.stringify({ report: reports[0] })}\n`);
    return;
  }
  const cfg = llamaConfig(LAYERS);
  const nTrainable = loraParams(cfg);
  const fl = stepFlops(cfg, nTrainable);
  console.log(`lora-step: Llama ${LAYERS} layers, C=512, H=8, K=4, F=1376, V=32000, LoRA r=${R} on all 7 linears, B=${B}, T=${T}`);
  console.log(
    `  N_trainable ${(nTrainable / 1e6).toFixed(3)}M, N_frozen (GEMM weights) ${(fl.nFrozen / 1e6).toFixed(2)}M, attention ${(fl.attention / 1e9).toFixed(1)} GFLOP → ${(fl.total / 1e9).toFixed(1)} GFLOP per step`,
  );
  console.log(`  load average at start: ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${THREADS} CPUs; ORT threads ${ORT_THREADS ?? 'default'}`);
  const useFma = !flag('no-fma');
  const fmaBefore = useFma ? fmaPeak(1, THREADS) : [];
  let reports: Report[];
  if (flag('isolate')) {
    reports = [];
    const passthrough = ['steps', 'warmup', 'layers', 'B', 'T', 'ort-threads'].flatMap((k) => (argv.includes(`--${k}`) ? [`--${k}`, arg(k, '')] : []));
    for (const n of names) {
      const env = { ...process.env, ...(VARIANTS[n]!.env ?? {}) };
      const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', '--variants', n, ...passthrough], {
        env,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (!line) throw new Error(`variant ${n} failed (exit ${r.status})\n${r.stdout}`);
      reports.push((JSON.parse(line.slice(7)) as { report: Report }).report);
    }
  } else {
    for (const n of names) if (VARIANTS[n]!.env) throw new Error(`variant '${n}' needs its own process: add --isolate`);
    reports = await runInProcess(names);
  }
  const fmaAfter = useFma ? fmaPeak(1, THREADS) : [];
  const all = [...fmaBefore, ...fmaAfter];
  const best = (k: 'wallGflops' | 'cpuGflops'): number => Math.max(0, ...all.map((f) => f[k]));
  const peakAll = best('cpuGflops'); // 0 with --no-fma: the % columns then print –
  // The % columns compare with the peak of the cores ORT uses (all of them unless --ort-threads).
  const peak = (peakAll * Math.min(ORT_THREADS ?? THREADS, THREADS)) / THREADS;
  console.log('');
  if (useFma) {
    for (const f of all) console.log(`  FMA ${f.width} × ${f.threads} threads: ${fmt(f.wallGflops)} GFLOP/s wall (shared machine), ${fmt(f.cpuGflops)} GFLOP/s per CPU-second × threads`);
    console.log(
      `  FMA peak: ${fmt(peakAll)} GFLOP/s on ${THREADS} cores (best width, per CPU-second: what the cores do unshared); best wall-clock burst ${fmt(best('wallGflops'))} GFLOP/s` +
        (peak !== peakAll ? `; % columns use ${fmt(peak)} GFLOP/s for ${ORT_THREADS} ORT thread(s)` : ''),
    );
  }
  console.log(`  load average at end: ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  console.log(`  peak RSS: ${flag('isolate') ? 'each variant alone in its process (maxRSS)' : `first variant: process maxRSS; later ones: RSS they added`}`);
  printTable(reports, fl.total, peak, names[0]!);
  if (flag('profile') && !flag('isolate')) printProfiles(arg('profile', join(tmpdir(), 'ts-finetune-profile')), names, fl.total, peak);
  if (reports.length > 1) {
    const base = reports[0]!;
    for (const r of reports.slice(1)) console.log(`  ${r.name} / ${base.name}: step ${fmt(r.medianMs / base.medianMs, 3)}, graph ${fmt(r.graphMs / base.graphMs, 3)}`);
  }
  const torch = reports.find((r) => r.name === 'pytorch-eager');
  if (torch) {
    for (const r of reports.filter((x) => x !== torch)) {
      console.log(`  ${r.name} vs pytorch-eager: ${fmt(torch.medianMs / r.medianMs, 2)}× the tokens/s (median), ${fmt(torch.minMs / r.minMs, 2)}× (min)`);
    }
  }
}

await main();
