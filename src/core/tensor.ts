// The host-side tensor: a dtype, static dims and a typed array in row-major order.
// It is a plain value object (no autograd, no device): graphs live in src/graph, devices in src/runtime.

import { allocArray, DTYPE_BYTES, toFloat32Array, fromFloat32Array, type DType, type DTypeArrays, type TypedArray } from './dtype.js';
import { TsFinetuneError } from './errors.js';

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export class Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly dims: readonly number[];
  readonly data: DTypeArrays[D];

  constructor(dtype: D, dims: readonly number[], data: DTypeArrays[D]) {
    for (const d of dims) {
      if (!Number.isInteger(d) || d < 0) {
        throw new TsFinetuneError('INVALID_ARGUMENT', `Tensor dims must be non-negative integers, got [${dims.join(', ')}]`);
      }
    }
    if (data.length !== numel(dims)) {
      throw new TsFinetuneError(
        'SHAPE_MISMATCH',
        `Tensor of dims [${dims.join(', ')}] needs ${numel(dims)} elements, got ${data.length}`,
        { dims, length: data.length },
      );
    }
    this.dtype = dtype;
    this.dims = Object.freeze([...dims]);
    this.data = data;
  }

  static zeros<D extends DType>(dtype: D, dims: readonly number[]): Tensor<D> {
    return new Tensor(dtype, dims, allocArray(dtype, numel(dims)));
  }

  /** float32 tensor from plain numbers (or another dtype, converted with RNE). */
  static fromNumbers<D extends DType = 'float32'>(values: ArrayLike<number>, dims: readonly number[], dtype?: D): Tensor<D> {
    const f = Float32Array.from(values);
    const dt = (dtype ?? 'float32') as D;
    return new Tensor(dt, dims, fromFloat32Array(dt, f));
  }

  static int64(values: ArrayLike<number | bigint>, dims: readonly number[]): Tensor<'int64'> {
    const a = new BigInt64Array(values.length);
    for (let i = 0; i < values.length; i++) a[i] = BigInt(values[i]!);
    return new Tensor('int64', dims, a);
  }

  get size(): number {
    return this.data.length;
  }

  get byteLength(): number {
    return this.data.length * DTYPE_BYTES[this.dtype];
  }

  /** Values as float32 (a copy unless already float32). */
  toFloat32(): Float32Array {
    return toFloat32Array(this.dtype, this.data);
  }

  /** A new tensor in `dtype` (RNE rounding for the 16-bit floats). */
  to<E extends DType>(dtype: E): Tensor<E> {
    if ((dtype as DType) === this.dtype) return this as unknown as Tensor<E>;
    return new Tensor(dtype, this.dims, fromFloat32Array(dtype, this.toFloat32()));
  }

  /** Same data, new dims (element count must match). */
  reshape(dims: readonly number[]): Tensor<D> {
    return new Tensor(this.dtype, dims, this.data);
  }

  /** Raw little-endian bytes, sharing memory with `data`. */
  bytes(): Uint8Array {
    const d = this.data as TypedArray;
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  }

  toString(): string {
    return `Tensor<${this.dtype}>[${this.dims.join(', ')}]`;
  }
}
