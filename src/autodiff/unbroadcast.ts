// Small graph helpers every rule family shares: `unbroadcast` (the adjoint of numpy broadcasting:
// ReduceSum over the broadcast axes + Reshape), zeros of a shape, the keepdims shape of a reduction, and
// the materialisation of a scattered gradient. Not here: the rules themselves (rules-*.ts).

import { TsFinetuneError } from '../core/errors.js';
import type { DType } from '../core/dtype.js';
import { op, type Graph, type Value } from '../graph/index.js';
import type { ScatterGrad } from './types.js';

/**
 * Sum `grad` down to `targetShape`, the shape of an operand that numpy broadcasting stretched:
 * leading axes the operand lacks are summed away, axes where it has size 1 are summed with keepdims.
 *   forward:  y[B, T, C] = a[B, T, C] + b[C]      backward: db[C] = Σ_{B,T} dy
 */
export function unbroadcast(g: Graph, grad: Value, targetShape: readonly number[]): Value {
  const lead = grad.rank - targetShape.length;
  const bad = (): never => {
    throw new TsFinetuneError('SHAPE_MISMATCH', `unbroadcast: gradient [${grad.shape.join(', ')}] cannot be summed to [${targetShape.join(', ')}]`);
  };
  if (lead < 0) bad();
  const axes: number[] = [];
  for (let i = 0; i < lead; i++) axes.push(i);
  targetShape.forEach((d, i) => {
    const gd = grad.shape[lead + i]!;
    if (d === 1 && gd !== 1) axes.push(lead + i);
    else if (d !== gd) bad();
  });
  if (grad.graph !== g) bad();
  const summed = axes.length ? op.ReduceSum(grad, axes, true) : grad;
  return op.Reshape(summed, targetShape);
}

/** A zero tensor of `shape` (Expand of a scalar: nothing stored in the model). */
export function zeros(g: Graph, dtype: DType, shape: readonly number[]): Value {
  return op.Expand(g.scalar(0, dtype), shape);
}

/** The shape a reduction over `axes` (undefined or [] = all) has with keepdims=1. */
export function keptShape(shape: readonly number[], axes: readonly number[] | undefined): number[] {
  const r = shape.length;
  const ax = new Set((axes === undefined || axes.length === 0 ? shape.map((_, i) => i) : axes).map((a) => (a < 0 ? a + r : a)));
  return shape.map((d, i) => (ax.has(i) ? 1 : d));
}

/** ScatterElements(zeros(shape), indices, updates, axis, 'add'): the dense form of a ScatterGrad. */
export function materialize(g: Graph, s: ScatterGrad): Value {
  return op.ScatterElements(zeros(g, s.updates.dtype, s.shape), s.indices, s.updates, s.axis, 'add');
}
