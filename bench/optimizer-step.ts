// Bench: time per optimizer step over a flat float32 vector of P elements (issue 8's optimizers).
//   npx tsx bench/optimizer-step.ts [--sizes 1200000,12000000] [--runs 5]
// Variants, interleaved run by run so machine noise hits all alike (medians reported):
//   adamw_torch        one in-process session over the whole vector (state swapped, params copied back)
//   adamw_torch/worker the same graph in a worker-thread session (inputs copied into the worker)
//   paged_adamw_32bit  pages of 1,048,576 (default), event loop yields between pages
//   adamw_8bit         bitsandbytes 8-bit blockwise (tensors of 65,536 elements, as paramRanges)
//   paged_adamw_8bit   the same, paged
//   js-loop            torch's AdamW as one plain JS loop over Float32Arrays (the baseline)
// Also printed: one memcpy of P floats (what copying an output back costs, vs swapping it in).
// Median and minimum per variant: on a shared machine the minimum is the better estimate of the cost.
import { Tensor } from '../src/core/tensor.js';
import { Graph, toModelProto } from '../src/graph/index.js';
import { encodeModel } from '../src/onnx/encode.js';
import { createSession, defaultThreadCount } from '../src/runtime/index.js';
import { createOptimizer, type Optimizer, type OptimizerName, type OptimizerOptions } from '../src/optim/index.js';
import { buildAdamwGraph, hyperTensor, torchAdamwHyper } from '../kernels/adamw.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const SIZES = arg('--sizes', '1200000,12000000').split(',').map(Number);
const RUNS = Number(arg('--runs', '5'));
const OPTS: OptimizerOptions = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const min = (a: number[]): number => Math.min(...a);

/** torch's single-tensor AdamW as one JS loop (float64 arithmetic, float32 storage). */
function jsLoop(size: number): (p: Float32Array, g: Float32Array, lr: number) => void {
  const m = new Float32Array(size);
  const v = new Float32Array(size);
  let t = 0;
  return (p, g, lr) => {
    t++;
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = OPTS;
    const decay = 1 - lr * wd;
    const w = 1 - b1;
    const bc2s = Math.sqrt(1 - b2 ** t);
    const step = lr / (1 - b1 ** t);
    for (let i = 0; i < size; i++) {
      const gi = g[i]!;
      const mi = m[i]! + w * (gi - m[i]!);
      const vi = v[i]! * b2 + (1 - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i]! * decay - (step * mi) / (Math.sqrt(vi) / bc2s + eps);
    }
  };
}

/** adamw_torch's graph in a worker session: what the optimizer would cost with the runtime's default. */
async function workerAdamw(size: number): Promise<{ step: (p: Float32Array, g: Float32Array, lr: number) => Promise<void>; release: () => Promise<void> }> {
  const g = new Graph('adamw_worker');
  buildAdamwGraph(g, { n: size, math: 'torch', mask: false });
  const s = await createSession(encodeModel(toModelProto(g).model), { worker: true, reuse: false });
  let m: Float32Array = new Float32Array(size);
  let v: Float32Array = new Float32Array(size);
  let t = 0;
  return {
    async step(p, grads, lr) {
      t++;
      const out = await s.run({
        param: new Tensor('float32', [size], p),
        grad: new Tensor('float32', [size], grads),
        exp_avg: new Tensor('float32', [size], m),
        exp_avg_sq: new Tensor('float32', [size], v),
        hyper: hyperTensor(torchAdamwHyper({ lr, ...OPTS }, t)),
      });
      p.set(out['param_out']!.data as Float32Array);
      m = out['exp_avg_out']!.data as Float32Array;
      v = out['exp_avg_sq_out']!.data as Float32Array;
    },
    release: () => s.release(),
  };
}

async function benchSize(P: number): Promise<void> {
  const ranges: [number, number][] = [];
  for (let a = 0; a < P; a += 65536) ranges.push([a, Math.min(P, a + 65536)]);
  const names: OptimizerName[] = ['adamw_torch', 'paged_adamw_32bit', 'adamw_8bit', 'paged_adamw_8bit'];
  const t0 = performance.now();
  const opts: Optimizer[] = [];
  const createMs: number[] = [];
  for (const n of names) {
    const c0 = performance.now();
    opts.push(await createOptimizer(n, P, { ...OPTS, paramRanges: ranges }));
    createMs.push(performance.now() - c0);
  }
  const worker = await workerAdamw(P);
  const js = jsLoop(P);
  const setupMs = performance.now() - t0;
  const params = Array.from({ length: names.length + 2 }, () => Float32Array.from({ length: P }, (_, i) => Math.sin(i) * 0.02));
  const grads = Float32Array.from({ length: P }, (_, i) => Math.cos(i * 0.7) * 1e-3);
  const times: number[][] = Array.from({ length: names.length + 2 }, () => []);
  const copy: number[] = [];
  const dst = new Float32Array(P);
  for (let r = 0; r < RUNS + 1; r++) {
    for (let k = 0; k < names.length + 2; k++) {
      const s0 = performance.now();
      if (k < names.length) await opts[k]!.step(params[k]!, grads, 1e-4);
      else if (k === names.length) await worker.step(params[k]!, grads, 1e-4);
      else js(params[k]!, grads, 1e-4);
      if (r > 0) times[k]!.push(performance.now() - s0); // the first run warms up
    }
    const c0 = performance.now();
    dst.set(params[0]!);
    if (r > 0) copy.push(performance.now() - c0);
  }
  const labels = [...names, 'adamw_torch/worker', 'js-loop'];
  console.log(`\nP = ${P.toLocaleString('en-US')} (${RUNS} runs, ${defaultThreadCount()} ORT threads; setup ${(setupMs / 1000).toFixed(1)} s)`);
  console.log(`  ${''.padEnd(20)} ${'median'.padStart(8)}    ${'min'.padStart(8)}   (ms per step)`);
  labels.forEach((l, k) => {
    const extra = k < names.length ? `   create ${createMs[k]!.toFixed(0)} ms` : '';
    console.log(`  ${l.padEnd(20)} ${median(times[k]!).toFixed(1).padStart(8)}    ${min(times[k]!).toFixed(1).padStart(8)}${extra}`);
  });
  console.log(`  ${'memcpy of P floats'.padEnd(20)} ${median(copy).toFixed(1).padStart(8)}    ${min(copy).toFixed(1).padStart(8)}`);
  for (const o of opts) await o.release();
  await worker.release();
}

for (const P of SIZES) await benchSize(P);
