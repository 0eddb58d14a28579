// Static shape rules shared by the op builders: numpy broadcasting, axis normalisation, MatMul batching,
// Reshape's 0/-1 resolution. Every op we emit computes its output shape here at build time, so a shape
// error surfaces where the graph is built (with the op and shapes named), not inside ORT.

import { TsFinetuneError } from '../core/errors.js';

function fail(op: string, msg: string): never {
  throw new TsFinetuneError('SHAPE_MISMATCH', `${op}: ${msg}`);
}

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** Numpy-style broadcast of any number of shapes. */
export function broadcastShapes(op: string, ...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    const off = rank - s.length;
    for (let i = 0; i < s.length; i++) {
      const d = s[i]!;
      const cur = out[off + i]!;
      if (cur === 1) out[off + i] = d;
      else if (d !== 1 && d !== cur) fail(op, `cannot broadcast ${shapes.map(fmt).join(' with ')}`);
    }
  }
  return out;
}

export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) fail(op, `axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** numpy.matmul shapes, including 1-D operands and batch broadcasting. */
export function matmulShape(a: readonly number[], b: readonly number[]): number[] {
  if (a.length === 0 || b.length === 0) fail('MatMul', 'scalar operands are not allowed');
  const a2 = a.length === 1 ? [1, a[0]!] : [...a];
  const b2 = b.length === 1 ? [b[0]!, 1] : [...b];
  const k1 = a2[a2.length - 1]!;
  const k2 = b2[b2.length - 2]!;
  if (k1 !== k2) fail('MatMul', `inner dimensions differ: ${fmt(a)} × ${fmt(b)}`);
  const batch = broadcastShapes('MatMul', a2.slice(0, -2), b2.slice(0, -2));
  const out = [...batch, a2[a2.length - 2]!, b2[b2.length - 1]!];
  if (a.length === 1) out.splice(out.length - 2, 1);
  if (b.length === 1) out.splice(out.length - 1, 1);
  return out;
}

/** Resolve ONNX Reshape's 0 (copy) and -1 (infer) against the input shape. */
export function reshapeShape(input: readonly number[], target: readonly number[]): number[] {
  let total = 1;
  for (const d of input) total *= d;
  const out = target.map((d, i) => (d === 0 ? (input[i] ?? fail('Reshape', `0 at axis ${i} beyond input rank`)) : d));
  const neg = out.filter((d) => d === -1).length;
  if (neg > 1) fail('Reshape', `more than one -1 in ${fmt(target)}`);
  let known = 1;
  for (const d of out) if (d !== -1) known *= d;
  if (neg === 1) {
    if (known === 0 || total % known !== 0) fail('Reshape', `cannot reshape ${fmt(input)} to ${fmt(target)}`);
    out[out.indexOf(-1)] = total / known;
  } else if (known !== total) fail('Reshape', `cannot reshape ${fmt(input)} (${total} elements) to ${fmt(target)}`);
  return out;
}

export function reduceShape(op: string, input: readonly number[], axes: readonly number[] | undefined, keepdims: boolean): number[] {
  const r = input.length;
  const ax = new Set((axes ?? input.map((_, i) => i)).map((a) => normAxis(op, a, r)));
  const out: number[] = [];
  input.forEach((d, i) => {
    if (ax.has(i)) {
      if (keepdims) out.push(1);
    } else out.push(d);
  });
  return out;
}

export function transposeShape(input: readonly number[], perm?: readonly number[]): number[] {
  const p = perm ?? input.map((_, i) => input.length - 1 - i);
  if (p.length !== input.length || [...p].sort((a, b) => a - b).some((v, i) => v !== i)) {
    fail('Transpose', `perm ${fmt(p)} is not a permutation of rank ${input.length}`);
  }
  return p.map((i) => input[i]!);
}

/** Static Slice: returns the output shape and normalised starts/ends/axes/steps. */
export function sliceShape(
  input: readonly number[],
  starts: readonly number[],
  ends: readonly number[],
  axes?: readonly number[],
  steps?: readonly number[],
): number[] {
  const out = [...input];
  const ax = axes ?? starts.map((_, i) => i);
  ax.forEach((a0, i) => {
    const a = normAxis('Slice', a0, input.length);
    const dim = input[a]!;
    const step = steps?.[i] ?? 1;
    if (step === 0) fail('Slice', 'step 0');
    const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);
    let s = starts[i]!;
    let e = ends[i]!;
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) {
      s = clamp(s, 0, dim);
      e = clamp(e, 0, dim);
      out[a] = Math.max(0, Math.ceil((e - s) / step));
    } else {
      s = clamp(s, -1, dim - 1);
      e = clamp(e, -1, dim - 1);
      out[a] = Math.max(0, Math.ceil((e - s) / step));
    }
  });
  return out;
}

export function sameShape(op: string, a: readonly number[], b: readonly number[]): void {
  if (a.length !== b.length || a.some((d, i) => d !== b[i])) fail(op, `shapes differ: ${fmt(a)} vs ${fmt(b)}`);
}

export { fmt as formatShape };
