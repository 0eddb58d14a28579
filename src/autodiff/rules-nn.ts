// Gradient rules of the neural-network ops: (Log)Softmax, the fused ORT ops DESIGN.md found usable in
// training — SimplifiedLayerNormalization (reusing its saved inv_std_var), com.microsoft RotaryEmbedding
// (its backward is the same op with −sin), SoftmaxCrossEntropyLoss (reusing its log_prob output) — and
// com.microsoft MatMulBnb4 with respect to its float input. The NF4/FP4 dequantisation that backward needs
// lives in kernels/, so MatMulBnb4's rule comes from `matMulBnb4Gradient(dequant)`, registered by kernels/
// with registerFunctionGradient('com.microsoft', 'MatMulBnb4', …); until then it fails naming the fix.
// Model-local function calls (`op.Call`) take their rules from the registry (function-gradients.ts).

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { op, type Graph, type Value } from '../graph/index.js';
import { after } from './schedule.js';
import type { GradContext, GradRule, OpName, RuleEntry } from './types.js';
import { unbroadcast } from './unbroadcast.js';

export interface Bnb4Meta {
  K: number;
  N: number;
  blockSize: number;
  quantType: 'nf4' | 'fp4';
}

/** Dequantise a bitsandbytes-layout 4-bit weight (packed, absmax) to W [N, K] in `dtype`. */
export type Bnb4Dequant = (g: Graph, packed: Value, absmax: Value, meta: Bnb4Meta, dtype: Value['dtype']) => Value;

/** Float32 bytes of W dequantised at once in MatMulBnb4's backward (bench/lora-memory.ts, docs/quant.md). */
export const BNB4_DX_CHUNK_BYTES = 8 * 2 ** 20;

/**
 * Row ranges [start, end) of W [N, K] to dequantise one at a time: each a whole number of `blockSize`
 * blocks (so a range is a plain slice of packed and absmax), at most `chunkBytes` as float32. One range
 * when W is small or its rows do not hold whole blocks.
 */
export function bnb4RowChunks(meta: Bnb4Meta, chunkBytes = BNB4_DX_CHUNK_BYTES): [number, number][] {
  const { N, K, blockSize } = meta;
  if (K % blockSize !== 0 || K % 2 !== 0 || 4 * N * K <= chunkBytes) return [[0, N]];
  const rows = Math.max(1, Math.floor(chunkBytes / (4 * K)));
  const out: [number, number][] = [];
  for (let s = 0; s < N; s += rows) out.push([s, Math.min(N, s + rows)]);
  return out;
}

/**
 * The MatMulBnb4 rule given a dequantiser (kernels/ supplies the NF4/FP4 one):
 *   forward:   y[…, N] = x[…, K] · dequant(W)ᵀ        (transB = 1, the only correct form in ORT 1.30)
 *   backward:  dx[…, K] = Σ_rows dy[…, rows] · dequant(W[rows])
 * The packed weight is anchored to dy so that ORT cannot run the dequantisation early and keep a float
 * copy of every frozen weight alive through the forward. A large W is dequantised in row blocks of
 * `chunkBytes` (bnb4RowChunks), block k anchored on the sum of blocks < k: one block's float32 values and
 * int32 codes are live at a time instead of the whole weight's (6 bytes per weight: 66 MB for a
 * 2048 × 5632 MLP weight, the largest transient of a checkpointed QLoRA step).
 */
export function matMulBnb4Gradient(dequant: Bnb4Dequant, chunkBytes = BNB4_DX_CHUNK_BYTES): GradRule {
  return (c) => {
    const n = c.node;
    if (n.attrInt('transB', 1) !== 1) {
      throw new TsFinetuneError('MISSING_GRADIENT_RULE', `MatMulBnb4 with transB=0 (node ${n.name}) is wrong in ORT 1.30 and has no rule`);
    }
    if (!c.needs(0)) return [null, null, null];
    const x = n.in(0);
    const meta: Bnb4Meta = {
      K: n.attrInt('K'),
      N: n.attrInt('N'),
      blockSize: n.attrInt('block_size'),
      quantType: n.attrInt('quant_type', 1) === 1 ? 'nf4' : 'fp4',
    };
    const { N, K, blockSize } = meta;
    const chunks = c.x(2).rank === 1 ? bnb4RowChunks(meta, chunkBytes) : [[0, N] as [number, number]];
    let dx: Value | undefined;
    for (const [r0, r1] of chunks) {
      const whole = r1 - r0 === N;
      const packed = after(c.g, c.x(1), [dx ?? c.gy]);
      const w = dequant(
        c.g,
        whole ? packed : op.Slice(packed, [(r0 * K) / 2], [(r1 * K) / 2], [0]),
        whole ? c.x(2) : op.Slice(c.x(2), [(r0 * K) / blockSize], [(r1 * K) / blockSize], [0]),
        { ...meta, N: r1 - r0 },
        x.dtype,
      ); // [rows, K]
      if (w.rank !== 2 || w.shape[0] !== r1 - r0 || w.shape[1] !== K || w.dtype !== x.dtype) {
        throw new TsFinetuneError('GRAPH_ERROR', `MatMulBnb4 dequant hook returned ${w.dtype}[${w.shape.join(', ')}], expected ${x.dtype}[${r1 - r0}, ${K}]`);
      }
      const dy = whole ? c.gy : op.Slice(c.gy, [r0], [r1], [c.gy.rank - 1]); // [..., rows]
      const part = op.MatMul(dy, w); // [..., K]
      dx = dx === undefined ? part : op.Add(dx, part);
    }
    return [dx!, null, null];
  };
}

const noDequant: GradRule = (c) => {
  throw new TsFinetuneError(
    'MISSING_GRADIENT_RULE',
    `No gradient for com.microsoft.MatMulBnb4 (node ${c.node.name}): register one with ` +
      `registerFunctionGradient('com.microsoft', 'MatMulBnb4', matMulBnb4Gradient(dequant)) using the NF4/FP4 dequant from kernels/`,
    { node: c.node.name, op: 'MatMulBnb4' },
  );
};

/** The incoming gradient of SoftmaxCrossEntropyLoss's loss output, per label position [N, d…]. */
function ceWeights(c: GradContext, labels: Value, valid: Value | null): Value {
  const reduction = c.node.attrString('reduction', 'mean');
  const dt = c.node.in(0).dtype;
  const validF = valid ? op.Cast(valid, dt) : null;
  let w: Value = c.gy; // 'none': [N, d…]; else a scalar
  if (reduction === 'mean') {
    const count = validF ? op.Max(op.ReduceSum(validF, undefined, false), 1) : labels.size;
    w = op.Div(w, count);
  }
  if (reduction !== 'none') w = op.Expand(w, labels.shape);
  return validF ? op.Mul(w, validF) : w;
}

export const nnRules = {
  // y = softmax(x)  along axis                   dx = y·(dy − Σ dy·y)
  Softmax: (c) => {
    const axis = c.node.attrInt('axis', -1);
    const y = c.y(0);
    return [op.Mul(y, op.Sub(c.gy, op.ReduceSum(op.Mul(c.gy, y), [axis], true)))];
  },
  // y = x − logΣeˣ  along axis                   dx = dy − eʸ·Σ dy
  // When dy is a scatter (GatherElements at the labels: cross-entropy), Σ dy is the updates themselves
  // and dx = scatter-add(−eʸ·Σupd, idx, upd): one Exp, one Mul and one ScatterElements (p − onehot).
  LogSoftmax: (c) => {
    const axis = c.node.attrInt('axis', -1);
    const x = c.node.in(0);
    const p = op.Exp(c.y(0)); // [.., V]
    const s = c.scatterDy(0);
    const sameOtherDims = s !== null && s.indices.shape.every((d, i) => i === s.axis || d === x.shape[i]);
    if (s && s.axis === axis && sameOtherDims) {
      if (s.indices.shape[s.axis] === 1) {
        // One target per row (cross-entropy): updates u [.., 1] is the row's whole dy, so
        // dx = −u·p + u·onehot = (p − onehot) ⊙ (−u). Emitted as Mul(p − onehot, −u) with the row scale
        // last, so a MatMul consuming it (lm_head) can scale its [.., C] result instead of the [.., V]
        // input (rules-matmul.ts): one pass over the B×T×V logits fewer.
        const minusOne = c.g.constant(Tensor.fromNumbers(new Array<number>(s.indices.size).fill(-1), s.indices.shape, x.dtype));
        return [op.Mul(op.ScatterElements(p, s.indices, minusOne, axis, 'add'), op.Neg(s.updates))];
      }
      const total = op.ReduceSum(s.updates, [axis], true); // [.., 1]
      return [op.ScatterElements(op.Mul(p, op.Neg(total)), s.indices, s.updates, axis, 'add')];
    }
    return [op.Sub(c.gy, op.Mul(p, op.ReduceSum(c.gy, [axis], true)))];
  },
  // [y, r] = rmsnorm(x, scale): r[.., 1] = 1/√(mean(x²) + ε) (saved), n = x·r, y = n·scale
  //   dscale = Σ_rows dy·n;   g = dy·scale;   dx = r·(g − n·mean(g·n));   (+ dr·(−r³·x/C) when r is used)
  SimplifiedLayerNormalization: (c) => {
    const x = c.node.in(0);
    if (c.node.attrInt('axis', -1) !== -1 && c.node.attrInt('axis', -1) !== x.rank - 1) {
      throw new TsFinetuneError('MISSING_GRADIENT_RULE', `SimplifiedLayerNormalization over axis ${c.node.attrInt('axis')} (node ${c.node.name}): only the last axis has a rule`);
    }
    const xv = c.x(0);
    const r = op.Cast(c.y(1), x.dtype); // [.., 1] ORT's inv_std_var (float32 even for float64 x)
    const n = op.Mul(xv, r); // [.., C]
    const dy = c.dy(0);
    let dx: Value | null = null;
    let dScale: Value | null = null;
    if (dy) {
      if (c.needs(1)) dScale = unbroadcast(c.g, op.Mul(dy, n), c.node.in(1).shape); // [C]
      if (c.needs(0)) {
        const gn = op.Mul(dy, c.x(1)); // [.., C]
        dx = op.Mul(r, op.Sub(gn, op.Mul(n, op.ReduceMean(op.Mul(gn, n), [-1], true))));
      }
    }
    const dr = c.dy(1);
    if (dr && c.needs(0)) {
      const C = x.shape[x.rank - 1]!;
      const viaR = op.Mul(xv, op.Mul(op.Cast(dr, x.dtype), op.Div(op.Mul(r, op.Mul(r, r)), -C)));
      dx = dx ? op.Add(dx, viaR) : viaR;
    }
    return [dx, dScale];
  },
  // y = rotate(x, θ(pos)) per pair (cos, sin)    dx = rotate(dy, −θ): the same op with −sin (rotations are orthogonal)
  RotaryEmbedding: (c) => {
    const n = c.node;
    const dx = c.g.node('RotaryEmbedding', [c.gy, c.x(1), c.x(2), op.Neg(c.x(3))], n.attrs, [{ dtype: n.in(0).dtype, shape: n.in(0).shape }], {
      domain: n.domain,
    })[0]!;
    return [dx, null, null, null];
  },
  // [loss, logp] = CE(scores[N, C, d…], labels[N, d…]);  p = e^logp
  //   d scores = w·(p − onehot(label)) along axis 1, w = dloss (÷ #valid for 'mean', 0 at ignore_index)
  //            + dlogp − p·Σ_C dlogp                     (when log_prob is used)
  SoftmaxCrossEntropyLoss: (c) => {
    if (c.node.inputs[2]) {
      throw new TsFinetuneError('MISSING_GRADIENT_RULE', `SoftmaxCrossEntropyLoss with class weights (node ${c.node.name}) has no gradient rule`);
    }
    const p = op.Exp(c.y(1)); // [N, C, d…]
    let dScores: Value | null = null;
    if (c.dy(0)) {
      const labels = c.x(1);
      const ignore = c.node.attrs['ignore_index'] ? c.node.attrInt('ignore_index') : undefined;
      const valid = ignore === undefined ? null : op.Not(op.Equal(labels, ignore));
      const safe = valid ? op.Where(valid, labels, 0) : labels;
      const w = op.Unsqueeze(ceWeights(c, labels, valid), [1]); // [N, 1, d…]
      dScores = op.ScatterElements(op.Mul(p, w), op.Unsqueeze(safe, [1]), op.Neg(w), 1, 'add');
    }
    const dlp = c.dy(1);
    if (dlp) {
      const viaLogp = op.Sub(dlp, op.Mul(p, op.ReduceSum(dlp, [1], true)));
      dScores = dScores ? op.Add(dScores, viaLogp) : viaLogp;
    }
    return [dScores, null];
  },
  MatMulBnb4: noDequant,
  Call: 'registry',
} satisfies Partial<Record<OpName, RuleEntry>>;
