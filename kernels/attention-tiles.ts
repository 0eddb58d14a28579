// Attention of one block of stacked query rows over its key prefix in equal key tiles, as an ONNX function
// with its own backward (kernels/attention-block.ts computes the same with one [M, E] score tensor):
//   forward  (q [B, K, M, D], k [B, K, E, D], v [B, K, E, D], bias [B, 1, 1, R, E]) → (ctx, P_0 … P_{n−1})
//            tile j = keys [j·Tk, (j+1)·Tk):  S_j = q·k_jᵀ·scale + bias_j        [B, K, M, Tk]
//            m = max_j rowmax(S_j);  P_j = exp(S_j − m) / Σ_j rowsum(exp(S_j − m));  ctx = Σ_j P_j·v_j
//   backward Dr = rowsum(dctx ⊙ ctx);  dS_j = P_j ⊙ (dctx·v_jᵀ − Dr)
//            dq = Σ_j dS_j·k_j·scale;  dk_j = dS_jᵀ·q·scale;  dv_j = P_jᵀ·dctx
// Why: ORT's allocation planner hands a dead buffer only to a tensor of the SAME shape (SameSize in its
// allocation_planner.cc). With one [M, E] tensor per block, every block of a layer (E = Tk, 2·Tk, …) keeps
// its own score, probability and gradient buffers for the whole step; with tiles all of them are
// [B, K, M, Tk] and share buffers. The probabilities kept for the backward are the same 1 + … + n tiles.
// The softmax is the usual max-subtracted one, split over tiles: P_j equals Softmax's output to rounding.
// Not here: which blocks and tiles (src/nn/attention.ts).

import { attentionDims, attentionGradGuard } from './attention-block.js';
import { defineFunction, KERNEL_DOMAIN, op, type DefinedFunction, type Value } from '../src/graph/index.js';
import { registerFunctionGradient } from '../src/autodiff/index.js';

interface Shapes {
  B: number;
  K: number;
  G: number;
  R: number; // query rows per head
  Tk: number; // keys per tile
  n: number; // tiles: E = n·Tk
  D: number;
  scale: number;
}

const fns = new Map<string, DefinedFunction>();
const key = (s: Shapes): string => `${s.B}x${s.K}x${s.G}x${s.R}_T${s.Tk}x${s.n}_D${s.D}_s${s.scale.toPrecision(9)}`;
const sum = (xs: Value[]): Value => xs.reduce((a, b) => op.Add(a, b));
const tileOf = (x: Value, s: Shapes, j: number, axis: number): Value => (s.n === 1 ? x : op.Slice(x, [j * s.Tk], [(j + 1) * s.Tk], [axis]));

function qkvInputs(s: Shapes): { name: string; dtype: 'float32'; shape: number[] }[] {
  const E = s.n * s.Tk;
  return [
    { name: 'q', dtype: 'float32', shape: [s.B, s.K, s.G * s.R, s.D] },
    { name: 'k', dtype: 'float32', shape: [s.B, s.K, E, s.D] },
    { name: 'v', dtype: 'float32', shape: [s.B, s.K, E, s.D] },
  ];
}

function backwardFunction(s: Shapes): DefinedFunction {
  const name = `AttentionTilesGrad_${key(s)}`;
  const hit = fns.get(name);
  if (hit) return hit;
  const M = s.G * s.R;
  const pInputs = Array.from({ length: s.n }, (_, j) => ({ name: `p${j}`, dtype: 'float32' as const, shape: [s.B, s.K, M, s.Tk] }));
  const f = defineFunction(
    {
      name,
      inputs: [...qkvInputs(s), { name: 'ctx', dtype: 'float32', shape: [s.B, s.K, M, s.D] }, { name: 'dctx', dtype: 'float32', shape: [s.B, s.K, M, s.D] }, ...pInputs],
      docString: `backward of AttentionTiles_${key(s)} (kernels/attention-tiles.ts)`,
    },
    (_g, [q, k, v, ctx, dctx, ...ps]) => {
      const rowDot = op.ReduceSum(op.Mul(dctx!, ctx!), [-1]); // [B, K, M, 1]
      const dq: Value[] = [];
      const dk: Value[] = [];
      const dv: Value[] = [];
      for (let j = 0; j < s.n; j++) {
        const kj = tileOf(k!, s, j, 2);
        const p = ps[j]!;
        const ds = op.Mul(op.Sub(op.MatMul(dctx!, op.Transpose(tileOf(v!, s, j, 2), [0, 1, 3, 2])), rowDot), p); // [B, K, M, Tk]
        dq.push(op.MatMul(ds, kj));
        dk.push(op.MatMul(op.Transpose(ds, [0, 1, 3, 2]), q!)); // [B, K, Tk, D]
        dv.push(op.MatMul(op.Transpose(p, [0, 1, 3, 2]), dctx!));
      }
      return [op.Mul(sum(dq), s.scale), op.Mul(op.Concat(dk, 2), s.scale), op.Concat(dv, 2)];
    },
  );
  fns.set(name, f);
  return f;
}

function forwardFunction(s: Shapes): DefinedFunction {
  const name = `AttentionTiles_${key(s)}`;
  const hit = fns.get(name);
  if (hit) return hit;
  const M = s.G * s.R;
  const E = s.n * s.Tk;
  const f = defineFunction(
    {
      name,
      inputs: [...qkvInputs(s), { name: 'bias', dtype: 'float32', shape: [s.B, 1, 1, s.R, E] }],
      docString: `attention of ${M} stacked query rows over ${E} keys in ${s.n} tiles (kernels/attention-tiles.ts)`,
    },
    (_g, [q, k, v, bias]) => {
      const scores: Value[] = [];
      for (let j = 0; j < s.n; j++) {
        const sj = op.Mul(op.MatMul(q!, op.Transpose(tileOf(k!, s, j, 2), [0, 1, 3, 2])), s.scale); // [B, K, M, Tk]
        scores.push(op.Reshape(op.Add(op.Reshape(sj, [s.B, s.K, s.G, s.R, s.Tk]), tileOf(bias!, s, j, 4)), [s.B, s.K, M, s.Tk]));
      }
      const m = scores.map((x) => op.ReduceMax(x, [-1])).reduce((a, b) => op.Max(a, b)); // [B, K, M, 1]
      const ex = scores.map((x) => op.Exp(op.Sub(x, m)));
      const l = sum(ex.map((x) => op.ReduceSum(x, [-1]))); // [B, K, M, 1]
      const ps = ex.map((x) => op.Div(x, l));
      const ctx = sum(ps.map((p, j) => op.MatMul(p, tileOf(v!, s, j, 2))));
      return [ctx, ...ps];
    },
  );
  registerFunctionGradient(KERNEL_DOMAIN, name, (c) => {
    const dctx = attentionGradGuard('AttentionTiles', c, s.n);
    if (dctx === null) return [null, null, null, null];
    const ps = Array.from({ length: s.n }, (_, j) => c.y(j + 1));
    const [dq, dk, dv] = backwardFunction(s).call(c.g, [c.x(0), c.x(1), c.x(2), c.y(0), dctx, ...ps]);
    return [c.needs(0) ? dq! : null, c.needs(1) ? dk! : null, c.needs(2) ? dv! : null, null];
  });
  fns.set(name, f);
  return f;
}

/**
 * attentionBlock (kernels/attention-block.ts) over keys and values [B, K, E, D] taken `tile` keys at a time
 * (E a multiple of `tile`): the context [B, K, G·R, D].
 * @example
 * const ctx = attentionTiles(qi, kPrefix, vPrefix, biasRows, 2, 1 / Math.sqrt(D), 256);
 */
export function attentionTiles(q: Value, k: Value, v: Value, bias: Value, G: number, scale: number, tile: number): Value {
  const { B, K, R, E, D } = attentionDims('attentionTiles', q, k, v, bias, G, tile);
  return forwardFunction({ B, K, G, R, Tk: tile, n: E / tile, D, scale }).call(q.graph, [q, k, v, bias])[0]!;
}
