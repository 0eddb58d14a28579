// Finite-difference gradient checking for graph fragments. Many independent cases go into ONE graph
// (one session): case i computes f_i(x_i) = Σ_outputs Σ w ⊙ out(x_i) with fixed random w, and backward
// adds df_i/dx_i. Because the cases share no values, perturbing coordinate j of EVERY case at once gives
// all f_i(x_i ± h·e_j) in one run, so a whole family costs 1 + 2·max_i(#coords_i) runs.
// Central differences: n_j = (f(x + h e_j) − f(x − h e_j)) / (x⁺_j − x⁻_j), the denominator read back from
// the stored (rounded) inputs, so float32 inputs lose no accuracy to the rounding of x ± h.
// The runner is injected (autodiff may not import src/runtime): test helpers pass createSession's.
// Not here: choosing tolerances per dtype (callers, documented in docs/autodiff.md).

import type { DType } from '../core/dtype.js';
import { TsFinetuneError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { Graph, op, type Value } from '../graph/index.js';
import { backward } from './backward.js';

export interface GradCheckInput {
  shape: readonly number[];
  /** Default: the check's dtype. */
  dtype?: 'float32' | 'float64';
  /** Draw one element (default uniform in [−1, 1)); keep non-smooth ops away from their kinks here. */
  sample?: (rng: Rng) => number;
}

export interface GradCheckCase {
  name: string;
  inputs: readonly GradCheckInput[];
  /** Build the op(s) under test from the differentiable inputs (other operands: constants made here). */
  build: (g: Graph, xs: Value[]) => Value | readonly Value[];
  rtol?: number;
  atol?: number;
  /** Step h (default from the check's options). */
  eps?: number;
}

export interface GradCheckOptions {
  dtype: 'float32' | 'float64';
  eps: number;
  rtol: number;
  atol: number;
  seed?: number;
}

/** Opens the graph once; the returned function runs it (tests wrap src/runtime's createSession). */
export type GraphRunner = (g: Graph) => Promise<(feeds: Record<string, Tensor>) => Promise<Record<string, Tensor>>>;

export interface GradCheckResult {
  name: string;
  ok: boolean;
  coords: number;
  /** The coordinate with the largest error relative to its tolerance. */
  worst: { input: number; index: number; analytic: number; numeric: number; error: number; tolerance: number };
}

interface Built {
  c: GradCheckCase;
  prefix: string;
  xs: Value[];
  feeds: Tensor[];
  coords: { input: number; index: number }[];
}

function randomTensor(rng: Rng, dtype: DType, shape: readonly number[], sample?: (rng: Rng) => number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const vals = Array.from({ length: n }, () => (sample ? sample(rng) : rng.uniform(-1, 1)));
  return dtype === 'float64' ? new Tensor('float64', shape, Float64Array.from(vals)) : new Tensor('float32', shape, Float32Array.from(vals));
}

/** Build every case into one graph, run analytic gradients and central differences, compare. */
export async function gradCheck(cases: readonly GradCheckCase[], run: GraphRunner, opts: GradCheckOptions): Promise<GradCheckResult[]> {
  const rng = new Rng(opts.seed ?? 1234);
  const g = new Graph('gradcheck');
  const built: Built[] = cases.map((c, ci) => {
    const prefix = `c${ci}`;
    return g.scope(prefix, () => {
      const feeds: Tensor[] = [];
      const xs = c.inputs.map((inp, k) => {
        const dt = inp.dtype ?? opts.dtype;
        feeds.push(randomTensor(rng, dt, inp.shape, inp.sample));
        return g.input(`${prefix}.x${k}`, dt, inp.shape);
      });
      const outs = c.build(g, xs);
      const list: readonly Value[] = outs instanceof Array ? outs : [outs as Value];
      let f: Value | undefined;
      for (const o of list) {
        if (o.dtype !== 'float32' && o.dtype !== 'float64') {
          throw new TsFinetuneError('INVALID_ARGUMENT', `gradCheck case '${c.name}': output ${o.name} is ${o.dtype}`);
        }
        const w = g.constant(randomTensor(rng, o.dtype, o.shape));
        const term = op.Cast(op.ReduceSum(op.Mul(o, w), undefined, false), opts.dtype);
        f = f ? op.Add(f, term) : term;
      }
      const grads = backward(g, f!, xs);
      g.output(f!, `${prefix}.f`);
      xs.forEach((x, k) => g.output(grads.get(x)!, `${prefix}.g${k}`));
      const coords = xs.flatMap((x, k) => Array.from({ length: x.size }, (_, index) => ({ input: k, index })));
      return { c, prefix, xs, feeds, coords };
    });
  });

  const feedMap: Record<string, Tensor> = {};
  for (const b of built) b.xs.forEach((x, k) => (feedMap[x.name] = b.feeds[k]!));
  const runGraph = await run(g);
  const base = await runGraph(feedMap);
  const num = (t: Tensor | undefined, i: number): number => Number((t!.data as ArrayLike<number>)[i]);

  const maxCoords = Math.max(0, ...built.map((b) => b.coords.length));
  const fPlus: number[][] = built.map(() => []);
  const fMinus: number[][] = built.map(() => []);
  const step: number[][] = built.map(() => []);
  for (let j = 0; j < maxCoords; j++) {
    const active = built.flatMap((b, bi) => (j < b.coords.length ? [bi] : []));
    const saved = active.map((bi) => {
      const b = built[bi]!;
      const { input, index } = b.coords[j]!;
      const data = b.feeds[input]!.data as Float32Array | Float64Array;
      return { bi, data, index, x: data[index]! };
    });
    for (const sign of [1, -1]) {
      for (const s of saved) s.data[s.index] = s.x + sign * (built[s.bi]!.c.eps ?? opts.eps);
      const r = await runGraph(feedMap);
      for (const s of saved) {
        const fv = num(r[`${built[s.bi]!.prefix}.f`], 0);
        if (sign === 1) {
          fPlus[s.bi]![j] = fv;
          step[s.bi]![j] = s.data[s.index]!;
        } else {
          fMinus[s.bi]![j] = fv;
          step[s.bi]![j] = step[s.bi]![j]! - s.data[s.index]!;
        }
      }
    }
    for (const s of saved) s.data[s.index] = s.x;
  }

  return built.map((b, bi) => {
    const rtol = b.c.rtol ?? opts.rtol;
    const atol = b.c.atol ?? opts.atol;
    let worst: GradCheckResult['worst'] = { input: -1, index: -1, analytic: 0, numeric: 0, error: 0, tolerance: 1 };
    let ok = true;
    b.coords.forEach(({ input, index }, j) => {
      const analytic = num(base[`${b.prefix}.g${input}`], index);
      const numeric = (fPlus[bi]![j]! - fMinus[bi]![j]!) / step[bi]![j]!;
      const error = Math.abs(analytic - numeric);
      const tolerance = atol + rtol * Math.max(Math.abs(analytic), Math.abs(numeric));
      if (!(error <= tolerance)) ok = false;
      if (!(error / tolerance <= worst.error / worst.tolerance)) worst = { input, index, analytic, numeric, error, tolerance };
    });
    return { name: b.c.name, ok, coords: b.coords.length, worst };
  });
}
