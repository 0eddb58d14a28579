// Gradient rules of the shape and movement ops: each backward moves dy back to where the forward took
// its elements from. Reshape-like ops reshape back; Transpose applies the inverse permutation; Concat and
// Split are each other's adjoint; Slice pads dy back (Pad with the complement, or a scatter for strided
// slices); Pad crops with the negated pads; Expand and Tile sum the copies.
// Not here: the index ops with data-dependent positions (rules-index.ts).

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { op, type Value } from '../graph/index.js';
import type { GradContext, OpName, RuleEntry } from './types.js';
import { unbroadcast, zeros } from './unbroadcast.js';

const reshapeBack = (c: GradContext): Value[] => [op.Reshape(c.gy, c.node.in(0).shape)];

/** Per sliced axis: where the slice starts in x, its step and length (ONNX Slice clamping rules). */
function sliceSpans(c: GradContext): { axis: number; start: number; step: number; len: number }[] {
  const x = c.node.in(0);
  const y = c.node.out(0);
  const starts = c.ints(1) ?? [];
  const axes = c.ints(3) ?? starts.map((_, i) => i);
  const steps = c.ints(4);
  return axes.map((a0, i) => {
    const axis = a0 < 0 ? a0 + x.rank : a0;
    const dim = x.shape[axis]!;
    const step = steps?.[i] ?? 1;
    let s = starts[i]!;
    if (s < 0) s += dim;
    s = step > 0 ? Math.min(Math.max(s, 0), dim) : Math.min(Math.max(s, -1), dim - 1);
    return { axis, start: s, step, len: y.shape[axis]! };
  });
}

export const shapeRules = {
  // y[shape'] = reshape(x[shape])                  dx = reshape(dy, shape)
  Reshape: (c) => [...reshapeBack(c), null],
  // y = unsqueeze(x) / squeeze(x)                  dx = reshape(dy, x.shape)
  Unsqueeze: (c) => [...reshapeBack(c), null],
  Squeeze: (c) => [...reshapeBack(c), null],
  // y = transpose(x, p)                            dx = transpose(dy, p⁻¹)
  Transpose: (c) => {
    const x = c.node.in(0);
    const p = c.node.attrInts('perm', x.shape.map((_, i) => x.rank - 1 - i));
    const inv = new Array<number>(p.length);
    p.forEach((v, i) => (inv[v] = i));
    return [op.Transpose(c.gy, inv)];
  },
  // y = concat(x₀, x₁, …; axis)                    dxᵢ = dy[.., offᵢ : offᵢ + nᵢ, ..]
  Concat: (c) => {
    const axis = c.node.attrInt('axis');
    const sizes = c.node.inputs.map((v) => v!.shape[axis]!);
    if (sizes.every((_, i) => c.needs(i))) return op.Split(c.gy, sizes, axis);
    let off = 0;
    return sizes.map((n, i) => {
      const piece = c.needs(i) ? op.Slice(c.gy, [off], [off + n], [axis]) : null;
      off += n;
      return piece;
    });
  },
  // [y₀, y₁, …] = split(x; axis)                   dx = concat(dy₀, dy₁, …)   (zeros for outputs without gradient)
  Split: (c) => {
    const axis = c.node.attrInt('axis');
    const x = c.node.in(0);
    const parts = c.node.outputs.map((o, i) => c.dy(i) ?? zeros(c.g, x.dtype, o.shape));
    return [op.Concat(parts, axis), null];
  },
  // y = x[s : e : k]  (per axis)                   dx = dy placed back at s, s+k, …, zeros elsewhere
  Slice: (c) => {
    const x = c.node.in(0);
    let grad = c.gy;
    const pads = new Array<number>(2 * x.rank).fill(0);
    for (const { axis, start, step, len } of sliceSpans(c)) {
      if (step === 1) {
        pads[axis] = start;
        pads[axis + x.rank] = x.shape[axis]! - start - len;
        continue;
      }
      // Strided: scatter along this axis, indices start + i·step broadcast to dy's current shape.
      const idxShape = grad.shape.map((d, i) => (i === axis ? d : 1));
      const idx = Tensor.int64(Array.from({ length: len }, (_, i) => start + i * step), idxShape);
      const indices = op.Expand(c.g.constant(idx), grad.shape);
      const target = grad.shape.map((d, i) => (i === axis ? x.shape[axis]! : d));
      grad = op.ScatterElements(zeros(c.g, x.dtype, target), indices, grad, axis);
    }
    return [op.Pad(grad, pads)];
  },
  // y = pad(x, pads, value)                        dx = pad(dy, −pads)   (crops; value: constant)
  Pad: (c) => {
    if (c.node.inputs[3]) throw new TsFinetuneError('MISSING_GRADIENT_RULE', `Pad with an axes input (node ${c.node.name}) has no gradient rule`);
    if (c.node.attrString('mode', 'constant') !== 'constant') {
      throw new TsFinetuneError('MISSING_GRADIENT_RULE', `Pad mode '${c.node.attrString('mode')}' (node ${c.node.name}) has no gradient rule`);
    }
    return [op.Pad(c.gy, c.ints(1)!.map((p) => -p)), null, null];
  },
  // y = expand(x, shape)                           dx = Σ dy over the broadcast axes
  Expand: (c) => [unbroadcast(c.g, c.gy, c.node.in(0).shape), null],
  // y[r₀·d₀, r₁·d₁, …] = tile(x[d₀, d₁, …])          dx = Σ_rᵢ reshape(dy, [r₀, d₀, r₁, d₁, …])
  Tile: (c) => {
    const x = c.node.in(0);
    const reps = c.ints(1)!;
    const split: number[] = [];
    const sumAxes: number[] = [];
    x.shape.forEach((d, i) => {
      const r = reps[i] ?? 1;
      if (r !== 1) {
        sumAxes.push(split.length);
        split.push(r);
      }
      split.push(d);
    });
    if (sumAxes.length === 0) return [c.gy, null];
    const summed = op.ReduceSum(op.Reshape(c.gy, split), sumAxes, false);
    return [op.Reshape(summed, x.shape), null];
  },
  // y = triu/tril(x, k)                            dx = triu/tril(dy, k)
  Trilu: (c) => [op.Trilu(c.gy, c.node.attrInt('upper', 1) === 1, c.ints(1)?.[0] ?? 0), null],
} satisfies Partial<Record<OpName, RuleEntry>>;
