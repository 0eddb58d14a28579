// 4-bit NF4 / FP4 blockwise quantisation in bitsandbytes' layout, bit for bit: what `Linear4bit` stores
// for a weight and what `dequantize_4bit` gives back, with optional double quantisation of the absmax.
// Not here: the 8-bit map quantiser used for the absmax (quantize-8bit.ts), checkpoint keys
// (prequantized.ts), the ONNX dequantisation graph (kernels/).
// Follows bitsandbytes `functional.quantize_4bit` / `dequantize_4bit` and csrc/kernels.cu
// `kQuantizeBlockwise` (the CUDA kernel that real QLoRA checkpoints come from):
//  - the tensor is flattened row-major and cut into blocks of `blocksize`; the tail block has its own absmax;
//  - absmax = max |x|; each value is multiplied by float32(1/absmax) (not divided) and sent through the
//    NF4 / FP4 comparison tree of codebooks.ts; a zero block gives 0·∞ = NaN and so index 0;
//  - two codes per byte, the first element in the high nibble; an odd count pads the last low nibble with
//    the code of 0·(1/absmax), as the kernel's zero-filled load does;
//  - double quant: offset = mean(absmax), (absmax − offset) quantised 8-bit with the signed dynamic map in
//    blocks of 256 by the CUDA `dQuantize` search; dequantisation uses map[q]·nestedAbsmax + offset.
// bnb's CPU fallback for 4-bit (torch argmin, with a 4-decimal FP4 table in recent versions) is not this
// and differs at midpoints; see docs/quant.md.

import { Tensor, TsFinetuneError, type DType } from '../core/index.js';
import { codebook4bit, dynamicMap, quantizeFp4Value, quantizeNf4Value, type QuantType4bit } from './codebooks.js';
import { checkBlocksize, quantizeBlockwise8bit } from './quantize-8bit.js';

const f32 = Math.fround;

/** The dtype bnb records for the weight that was quantised (QuantState.dtype); dequantisation targets it. */
export type WeightDType = 'float32' | 'float16' | 'bfloat16';

export const NESTED_BLOCKSIZE = 256;

export interface Nested4bitState {
  /** The 8-bit codes of (absmax − offset), one per 4-bit block (bnb stores them as `weight.absmax`). */
  code: Uint8Array;
  /** float32 absmax of each block of 256 codes (`weight.nested_absmax`). */
  nestedAbsmax: Float32Array;
  /** mean of the original absmax, in float32 (`nested_offset`). */
  offset: number;
  /** Codes per nested absmax block: 256 whenever bitsandbytes made them (older files record it, so it is read). */
  blocksize: number;
  /** The 256-entry map the codes index (`weight.nested_quant_map`). */
  quantMap: Float32Array;
}

export interface Quantized4bit {
  /** ceil(n/2) bytes; element 2k in the high nibble, 2k+1 in the low one. */
  packed: Uint8Array;
  /**
   * The per-block scale dequantisation multiplies by. Without double quant: max |x| of the block. With it:
   * the reconstructed value `quantMap[code]·nestedAbsmax + offset` (the original is not kept, as in bnb).
   */
  absmax: Float32Array;
  /** torch shape of the weight, e.g. [out, in]. */
  shape: readonly number[];
  quantType: QuantType4bit;
  blocksize: number;
  dtype: WeightDType;
  nested?: Nested4bitState;
}

export interface Quantize4bitOptions {
  quantType: QuantType4bit;
  /** torch shape; its product must equal the element count. Default: the given Tensor's dims, else [n]. */
  shape?: readonly number[];
  /** Default 64 (bnb's default on CUDA). One of 32, 64, …, 4096. */
  blocksize?: number;
  /** bnb_4bit_use_double_quant. Default false. */
  doubleQuant?: boolean;
  /** Recorded dtype of the source weight. Default: the Tensor's float dtype, else 'float32'. */
  dtype?: WeightDType;
  /** Map for the nested absmax codes. Default: the signed dynamic map. */
  nestedQuantMap?: Readonly<Float32Array>;
  /**
   * Double-quant offset to use instead of mean(absmax). bnb takes torch's float32 `mean()`, whose last bit
   * depends on the device's reduction order; we compute the sum in float64 and round once. Pass the value
   * from a reference run to reproduce it exactly.
   */
  offset?: number;
}

function product(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

function asFloat32(weight: Readonly<Float32Array> | Tensor): { data: Readonly<Float32Array>; dims?: readonly number[]; dtype?: WeightDType } {
  if (!(weight instanceof Tensor)) return { data: weight };
  const dt: DType = weight.dtype;
  if (dt !== 'float32' && dt !== 'float16' && dt !== 'bfloat16') {
    throw new TsFinetuneError('UNSUPPORTED_DTYPE', `quantize4bit: weight must be float32, float16 or bfloat16, got ${dt}`, {
      dtype: dt,
    });
  }
  return { data: weight.toFloat32(), dims: weight.dims, dtype: dt };
}

/** float32 mean of the absmax values: float64 sum, one rounding. */
export function meanF32(values: Readonly<Float32Array>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return f32(s / values.length);
}

/** Quantise a weight to bitsandbytes NF4 / FP4, bit-exact with its CUDA quantiser. */
export function quantize4bit(weight: Readonly<Float32Array> | Tensor, options: Quantize4bitOptions): Quantized4bit {
  const { data, dims, dtype: srcDtype } = asFloat32(weight);
  const quantType = options.quantType;
  if (quantType !== 'nf4' && quantType !== 'fp4') {
    throw new TsFinetuneError('QUANT_ERROR', `quantize4bit: quantType must be 'nf4' or 'fp4', got '${String(quantType)}'`);
  }
  const blocksize = options.blocksize ?? 64;
  checkBlocksize(blocksize, 'quantize4bit');
  const shape = [...(options.shape ?? dims ?? [data.length])];
  const n = data.length;
  if (product(shape) !== n) {
    throw new TsFinetuneError('SHAPE_MISMATCH', `quantize4bit: shape [${shape.join(', ')}] does not hold ${n} elements`, {
      shape,
      n,
    });
  }
  if (n === 0) throw new TsFinetuneError('QUANT_ERROR', 'quantize4bit: cannot quantise an empty tensor');
  const quantizeValue = quantType === 'nf4' ? quantizeNf4Value : quantizeFp4Value;
  const nBlocks = Math.ceil(n / blocksize);
  const absmax = new Float32Array(nBlocks);
  const packed = new Uint8Array(Math.ceil(n / 2));
  for (let b = 0; b < nBlocks; b++) {
    const start = b * blocksize;
    const end = Math.min(n, start + blocksize);
    let m = -3.4028234663852886e38; // -FLT_MAX then fmaxf, as the kernel
    for (let i = start; i < end; i++) {
      const a = Math.abs(data[i]!);
      if (a > m) m = a;
    }
    absmax[b] = m;
    const inv = f32(1 / m);
    // blocksize is even, so a block starts on a byte boundary
    for (let i = start; i < end; i += 2) {
      const hi = quantizeValue(f32(data[i]! * inv));
      // past the end the kernel loaded 0 and quantised 0·inv
      const lo = quantizeValue(i + 1 < end ? f32(data[i + 1]! * inv) : f32(0 * inv));
      packed[i >> 1] = (hi << 4) | lo;
    }
  }
  const result: Quantized4bit = {
    packed,
    absmax,
    shape,
    quantType,
    blocksize,
    dtype: options.dtype ?? srcDtype ?? 'float32',
  };
  if (options.doubleQuant) {
    const offset = options.offset === undefined ? meanF32(absmax) : f32(options.offset);
    const centered = new Float32Array(nBlocks);
    for (let b = 0; b < nBlocks; b++) centered[b] = f32(absmax[b]! - offset);
    const q = quantizeBlockwise8bit(centered, {
      code: options.nestedQuantMap ?? dynamicMap(true),
      blocksize: NESTED_BLOCKSIZE,
      kernel: 'cuda',
    });
    result.nested = { code: q.codes, nestedAbsmax: q.absmax, offset, blocksize: NESTED_BLOCKSIZE, quantMap: q.code };
    result.absmax = dequantizeNestedAbsmax(result.nested);
  }
  return result;
}

/** bnb `dequantize_blockwise(absmax_codes, state2) + offset`: the per-block scales a double-quantised weight uses. */
export function dequantizeNestedAbsmax(nested: Readonly<Nested4bitState>): Float32Array {
  const { code, nestedAbsmax, offset, quantMap } = nested;
  const bs = nested.blocksize;
  if (nestedAbsmax.length !== Math.ceil(code.length / bs)) {
    throw new TsFinetuneError(
      'SHAPE_MISMATCH',
      `double-quant state: ${code.length} absmax codes in blocks of ${bs} need ${Math.ceil(code.length / bs)} nested absmax values, got ${nestedAbsmax.length}`,
    );
  }
  if (quantMap.length !== 256) {
    throw new TsFinetuneError('QUANT_ERROR', `double-quant state: nested quant map has ${quantMap.length} entries, expected 256`);
  }
  const off = f32(offset);
  const out = new Float32Array(code.length);
  for (let i = 0; i < code.length; i++) {
    out[i] = f32(f32(quantMap[code[i]!]! * nestedAbsmax[Math.floor(i / bs)]!) + off);
  }
  return out;
}

/** `codebook[nibble] · absmax[block]` in float32, in the weight's torch shape (row-major). */
export function dequantize4bit(q: Readonly<Quantized4bit>): Float32Array {
  const n = product(q.shape);
  const { packed, absmax, blocksize } = q;
  if (packed.length !== Math.ceil(n / 2)) {
    throw new TsFinetuneError(
      'SHAPE_MISMATCH',
      `dequantize4bit: shape [${q.shape.join(', ')}] needs ${Math.ceil(n / 2)} packed bytes, got ${packed.length}`,
    );
  }
  if (absmax.length !== Math.ceil(n / blocksize)) {
    throw new TsFinetuneError(
      'SHAPE_MISMATCH',
      `dequantize4bit: ${n} elements in blocks of ${blocksize} need ${Math.ceil(n / blocksize)} absmax values, got ${absmax.length}`,
    );
  }
  const cb = codebook4bit(q.quantType);
  const out = new Float32Array(n);
  const scaled = new Float32Array(16); // the 16 products of this block: same bits, 16 multiplies not 64
  for (let b = 0; b < absmax.length; b++) {
    const s = absmax[b]!;
    for (let k = 0; k < 16; k++) scaled[k] = cb[k]! * s;
    const end = Math.min(n, (b + 1) * blocksize);
    for (let i = b * blocksize; i < end; i += 2) {
      const byte = packed[i >> 1]!;
      out[i] = scaled[byte >> 4]!;
      if (i + 1 < end) out[i + 1] = scaled[byte & 0x0f]!;
    }
  }
  return out;
}
