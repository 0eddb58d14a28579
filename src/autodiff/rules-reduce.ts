// Gradient rules of the reductions (ONNX opset 18+ form: axes as an int64 input, `keepdims` attribute;
// no axes = all axes). Every backward first puts dy in keepdims form (a free Reshape) and then lets
// broadcasting spread it over the reduced axes, so no Expand is materialised where a Mul follows.
// ReduceMax / ReduceMin split the gradient evenly between tied maxima, as PyTorch's amax/amin do.
// Not here: ArgMax-style integer outputs (non-differentiable by dtype).

import { op, type Value } from '../graph/index.js';
import type { GradContext, OpName, RuleEntry } from './types.js';
import { keptShape } from './unbroadcast.js';

/** Reduced axes of node input 0 (undefined = all). */
function axesOf(c: GradContext): number[] | undefined {
  const a = c.ints(1);
  return a === undefined || a.length === 0 ? undefined : a;
}

/** dy reshaped to the keepdims shape [.., 1, ..] so it broadcasts against x. */
function dyKept(c: GradContext): Value {
  return op.Reshape(c.gy, keptShape(c.node.in(0).shape, axesOf(c)));
}

/** y reshaped likewise (for rules that compare or subtract y from x). */
function yKept(c: GradContext): Value {
  return op.Reshape(c.y(0), keptShape(c.node.in(0).shape, axesOf(c)));
}

function count(c: GradContext): number {
  const x = c.node.in(0);
  const kept = keptShape(x.shape, axesOf(c));
  return x.shape.reduce((n, d, i) => (kept[i] === 1 && d !== 1 ? n * d : n), 1);
}

/** y = max/min over axes   dx = dy·[x = y] / #ties */
function extremum(c: GradContext): Value[] {
  const x = c.x(0);
  const hit = op.Cast(op.Equal(x, yKept(c)), x.dtype); // [x.shape], 1 at the extrema
  const ties = op.ReduceSum(hit, axesOf(c), true); // [kept]
  return [op.Mul(hit, op.Div(dyKept(c), ties))];
}

export const reduceRules = {
  // y = Σ_axes x                     dx = expand(dy)
  ReduceSum: (c) => [op.Expand(dyKept(c), c.node.in(0).shape)],
  // y = Σ_axes x / n                 dx = expand(dy / n)
  ReduceMean: (c) => [op.Expand(op.Div(dyKept(c), count(c)), c.node.in(0).shape)],
  // y = max_axes x                   dx = dy·[x = y] / #ties
  ReduceMax: extremum,
  // y = min_axes x                   dx = dy·[x = y] / #ties
  ReduceMin: extremum,
  // y = Σ_axes x²                    dx = 2x·dy
  ReduceSumSquare: (c) => [op.Mul(c.x(0), op.Mul(dyKept(c), 2))],
  // y = ln Σ_axes eˣ                 dx = dy·e^(x − y)
  ReduceLogSumExp: (c) => [op.Mul(dyKept(c), op.Exp(op.Sub(c.x(0), yKept(c))))],
} satisfies Partial<Record<OpName, RuleEntry>>;
