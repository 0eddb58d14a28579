// Bench: forward tokens/s and model FLOP utilisation (MFU) of the 50M-parameter Llama shape of issue 6
// ("Speed and memory": 8 layers, C=512, H=8, K=4, F=1376, V=32000, untied lm_head; B=4, T=256), against
// the CPU's FMA peak measured in the same run (bench/fma-peak.c compiled with g++, AVX-512 where the CPU
// has it, as bench/lora-step.ts does). Target: ≥ 60% of the peak.
//   npx tsx bench/forward-mfu.ts [--runs 7] [--warmup 2] [--layers 8] [--B 4] [--T 256] [--no-fma]
// The forward is the inference graph CausalLM.forward compiles (StepProgram, frozen weights as
// initializers, withGrad false) but with withLogits false, so the B×T×V logits are not copied out: the
// graph computes the causal-LM loss, which needs the full lm_head GEMM and a log-softmax over V.
// FLOPs per token: 2·N (N = GEMM weights: decoder linears and lm_head; the embedding is a lookup) plus
// attention 4·T·H·D per layer (QKᵀ and PV over the full T×T square, the usual MFU convention).
// The model, batch and FMA helpers are shared with bench/lora-step.ts (bench/lib/llama-50m.ts).
// Not here: the training step (lora-step.ts), generation (generate.ts), memory (nf4-memory.ts).

import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import type { CausalLMConfig } from '../src/models/config.js';
import { StepProgram } from '../src/models/program.js';
import { causalLmObjective } from '../src/models/step-graph.js';
import { fmaPeak, llamaConfig, randomBatch, randomModel } from './lib/llama-50m.js';

const argv = process.argv.slice(2);
const flag = (n: string): boolean => argv.includes(`--${n}`);
const arg = (n: string, d: string): string => {
  const i = argv.indexOf(`--${n}`);
  const v = i >= 0 ? argv[i + 1] : undefined;
  return v !== undefined && !v.startsWith('--') ? v : d;
};

const LAYERS = Number(arg('layers', '8'));
const B = Number(arg('B', '4'));
const T = Number(arg('T', '256'));
const RUNS = Math.max(5, Number(arg('runs', '7')));
const WARMUP = Number(arg('warmup', '2'));
const THREADS = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
const TARGET = 0.6;

/** Forward FLOPs of one batch: 2·N_gemm per token plus attention (4·T·H·D per token per layer). */
function forwardFlops(cfg: CausalLMConfig): { total: number; nGemm: number; attention: number } {
  const { hiddenSize: C, intermediateSize: F, numAttentionHeads: H, numKeyValueHeads: K, headDim: D, vocabSize: V } = cfg;
  const perLayer = C * H * D * 2 + 2 * C * K * D + 3 * C * F;
  const nGemm = cfg.numHiddenLayers * perLayer + V * C; // decoder linears + lm_head; the embedding is a lookup
  const tokens = B * T;
  const attention = cfg.numHiddenLayers * tokens * 4 * T * H * D;
  return { total: 2 * nGemm * tokens + attention, nGemm, attention };
}

// ---- main ---------------------------------------------------------------------------------------------

const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (x: number, d = 0): string => x.toFixed(d);
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const cfg = llamaConfig(LAYERS);
  const fl = forwardFlops(cfg);
  const tokens = B * T;
  console.log(`forward-mfu: Llama ${LAYERS} layers, C=512, H=8, K=4, F=1376, V=32000 (untied), B=${B}, T=${T}, fp32, frozen weights, no logits out`);
  console.log(
    `  N_gemm (decoder linears + lm_head) ${(fl.nGemm / 1e6).toFixed(2)}M; 2·N·tokens ${((2 * fl.nGemm * tokens) / 1e9).toFixed(1)} GFLOP + attention ${(fl.attention / 1e9).toFixed(2)} GFLOP = ${(fl.total / 1e9).toFixed(2)} GFLOP per forward`,
  );
  console.log(`  load average at start: ${load()} on ${THREADS} CPUs`);
  const useFma = !flag('no-fma');
  const fmaBefore = useFma ? fmaPeak(1, THREADS) : [];

  const model = randomModel(cfg);
  const feeds = randomBatch(cfg, B, T);
  const c0 = performance.now();
  const prog = await StepProgram.compile(model.asFrozen(), { B, T, objective: causalLmObjective, withGrad: false });
  const compileMs = performance.now() - c0;
  let loss = NaN;
  for (let i = 0; i < WARMUP; i++) loss = (await prog.run(feeds)).loss;
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const u0 = process.cpuUsage();
    const t0 = performance.now();
    const res = await prog.run(feeds);
    wall.push(performance.now() - t0);
    const u = process.cpuUsage(u0);
    cpu.push((u.user + u.system) / 1000);
    loss = res.loss;
    process.stderr.write(`  run ${i + 1}/${RUNS}: ${fmt(wall.at(-1)!)} ms\n`);
  }
  await prog.release();
  const fmaAfter = useFma ? fmaPeak(1, THREADS) : [];

  const all = [...fmaBefore, ...fmaAfter];
  const peak = Math.max(0, ...all.map((f) => f.cpuGflops));
  const bestWall = Math.max(0, ...all.map((f) => f.wallGflops));
  console.log('');
  for (const f of all) console.log(`  FMA ${f.width} × ${f.threads} threads: ${fmt(f.wallGflops)} GFLOP/s wall, ${fmt(f.cpuGflops)} GFLOP/s per CPU-second × threads`);
  if (useFma) console.log(`  FMA peak: ${fmt(peak)} GFLOP/s on ${THREADS} cores (best width, per CPU-second); best wall-clock burst ${fmt(bestWall)} GFLOP/s`);
  console.log(`  load average at end: ${load()}`);
  console.log(`  compile ${fmt(compileMs)} ms; ${WARMUP} warm-up + ${RUNS} timed runs; loss ${loss.toFixed(4)} (ln V = ${Math.log(cfg.vocabSize).toFixed(4)})`);
  console.log('');

  const med = median(wall);
  const best = Math.min(...wall);
  const medCpu = median(cpu);
  const gflops = (ms: number): number => fl.total / (ms / 1000) / 1e9;
  const pct = (g: number): string => (peak > 0 ? `${fmt((100 * g) / peak, 1)}%` : '–');
  // CPU time of all the process's threads: time descheduled by other processes does not count (a
  // load-robust view), ORT's spin-waiting does. ms of CPU / THREADS is the wall time on idle cores.
  const cpuEquivMs = medCpu / THREADS;
  console.log('| forward | median | min | CPU-time view |');
  console.log('|---|---:|---:|---:|');
  console.log(`| ms per forward | ${fmt(med, 1)} | ${fmt(best, 1)} | ${fmt(medCpu, 0)} CPU-ms (${fmt(cpuEquivMs, 1)} ms on ${THREADS} cores) |`);
  console.log(`| tokens/s | ${fmt(tokens / (med / 1000))} | ${fmt(tokens / (best / 1000))} | ${fmt(tokens / (cpuEquivMs / 1000))} |`);
  console.log(`| GFLOP/s | ${fmt(gflops(med), 1)} | ${fmt(gflops(best), 1)} | ${fmt(gflops(cpuEquivMs), 1)} |`);
  console.log(`| % of FMA peak (MFU) | ${pct(gflops(med))} | ${pct(gflops(best))} | ${pct(gflops(cpuEquivMs))} |`);
  console.log('');
  if (peak > 0) {
    const mfu = gflops(med) / peak;
    console.log(`  MFU (median) ${fmt(100 * mfu, 1)}% vs target ${fmt(100 * TARGET)}%: ${mfu >= TARGET ? 'PASS' : 'MISS'}`);
  }
}

await main();
