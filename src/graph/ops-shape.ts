// Shape and movement ops: Reshape, Transpose, (Un)squeeze, Concat, Split, Slice, Pad, Expand, Tile, Gather,
// GatherElements, ScatterElements, Trilu. Shape arguments are static JS arrays, emitted as int64 constants.

import { TsFinetuneError } from '../core/errors.js';
import { normAxis, reshapeShape, sliceShape, transposeShape, broadcastShapes, formatShape } from './shape-infer.js';
import { attr, type Value } from './value.js';

export function Reshape(x: Value, shape: readonly number[]): Value {
  const out = reshapeShape(x.shape, shape);
  if (out.length === x.rank && out.every((d, i) => d === x.shape[i])) return x;
  // Emit the resolved shape (no 0 / -1) so the graph reads the same as our static shapes.
  return x.graph.node('Reshape', [x, x.graph.ints(out)], {}, [{ dtype: x.dtype, shape: out }])[0]!;
}

export function Transpose(x: Value, perm?: readonly number[]): Value {
  const p = perm ?? x.shape.map((_, i) => x.rank - 1 - i);
  if (p.every((v, i) => v === i)) return x;
  // Transpose(Transpose(y, q), p) with p∘q = identity is y: no node (the backward of a transposed weight
  // meets this, see autodiff/rules-matmul.ts). The inner node, if now unused, is pruned at export.
  const inner = x.producer;
  if (inner?.opType === 'Transpose' && inner.domain === '' && inner.inputs[0]) {
    const q = inner.attrs['perm'];
    if (q?.kind === 'ints' && q.value.length === p.length && p.every((v, i) => q.value[v] === i)) return inner.inputs[0];
  }
  return x.graph.node('Transpose', [x], { perm: attr.ints(p) }, [{ dtype: x.dtype, shape: transposeShape(x.shape, p) }])[0]!;
}

export function Unsqueeze(x: Value, axes: readonly number[]): Value {
  const r = x.rank + axes.length;
  const ax = axes.map((a) => normAxis('Unsqueeze', a, r)).sort((a, b) => a - b);
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < r; i++) out.push(ax.includes(i) ? 1 : x.shape[j++]!);
  return x.graph.node('Unsqueeze', [x, x.graph.ints(ax)], {}, [{ dtype: x.dtype, shape: out }])[0]!;
}

export function Squeeze(x: Value, axes: readonly number[]): Value {
  const ax = axes.map((a) => normAxis('Squeeze', a, x.rank));
  for (const a of ax) {
    if (x.shape[a] !== 1) throw new TsFinetuneError('SHAPE_MISMATCH', `Squeeze: axis ${a} of ${formatShape(x.shape)} is not 1`);
  }
  const out = x.shape.filter((_, i) => !ax.includes(i));
  return x.graph.node('Squeeze', [x, x.graph.ints(ax)], {}, [{ dtype: x.dtype, shape: out }])[0]!;
}

export function Concat(xs: readonly Value[], axis: number): Value {
  const first = xs[0];
  if (!first) throw new TsFinetuneError('GRAPH_ERROR', 'Concat of nothing');
  if (xs.length === 1) return first;
  const a = normAxis('Concat', axis, first.rank);
  const out = [...first.shape];
  out[a] = 0;
  for (const x of xs) {
    if (x.rank !== first.rank || x.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new TsFinetuneError('SHAPE_MISMATCH', `Concat on axis ${axis}: ${xs.map((v) => formatShape(v.shape)).join(', ')}`);
    }
    out[a]! += x.shape[a]!;
  }
  return first.graph.node('Concat', xs, { axis: attr.int(a) }, [{ dtype: first.dtype, shape: out }])[0]!;
}

export function Split(x: Value, sizes: readonly number[], axis: number): Value[] {
  const a = normAxis('Split', axis, x.rank);
  const total = sizes.reduce((s, v) => s + v, 0);
  if (total !== x.shape[a]) {
    throw new TsFinetuneError('SHAPE_MISMATCH', `Split: sizes [${sizes.join(', ')}] do not sum to axis ${a} of ${formatShape(x.shape)}`);
  }
  const types = sizes.map((s) => {
    const sh = [...x.shape];
    sh[a] = s;
    return { dtype: x.dtype, shape: sh };
  });
  return x.graph.node('Split', [x, x.graph.ints(sizes)], { axis: attr.int(a) }, types);
}

export function Slice(
  x: Value,
  starts: readonly number[],
  ends: readonly number[],
  axes?: readonly number[],
  steps?: readonly number[],
): Value {
  const g = x.graph;
  const out = sliceShape(x.shape, starts, ends, axes, steps);
  const clampBig = (v: number): number => Math.max(Math.min(v, 2 ** 53), -(2 ** 53));
  const ins = [x, g.ints(starts.map(clampBig)), g.ints(ends.map(clampBig)), axes ? g.ints(axes) : null, steps ? g.ints(steps) : null];
  while (ins[ins.length - 1] === null) ins.pop();
  return g.node('Slice', ins, {}, [{ dtype: x.dtype, shape: out }])[0]!;
}

/**
 * Constant-mode Pad: `pads` = [begin_0, …, begin_{r-1}, end_0, …, end_{r-1}]; negative entries crop
 * (ONNX allows it), which makes Pad(-pads) the exact adjoint of Pad(pads) (autodiff's Slice/Pad rules).
 */
export function Pad(x: Value, pads: readonly number[], value = 0): Value {
  const r = x.rank;
  if (pads.length !== 2 * r) {
    throw new TsFinetuneError('SHAPE_MISMATCH', `Pad: ${pads.length} pads for rank ${r} (need ${2 * r}: begins then ends)`);
  }
  const out = x.shape.map((d, i) => d + pads[i]! + pads[i + r]!);
  if (out.some((d) => d < 0)) throw new TsFinetuneError('SHAPE_MISMATCH', `Pad: pads [${pads.join(', ')}] crop ${formatShape(x.shape)} below 0`);
  if (pads.every((p) => p === 0)) return x;
  const g = x.graph;
  const ins = value === 0 ? [x, g.ints(pads)] : [x, g.ints(pads), g.scalar(value, x.dtype)];
  return g.node('Pad', ins, { mode: attr.string('constant') }, [{ dtype: x.dtype, shape: out }])[0]!;
}

export function Expand(x: Value, shape: readonly number[]): Value {
  const out = broadcastShapes('Expand', x.shape, shape);
  if (out.length === x.rank && out.every((d, i) => d === x.shape[i])) return x;
  return x.graph.node('Expand', [x, x.graph.ints(shape)], {}, [{ dtype: x.dtype, shape: out }])[0]!;
}

export function Tile(x: Value, repeats: readonly number[]): Value {
  const out = x.shape.map((d, i) => d * (repeats[i] ?? 1));
  return x.graph.node('Tile', [x, x.graph.ints(repeats)], {}, [{ dtype: x.dtype, shape: out }])[0]!;
}

/** numpy.take along `axis`: out shape = data[:axis] + indices + data[axis+1:]. */
export function Gather(data: Value, indices: Value, axis = 0): Value {
  const a = normAxis('Gather', axis, data.rank);
  const out = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)];
  return data.graph.node('Gather', [data, indices], { axis: attr.int(a) }, [{ dtype: data.dtype, shape: out }])[0]!;
}

export function GatherElements(data: Value, indices: Value, axis: number): Value {
  const a = normAxis('GatherElements', axis, data.rank);
  return data.graph.node('GatherElements', [data, indices], { axis: attr.int(a) }, [{ dtype: data.dtype, shape: indices.shape }])[0]!;
}

export function ScatterElements(
  data: Value,
  indices: Value,
  updates: Value,
  axis: number,
  reduction: 'none' | 'add' | 'mul' | 'max' | 'min' = 'none',
): Value {
  const a = normAxis('ScatterElements', axis, data.rank);
  return data.graph.node('ScatterElements', [data, indices, updates], { axis: attr.int(a), reduction: attr.string(reduction) }, [
    { dtype: data.dtype, shape: data.shape },
  ])[0]!;
}

/** Upper (upper=true) or lower triangle of the last two axes, offset k. */
export function Trilu(x: Value, upper: boolean, k = 0): Value {
  const g = x.graph;
  return g.node('Trilu', [x, g.scalar(k, 'int64')], { upper: attr.int(upper ? 1 : 0) }, [{ dtype: x.dtype, shape: x.shape }])[0]!;
}
