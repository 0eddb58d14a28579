// The value tables of bitsandbytes' quantised types, bit for bit: the NF4 and FP4 4-bit codebooks with
// the decision thresholds of its CUDA quantiser, and the 8-bit "dynamic" maps (`create_dynamic_map`) that
// 8-bit optimizers and double quantisation use.
// Not here: the blockwise (de)quantisers themselves (quantize-4bit.ts, quantize-8bit.ts).
// Follows bitsandbytes `functional.py` (`get_4bit_type`, `create_dynamic_map`) and `csrc/kernels.cu`
// (`dQuantizeNF4`, `dQuantizeFP4`, `dDequantizeFP4Tree`); torch's CPU `linspace` kernel for the map.

const f32 = Math.fround;

export type QuantType4bit = 'nf4' | 'fp4';

/** NF4 code values by 4-bit index (bnb `get_4bit_type('nf4')`), as float32. */
export const NF4_CODE: Readonly<Float32Array> = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1.0,
]);

/**
 * FP4 code values by bit pattern (sign bit 0b1000, then a 3-bit magnitude code), normalised by 12 in
 * float32 as `get_4bit_type('fp4')` does. Index 8 is −0. The CUDA dequantiser's literals
 * (`0.16666667f`, `0.66666667f`, …) round to the same float32 values; a test pins that.
 */
export const FP4_CODE: Readonly<Float32Array> = Float32Array.from(
  [0, 0.0625, 8, 12, 4, 6, 2, 3, -0, -0.0625, -8, -12, -4, -6, -2, -3].map((v) => f32(v / 12)),
);

export function codebook4bit(quantType: QuantType4bit): Readonly<Float32Array> {
  return quantType === 'nf4' ? NF4_CODE : FP4_CODE;
}

// Thresholds exactly as the float literals in kernels.cu's dQuantizeNF4 (midpoints rounded to float32;
// "x > t" sends a value sitting exactly on one to the lower code).
const N1 = f32(0.03979014977812767);
const N11 = f32(0.3893125355243683);
const N111 = f32(0.6427869200706482);
const N1111 = f32(0.8614784181118011);
const N1101 = f32(0.5016634166240692);
const N101 = f32(0.2035212516784668);
const N1011 = f32(0.2920137718319893);
const N1001 = f32(0.1202552504837513);
const N01 = f32(-0.33967943489551544);
const N011 = f32(-0.13791173323988914);
const N0111 = f32(-0.045525018125772476);
const N0101 = f32(-0.23460740596055984);
const N001 = f32(-0.6106329262256622);
const N0011 = f32(-0.4599952697753906);
const N0001 = f32(-0.8480964004993439);

/**
 * The NF4 index of an already-normalised float32 value: kernels.cu `dQuantizeNF4`, the same comparison
 * tree. NaN (a block whose absmax is 0 gives 0·∞) falls through every `>` to index 0, as on the GPU.
 */
export function quantizeNf4Value(x: number): number {
  if (x > N1) {
    if (x > N11) {
      if (x > N111) return x > N1111 ? 0b1111 : 0b1110;
      return x > N1101 ? 0b1101 : 0b1100;
    }
    if (x > N101) return x > N1011 ? 0b1011 : 0b1010;
    return x > N1001 ? 0b1001 : 0b1000;
  }
  if (x > N01) {
    if (x > N011) return x > N0111 ? 0b0111 : 0b0110;
    return x > N0101 ? 0b0101 : 0b0100;
  }
  if (x > N001) return x > N0011 ? 0b0011 : 0b0010;
  return x > N0001 ? 0b0001 : 0b0000;
}

// kernels.cu dQuantizeFP4 literals. Note 0.583333f is not the exact midpoint of 1/2 and 2/3: copied as is.
const F1 = f32(0.29166667);
const F11 = f32(0.583333);
const F111 = f32(0.8333333);
const F101 = f32(0.4166667);
const F01 = f32(0.0859375);
const F011 = f32(0.20833333);
const F001 = f32(0.00260417);

/**
 * The FP4 bit pattern of a normalised float32 value: kernels.cu `dQuantizeFP4`. The sign bit is set only
 * for x < 0 (so −0 and NaN get +0's pattern); the magnitude goes through the comparison tree.
 */
export function quantizeFp4Value(x: number): number {
  const sign = x < 0 ? 0b1000 : 0;
  const a = Math.abs(x);
  if (a > F1) {
    if (a > F11) return (a > F111 ? 0b0011 : 0b0010) + sign;
    return (a > F101 ? 0b0101 : 0b0100) + sign;
  }
  if (a > F01) return (a > F011 ? 0b0111 : 0b0110) + sign;
  return (a > F001 ? 0b0001 : 0b0000) + sign;
}

/**
 * torch's CPU `linspace` for float32, reproduced operation for operation: step = (end − start)/(n − 1);
 * the first half counts up from start, the second down from end (`start + step·i`, compiled to one fused
 * multiply-add); contiguous output is produced two SIMD vectors at a time, each vector as
 * `base + k·step` from its first element, and the remainder element-wise. `vectorWidth` is the ISA's
 * float lane count (8: AVX2, checked against torch 1.13 here; 16: AVX-512, which torch picks on CPUs that
 * have it — not checked on a real machine). The results differ in the last bit of a few elements.
 */
export function torchLinspaceF32(start: number, end: number, steps: number, vectorWidth: 8 | 16 = 8): Float32Array {
  const s = f32(start);
  const e = f32(end);
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = s;
    return out;
  }
  const step = f32(f32(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  // One rounding: the FMA the compiler emits for `start + step * idx` (the product is exact in a double).
  const scalarAt = (i: number): number => (i < halfway ? f32(s + step * i) : f32(e - step * (steps - i - 1)));
  const unrolled = 2 * vectorWidth;
  const vectorEnd = Math.floor(steps / unrolled) * unrolled;
  let i = 0;
  for (; i < vectorEnd; i += vectorWidth) {
    const base = scalarAt(i);
    for (let k = 0; k < vectorWidth; k++) out[i + k] = f32(base + f32(k * step));
  }
  for (; i < steps; i++) out[i] = scalarAt(i);
  return out;
}

export interface DynamicMapOptions {
  /** SIMD width of the torch CPU kernel that ran `linspace` (see torchLinspaceF32). Default 8 (AVX2). */
  linspaceVectorWidth?: 8 | 16;
}

/**
 * bitsandbytes `create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)`: 256 sorted float32
 * values. Per decade i = 0..6 the midpoints of `linspace(0.1, 1, 2^i + 1)` (signed; `2^(i+1) + 1`
 * unsigned) scaled by 10^(i−6), mirrored for the signed map; plus 0 and 1. Signed: [−0.99296875, 1];
 * unsigned: [0, 1]. Arithmetic is float32 as in torch (the Python scale is cast to float32 before the
 * multiply).
 */
export function createDynamicMap(signed: boolean, options: DynamicMapOptions = {}): Float32Array {
  const width = options.linspaceVectorWidth ?? 8;
  const maxExponentBits = 7;
  const data: number[] = [];
  for (let i = 0; i < maxExponentBits; i++) {
    const items = signed ? 2 ** i + 1 : 2 ** (i + 1) + 1;
    const boundaries = torchLinspaceF32(0.1, 1, items, width);
    const scale = f32(10 ** (i - (maxExponentBits - 1)));
    for (let k = 0; k + 1 < items; k++) {
      const mean = f32(f32(boundaries[k]! + boundaries[k + 1]!) / 2);
      const v = f32(scale * mean);
      data.push(v);
      if (signed) data.push(-v);
    }
  }
  data.push(0, 1);
  data.sort((a, b) => a - b);
  return Float32Array.from(data);
}

const mapCache = new Map<string, Float32Array>();

/** The cached signed / unsigned dynamic map (default options). Treat as read-only. */
export function dynamicMap(signed: boolean): Readonly<Float32Array> {
  const key = signed ? 'signed' : 'unsigned';
  let m = mapCache.get(key);
  if (m === undefined) {
    m = createDynamicMap(signed);
    mapCache.set(key, m);
  }
  return m;
}
