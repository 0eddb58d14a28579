// Finite-difference cases for every gradient rule, grouped by family and by the dtype ORT's CPU EP has
// kernels for (float64 where it can, float32 for Erf, Softplus, RotaryEmbedding, MatMulBnb4 and the
// float64 → float32 Cast). Each case: random inputs (shapes with broadcasting), f = Σ w ⊙ op(x).
import type { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import { op, type Graph, type Value } from '../../src/graph/index.js';
import type { GradCheckCase } from '../../src/autodiff/grad-check.js';
import { NF4_CODE } from '../../src/quant/codebooks.js';

/** |x| in [lo, hi) with a random sign: keeps Relu / Abs / Reciprocal away from their kinks and poles. */
export const away =
  (lo: number, hi: number) =>
  (r: Rng): number =>
    (r.random() < 0.5 ? -1 : 1) * r.uniform(lo, hi);
export const pos =
  (lo: number, hi: number) =>
  (r: Rng): number =>
    r.uniform(lo, hi);
/** Uniform in [−1, 1) but at least 0.1 away from ±0.5 (Clip's bounds). */
const offBounds = (r: Rng): number => {
  for (;;) {
    const v = r.uniform(-1, 1);
    if (Math.abs(Math.abs(v) - 0.5) > 0.1) return v;
  }
};

const ints = (g: Graph, vals: number[], shape: number[]): Value => g.constant(Tensor.int64(vals, shape));
const bools = (g: Graph, vals: number[], shape: number[]): Value => g.constant(new Tensor('bool', shape, Uint8Array.from(vals)));
const floats = (g: Graph, like: Value, vals: number[], shape: number[]): Value => g.constant(Tensor.fromNumbers(vals, shape, like.dtype));

type C = GradCheckCase;
const u = (name: string, f: (x: Value) => Value | readonly Value[], sample?: (r: Rng) => number, shape = [2, 3, 4]): C => ({
  name,
  inputs: [{ shape, ...(sample ? { sample } : {}) }],
  build: (_g, [x]) => f(x!),
});
const b = (name: string, f: (a: Value, b: Value) => Value, sa: number[], sb: number[], extra: Partial<C> = {}): C => ({
  name,
  inputs: [{ shape: sa }, { shape: sb }],
  build: (_g, [x, y]) => f(x!, y!),
  ...extra,
});

export const elementwiseCases: C[] = [
  b('Add broadcast [2,3,4]+[3,1]', op.Add, [2, 3, 4], [3, 1]),
  b('Add broadcast [3]+[2,3]', op.Add, [3], [2, 3]),
  b('Sub broadcast [2,3]-[2,1,3]', op.Sub, [2, 3], [2, 1, 3]),
  b('Mul broadcast [2,3,4]*[4]', op.Mul, [2, 3, 4], [4]),
  { name: 'Mul x*x (accumulation)', inputs: [{ shape: [5] }], build: (_g, [x]) => op.Mul(x!, x!) },
  { name: 'Div [2,3]/[2,1]', inputs: [{ shape: [2, 3] }, { shape: [2, 1], sample: away(0.5, 1.5) }], build: (_g, [a, c]) => op.Div(a!, c!) },
  { name: 'Pow [2,3]^[3]', inputs: [{ shape: [2, 3], sample: pos(0.5, 1.5) }, { shape: [3] }], build: (_g, [a, c]) => op.Pow(a!, c!) },
  u('Pow x^3 (constant exponent)', (x) => op.Pow(x, 3), undefined, [6]),
  b('Max [2,3] vs [3]', op.Max, [2, 3], [3]),
  b('Min [3,1] vs [2,1,4]', op.Min, [3, 1], [2, 1, 4]),
  {
    name: 'Where cond[2,3] ? a[2,3] : b[3]',
    inputs: [{ shape: [2, 3] }, { shape: [3] }],
    build: (g, [a, c]) => op.Where(bools(g, [1, 0, 1, 0, 0, 1], [2, 3]), a!, c!),
  },
  u('Neg', op.Neg),
  u('Exp', op.Exp),
  u('Log', op.Log, pos(0.3, 2)),
  u('Sqrt', op.Sqrt, pos(0.3, 2)),
  u('Reciprocal', op.Reciprocal, away(0.4, 1.5)),
  u('Sigmoid', op.Sigmoid),
  u('Tanh', op.Tanh),
  u('Relu', op.Relu, away(0.05, 1)),
  u('Abs', op.Abs, away(0.05, 1)),
  u('Sin', op.Sin),
  u('Cos', op.Cos),
  u('Clip [-0.5, 0.5]', (x) => op.Clip(x, -0.5, 0.5), offBounds),
  u('Clip min only', (x) => op.Clip(x, -0.5), offBounds, [8]),
  u('Identity', op.Identity, undefined, [4]),
  u('SiLU composite x·σ(x)', (x) => op.Mul(x, op.Sigmoid(x)), undefined, [6]),
  u('SiLU as σ(x)·x', (x) => op.Mul(op.Sigmoid(x), x), undefined, [6]),
  u('SiLU whose σ(x) has another consumer', (x) => {
    const s = op.Sigmoid(x);
    return op.Add(op.Mul(x, s), op.Mul(s, s));
  }, undefined, [6]),
  { name: 'Cast float32 → float64', inputs: [{ shape: [2, 3], dtype: 'float32' }], build: (_g, [x]) => op.Cast(x!, 'float64'), eps: 1e-3 },
  // Non-differentiable ops on the path carry no gradient (and do not throw).
  u('Sign / Floor / comparisons stop', (x) => op.Add(op.Mul(x, op.Sign(x)), op.Add(op.Floor(op.Mul(x, 0)), op.Cast(op.Greater(x, 0), x.dtype))), away(0.05, 1), [6]),
];

export const reduceCases: C[] = [
  u('ReduceSum axis 1 keepdims', (x) => op.ReduceSum(x, [1])),
  u('ReduceSum all, no keepdims', (x) => op.ReduceSum(x, undefined, false)),
  u('ReduceMean axes [0,2] no keepdims', (x) => op.ReduceMean(x, [0, 2], false)),
  u('ReduceMax axis -1', (x) => op.ReduceMax(x, [-1])),
  u('ReduceMin axis 0 no keepdims', (x) => op.ReduceMin(x, [0], false)),
  u('ReduceSumSquare axis 1', (x) => op.ReduceSumSquare(x, [1])),
  u('ReduceLogSumExp axis -1 no keepdims', (x) => op.ReduceLogSumExp(x, [-1], false)),
  u('RMSNorm composite', (x) => op.Mul(x, op.Reciprocal(op.Sqrt(op.Add(op.ReduceMean(op.Mul(x, x), [-1]), 1e-5))))),
];

export const shapeCases: C[] = [
  u('Reshape [2,3,4]→[6,4]', (x) => op.Reshape(x, [6, -1])),
  u('Transpose [2,0,1]', (x) => op.Transpose(x, [2, 0, 1])),
  u('Transpose default (reverse)', (x) => op.Transpose(x)),
  u('Unsqueeze [0,3]', (x) => op.Unsqueeze(x, [0, 3]), undefined, [2, 3]),
  u('Squeeze [1]', (x) => op.Squeeze(x, [1]), undefined, [2, 1, 3]),
  {
    name: 'Concat axis 1, all need gradients',
    inputs: [{ shape: [2, 1, 3] }, { shape: [2, 2, 3] }, { shape: [2, 3, 3] }],
    build: (_g, xs) => op.Concat(xs, 1),
  },
  {
    name: 'Concat with a constant piece',
    inputs: [{ shape: [2, 3] }],
    build: (g, [x]) => op.Concat([floats(g, x!, [1, 2, 3, 4], [2, 2]), x!], -1),
  },
  u('Split [1,2] axis 1', (x) => op.Split(x, [1, 2], 1)),
  u('Split, one output used', (x) => op.Split(x, [1, 3], 2)[1]!),
  u('Slice step 1, negative start', (x) => op.Slice(x, [-3, 1], [4, 3], [2, 1])),
  u('Slice step 2', (x) => op.Slice(x, [0], [4], [2], [2])),
  u('Slice step -1 (reverse)', (x) => op.Slice(x, [-1], [-1e9], [1], [-1])),
  u('Slice two axes, steps 2 and 1', (x) => op.Slice(x, [1, 0], [3, 2], [2, 0], [2, 1])),
  u('Pad [1,0 | 0,2]', (x) => op.Pad(x, [1, 0, 0, 2]), undefined, [2, 3]),
  u('Pad with negative pads (crop)', (x) => op.Pad(x, [0, -1, 1, 2, 0, -1], 0.5)),
  u('Expand [3,1]→[2,3,4]', (x) => op.Expand(x, [2, 3, 4]), undefined, [3, 1]),
  u('Tile [2,3] ×[2,1]', (x) => op.Tile(x, [2, 1]), undefined, [2, 3]),
  u('Tile [2,3] ×[3,2]', (x) => op.Tile(x, [3, 2]), undefined, [2, 3]),
  u('Trilu upper k=1', (x) => op.Trilu(x, true, 1)),
  u('Trilu lower k=0', (x) => op.Trilu(x, false), undefined, [4, 4]),
];

export const indexCases: C[] = [
  u('Gather axis 0 (embedding), repeated ids', (x) => op.Gather(x, ints(x.graph, [0, 2, 2, 4, 1, 0], [2, 3]), 0), undefined, [5, 3]),
  u('Gather axis 1, negative index', (x) => op.Gather(x, ints(x.graph, [-1, 0, 2, -3], [2, 2]), 1)),
  u('Gather scalar index', (x) => op.Gather(x, x.graph.constant(Tensor.int64([2], [])), 0), undefined, [4, 3]),
  u('GatherElements axis 1, repeats', (x) => op.GatherElements(x, ints(x.graph, [0, 2, 2, 1, 1, 1, 0, 0], [2, 4]), 1), undefined, [2, 3]),
  {
    name: 'ScatterElements none: data and updates',
    inputs: [{ shape: [3, 4] }, { shape: [2, 4] }],
    build: (g, [d, up]) => op.ScatterElements(d!, ints(g, [0, 2, 1, 0, 2, 0, 0, 1], [2, 4]), up!, 0),
  },
  {
    name: 'ScatterElements add, repeated indices',
    inputs: [{ shape: [3, 4] }, { shape: [3, 2] }],
    build: (g, [d, up]) => op.ScatterElements(d!, ints(g, [0, 0, 3, 1, 2, 2], [3, 2]), up!, 1, 'add'),
  },
];

export const matmulCases: C[] = [
  b('MatMul [3,4]·[4,5]', op.MatMul, [3, 4], [4, 5]),
  b('MatMul [2,3,4]·[4,5] (weight: one GEMM)', op.MatMul, [2, 3, 4], [4, 5]),
  b('MatMul [2,3,4]·[2,4,5]', op.MatMul, [2, 3, 4], [2, 4, 5]),
  b('MatMul [2,1,3,4]·[3,4,2] batch broadcast', op.MatMul, [2, 1, 3, 4], [3, 4, 2]),
  b('MatMul [3,4]·[2,4,2] (a broadcast)', op.MatMul, [3, 4], [2, 4, 2]),
  b('MatMul [4]·[4,5]', op.MatMul, [4], [4, 5]),
  b('MatMul [3,4]·[4]', op.MatMul, [3, 4], [4]),
  b('MatMul [4]·[4]', op.MatMul, [4], [4]),
  b('MatMul x·Transpose(W) (HF linear)', (x, w) => op.MatMul(x, op.Transpose(w, [1, 0])), [2, 3, 4], [5, 4]),
];

export const nnCases: C[] = [
  u('Softmax axis -1', (x) => op.Softmax(x)),
  u('Softmax axis 0', (x) => op.Softmax(x, 0)),
  u('LogSoftmax axis -1', (x) => op.LogSoftmax(x)),
  u('LogSoftmax axis 1', (x) => op.LogSoftmax(x, 1)),
  u('LogSoftmax + GatherElements (fused CE gradient)', (x) => op.GatherElements(op.LogSoftmax(x), ints(x.graph, [0, 3, 3, 1, 2, 0], [2, 3, 1]), -1)),
  u('Softmax + GatherElements (scatter materialised)', (x) => op.GatherElements(op.Softmax(x), ints(x.graph, [0, 3, 3, 1, 2, 0], [2, 3, 1]), -1)),
  {
    name: 'SimplifiedLayerNormalization: x and scale',
    inputs: [{ shape: [2, 3, 6] }, { shape: [6] }],
    build: (_g, [x, s]) => op.SimplifiedLayerNormalization(x!, s!, 1e-5)[0],
    rtol: 1e-5,
  },
  {
    // inv_std_var is float32 even for float64 x: a larger step and tolerance for its float32 rounding.
    name: 'SimplifiedLayerNormalization: y and inv_std_var used',
    inputs: [{ shape: [3, 5] }, { shape: [5] }],
    build: (_g, [x, s]) => op.SimplifiedLayerNormalization(x!, s!, 1e-5),
    eps: 1e-3,
    rtol: 1e-3,
    atol: 1e-4,
  },
  u('SoftmaxCrossEntropyLoss mean', (x) => op.SoftmaxCrossEntropyLoss(x, ints(x.graph, [0, 3, 2], [3]))[0], undefined, [3, 4]),
  u('SoftmaxCrossEntropyLoss sum, [N,C,d]', (x) => op.SoftmaxCrossEntropyLoss(x, ints(x.graph, [0, 3, 1, 2, 2, 0], [2, 3]), { reduction: 'sum' })[0], undefined, [2, 4, 3]),
  u(
    'SoftmaxCrossEntropyLoss mean with ignore_index',
    (x) => op.SoftmaxCrossEntropyLoss(x, ints(x.graph, [0, -1, 1, 2, -1, 0], [2, 3]), { ignoreIndex: -1 })[0],
    undefined,
    [2, 4, 3],
  ),
  u('SoftmaxCrossEntropyLoss none + log_prob used', (x) => op.SoftmaxCrossEntropyLoss(x, ints(x.graph, [1, 0, 3], [3]), { reduction: 'none', ignoreIndex: 0 }), undefined, [3, 4]),
];

/** The bitsandbytes layout for a test weight: codes [N·K] (high nibble first), absmax per block. */
export function nf4Weight(N: number, K: number, blockSize: number, seed: (i: number) => number): { packed: Tensor; absmax: Tensor; dense: Tensor } {
  const n = N * K;
  const codes = Array.from({ length: n }, (_, i) => Math.floor(seed(i) * 16) % 16);
  const absmax = Array.from({ length: Math.ceil(n / blockSize) }, (_, i) => 0.5 + 0.25 * i);
  const packed = new Uint8Array(n / 2);
  for (let i = 0; i < n / 2; i++) packed[i] = (codes[2 * i]! << 4) | codes[2 * i + 1]!;
  const dense = Float32Array.from(codes, (c, i) => NF4_CODE[c]! * absmax[Math.floor(i / blockSize)]!);
  return { packed: new Tensor('uint8', [n / 2], packed), absmax: Tensor.fromNumbers(absmax, [absmax.length]), dense: new Tensor('float32', [N, K], dense) };
}

export const bnbWeight = nf4Weight(4, 16, 16, (i) => ((i * 7919) % 97) / 97);

export const float32Cases: C[] = [
  u('Erf', op.Erf),
  u('Softplus', op.Softplus),
  u('GELU composite (Erf)', (x) => op.Mul(op.Mul(x, 0.5), op.Add(op.Erf(op.Mul(x, Math.SQRT1_2)), 1)), undefined, [8]),
  { name: 'Cast float64 → float32', inputs: [{ shape: [2, 3], dtype: 'float64' }], build: (_g, [x]) => op.Cast(op.Mul(x!, x!), 'float32') },
  {
    name: 'RotaryEmbedding [B,N,S,D]',
    inputs: [{ shape: [1, 2, 3, 4] }],
    build: (g, [x]) => {
      const ang = [0, 0, 0.7, 0.3, 1.4, 0.6]; // [S=3, D/2=2]
      const cos = g.constant(Tensor.fromNumbers(ang.map(Math.cos), [3, 2]));
      const sin = g.constant(Tensor.fromNumbers(ang.map(Math.sin), [3, 2]));
      return op.RotaryEmbedding(x!, ints(g, [0, 1, 2], [1, 3]), cos, sin);
    },
  },
  {
    name: 'RotaryEmbedding [B,S,N·D], positions reordered',
    inputs: [{ shape: [2, 3, 8] }],
    build: (g, [x]) => {
      const ang = [0, 0, 0.7, 0.3, 1.4, 0.6, 2.1, 0.9]; // [4, 2]
      const cos = g.constant(Tensor.fromNumbers(ang.map(Math.cos), [4, 2]));
      const sin = g.constant(Tensor.fromNumbers(ang.map(Math.sin), [4, 2]));
      return op.RotaryEmbedding(x!, ints(g, [0, 1, 2, 3, 1, 2], [2, 3]), cos, sin, { numHeads: 2 });
    },
  },
  {
    name: 'MatMulBnb4 w.r.t. x (NF4, block 16)',
    inputs: [{ shape: [2, 16] }],
    build: (g, [x]) => op.MatMulBnb4(x!, g.constant(bnbWeight.packed), g.constant(bnbWeight.absmax), { K: 16, N: 4, blockSize: 16, quantType: 'nf4' }),
  },
];
