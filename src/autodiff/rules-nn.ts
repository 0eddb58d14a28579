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

/**
 * The MatMulBnb4 rule given a dequantiser (kernels/ supplies the NF4/FP4 one):
 *   forward:   y[…, N] = x[…, K] · dequant(W)ᵀ        (transB = 1, the only correct form in ORT 1.30)
 *   backward:  dx[…, K] = dy[…, N] · dequant(W)[N, K]
 * The packed weight is anchored to dy so that ORT cannot run the dequantisation early and keep a float
 * copy of every frozen weight alive through the forward.
 */
export function matMulBnb4Gradient(dequant: Bnb4Dequant): GradRule {
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
    const w = dequant(c.g, after(c.g, c.x(1), [c.gy]), c.x(2), meta, x.dtype); // [N, K]
    if (w.rank !== 2 || w.shape[0] !== meta.N || w.shape[1] !== meta.K || w.dtype !== x.dtype) {
      throw new TsFinetuneError('GRAPH_ERROR', `MatMulBnb4 dequant hook returned ${w.dtype}[${w.shape.join(', ')}], expected ${x.dtype}[${meta.N}, ${meta.K}]`);
    }
    return [op.MatMul(c.gy, w), null, null]; // [..., K]
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
