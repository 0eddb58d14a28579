// Element types shared by safetensors, ONNX and the runtime, with exact f32↔bf16 / f32↔f16 conversions.
// Rounding is round-to-nearest-even, as torch's `.to(torch.bfloat16)` / `.half()`; NaN stays NaN.
// Not here: the ONNX enum numbers (src/onnx) or the safetensors dtype strings (src/io) — those map onto DType.

export type DType =
  | 'float64'
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool';

/** The JS array each dtype is stored in. 16-bit floats are kept as raw bit patterns. */
export interface DTypeArrays {
  float64: Float64Array;
  float32: Float32Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int16: Int16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

export type TypedArray = DTypeArrays[DType];

export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float64: 8,
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export const ALL_DTYPES: readonly DType[] = Object.keys(DTYPE_BYTES) as DType[];

export function isFloatDType(d: DType): boolean {
  return d === 'float64' || d === 'float32' || d === 'float16' || d === 'bfloat16';
}

/** A fresh zeroed array of `n` elements of `dtype`. */
export function allocArray<D extends DType>(dtype: D, n: number): DTypeArrays[D] {
  return viewArray(dtype, new ArrayBuffer(n * DTYPE_BYTES[dtype]), 0, n);
}

/** A typed view over bytes (little-endian host assumed, as ORT and safetensors are). */
export function viewArray<D extends DType>(dtype: D, buf: ArrayBufferLike, byteOffset: number, n: number): DTypeArrays[D] {
  const ctor: Record<DType, new (b: ArrayBufferLike, o: number, n: number) => TypedArray> = {
    float64: Float64Array,
    float32: Float32Array,
    float16: Uint16Array,
    bfloat16: Uint16Array,
    int64: BigInt64Array,
    int32: Int32Array,
    int16: Int16Array,
    int8: Int8Array,
    uint8: Uint8Array,
    bool: Uint8Array,
  };
  return new ctor[dtype](buf, byteOffset, n) as DTypeArrays[D];
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f32 → bf16 bits, round to nearest even (torch semantics). */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff; // quiet NaN, sign kept
  const rounding = 0x7fff + ((u >>> 16) & 1);
  return ((u + rounding) >>> 16) & 0xffff;
}

export function bf16BitsToF32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0]!;
}

/** f32 → IEEE half bits, round to nearest even, overflow to ±inf, subnormals exact. */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // rounds to ±0
    mant |= 0x800000; // implicit leading one
    const shift = 14 - e; // 14..24
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && (h & 1) === 1)) h += 1;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h += 1; // may carry into the exponent: correct
  return sign | h;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Convert any numeric array to float32 (bf16/f16 decoded from bits, int64 via Number). */
export function toFloat32Array(dtype: DType, data: TypedArray): Float32Array {
  if (dtype === 'float32') return data as Float32Array;
  const n = data.length;
  const out = new Float32Array(n);
  if (dtype === 'bfloat16') {
    const src = data as Uint16Array;
    const o32 = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) o32[i] = src[i]! << 16;
  } else if (dtype === 'float16') {
    const src = data as Uint16Array;
    for (let i = 0; i < n; i++) out[i] = f16BitsToF32(src[i]!);
  } else if (dtype === 'int64') {
    const src = data as BigInt64Array;
    for (let i = 0; i < n; i++) out[i] = Number(src[i]!);
  } else {
    const src = data as Exclude<TypedArray, BigInt64Array>;
    for (let i = 0; i < n; i++) out[i] = src[i]!;
  }
  return out;
}

/** Convert float32 values into `dtype` (RNE for the 16-bit floats; truncation toward zero for ints). */
export function fromFloat32Array<D extends DType>(dtype: D, src: Float32Array): DTypeArrays[D] {
  const n = src.length;
  const out = allocArray(dtype, n);
  if (dtype === 'float32') (out as Float32Array).set(src);
  else if (dtype === 'bfloat16') for (let i = 0; i < n; i++) (out as Uint16Array)[i] = f32ToBf16Bits(src[i]!);
  else if (dtype === 'float16') for (let i = 0; i < n; i++) (out as Uint16Array)[i] = f32ToF16Bits(src[i]!);
  else if (dtype === 'int64') for (let i = 0; i < n; i++) (out as BigInt64Array)[i] = BigInt(Math.trunc(src[i]!));
  else if (dtype === 'bool') for (let i = 0; i < n; i++) (out as Uint8Array)[i] = src[i] ? 1 : 0;
  else {
    const o = out as Exclude<TypedArray, BigInt64Array>;
    for (let i = 0; i < n; i++) o[i] = src[i]!;
  }
  return out;
}
