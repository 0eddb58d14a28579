// Blockwise 8-bit quantisation with a 256-entry code map (bitsandbytes `quantize_blockwise` /
// `dequantize_blockwise`): one float32 absmax per block, each value normalised by it and stored as the
// index of the nearest map entry. 8-bit AdamW keeps its moments this way (signed map for m, unsigned for
// v, blocks of 256) and double quantisation stores the 4-bit absmax this way.
// Not here: the optimizer update (src/optim), the 4-bit types (quantize-4bit.ts).
// bitsandbytes has two quantisers that disagree on ties and rounding, so both are reproduced:
//  - 'cpu':  `quantize_cpu` + `quantize_block` (csrc/cpu_ops.cpp, common.cpp): x / absmax, the largest map
//            entry ≤ x by binary search, then the right neighbour only if strictly closer. It first sets
//            map[0] = −1 (in place, so the map bnb then stores and dequantises with has −1 there too).
//  - 'cuda': `kQuantizeBlockwise` + `dQuantize<0>` (csrc/kernels.cu): x · (1/absmax), a 7-step binary
//            search from index 127, then a midpoint test whose tie goes to the search's final pivot.

import { TsFinetuneError } from '../core/index.js';
import { dynamicMap } from './codebooks.js';

const f32 = Math.fround;

export type Kernel8bit = 'cpu' | 'cuda';

export interface Quantize8bitOptions {
  /** The 256-entry sorted map, or 'signed' / 'unsigned' for bnb's dynamic maps. Default 'signed'. */
  code?: Readonly<Float32Array> | 'signed' | 'unsigned';
  /** Elements per absmax block. Default 256 (what 8-bit optimizers and double quantisation use). */
  blocksize?: number;
  /** Which bitsandbytes quantiser to reproduce. Default 'cpu'. */
  kernel?: Kernel8bit;
}

export interface Quantized8bit {
  /** One map index per element. */
  codes: Uint8Array;
  /** max |x| of each block (the tail block has its own). */
  absmax: Float32Array;
  /** The map to dequantise with: for kernel 'cpu' a copy with entry 0 set to −1, as bnb leaves it. */
  code: Float32Array;
  blocksize: number;
}

const VALID_BLOCKSIZES = [32, 64, 128, 256, 512, 1024, 2048, 4096];

export function checkBlocksize(blocksize: number, what: string): void {
  if (!VALID_BLOCKSIZES.includes(blocksize)) {
    throw new TsFinetuneError(
      'QUANT_ERROR',
      `${what}: blocksize ${blocksize} is not supported; use one of ${VALID_BLOCKSIZES.join(', ')}`,
      { blocksize },
    );
  }
}

function resolveCode(code: Quantize8bitOptions['code']): Float32Array {
  if (code === undefined || code === 'signed') return Float32Array.from(dynamicMap(true));
  if (code === 'unsigned') return Float32Array.from(dynamicMap(false));
  if (code.length !== 256) {
    throw new TsFinetuneError('QUANT_ERROR', `8-bit quantisation needs a 256-entry code map, got ${code.length}`, {
      length: code.length,
    });
  }
  for (let i = 1; i < 256; i++) {
    if (!(code[i]! > code[i - 1]!)) {
      throw new TsFinetuneError('QUANT_ERROR', `8-bit code map must be strictly increasing (entry ${i})`, { index: i });
    }
  }
  return Float32Array.from(code);
}

/**
 * kernels.cu `dQuantize<0>(code, 0, x)`: the index bnb's GPU kernel stores for a normalised value.
 * NaN (zero block) walks down every step and ends at index 0.
 */
export function quantize8bitValueCuda(code: Readonly<Float32Array>, x: number): number {
  let pivot = 127;
  let upperPivot = 255;
  let lowerPivot = 0;
  let lower = -1;
  let upper = 1;
  let val = code[pivot]!;
  for (let i = 64; i > 0; i >>= 1) {
    if (x > val) {
      lowerPivot = pivot;
      lower = val;
      pivot += i;
    } else {
      upperPivot = pivot;
      upper = val;
      pivot -= i;
    }
    val = code[pivot]!;
  }
  if (upperPivot === 255) upper = code[255]!;
  if (lowerPivot === 0) lower = code[0]!;
  if (x > val) return x > f32((upper + val) * 0.5) ? upperPivot : pivot;
  return x < f32((lower + val) * 0.5) ? lowerPivot : pivot;
}

/**
 * common.cpp `quantize_block` for one normalised value, with `code[0]` already −1: the largest entry ≤ x
 * (what BinSearch's Direct2 returns for x in range), then the next one only if strictly closer in float32.
 * NaN (0/0 in a zero block) is out of range for bnb's search (it reads outside its table); we return 0,
 * the index bnb's GPU kernel gives.
 */
export function quantize8bitValueCpu(code: Readonly<Float32Array>, x: number): number {
  if (Number.isNaN(x) || x < code[0]!) return 0;
  let lo = 0;
  let hi = 255;
  // Invariant: code[lo] ≤ x; answer in [lo, hi].
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (code[mid]! <= x) lo = mid;
    else hi = mid - 1;
  }
  if (lo < 255) {
    const left = Math.abs(f32(x - code[lo]!));
    const right = Math.abs(f32(x - code[lo + 1]!));
    if (right < left) lo += 1;
  }
  return lo;
}

/** Blockwise 8-bit quantisation, bit-exact with the chosen bitsandbytes kernel. */
export function quantizeBlockwise8bit(values: Readonly<Float32Array>, options: Quantize8bitOptions = {}): Quantized8bit {
  const blocksize = options.blocksize ?? 256;
  const kernel = options.kernel ?? 'cpu';
  checkBlocksize(blocksize, 'quantizeBlockwise8bit');
  if (kernel !== 'cpu' && kernel !== 'cuda') {
    throw new TsFinetuneError('QUANT_ERROR', `quantizeBlockwise8bit: kernel must be 'cpu' or 'cuda', got '${String(kernel)}'`);
  }
  const code = resolveCode(options.code);
  if (kernel === 'cpu') code[0] = -1; // what quantize_cpu does to the map before searching it
  const n = values.length;
  const nBlocks = Math.ceil(n / blocksize);
  const codes = new Uint8Array(n);
  const absmax = new Float32Array(nBlocks);
  for (let b = 0; b < nBlocks; b++) {
    const start = b * blocksize;
    const end = Math.min(n, start + blocksize);
    let m = -3.4028234663852886e38; // -FLT_MAX, as both kernels start; fmax skips NaN inputs
    for (let i = start; i < end; i++) {
      const a = Math.abs(values[i]!);
      if (a > m) m = a;
    }
    absmax[b] = m;
    if (kernel === 'cuda') {
      const inv = f32(1 / m);
      for (let i = start; i < end; i++) codes[i] = quantize8bitValueCuda(code, f32(values[i]! * inv));
    } else {
      for (let i = start; i < end; i++) codes[i] = quantize8bitValueCpu(code, f32(values[i]! / m));
    }
  }
  return { codes, absmax, code, blocksize };
}

/** `code[q] · absmax[block]` in float32 (both bnb dequantisers compute exactly this). */
export function dequantizeBlockwise8bit(q: Pick<Quantized8bit, 'codes' | 'absmax' | 'code' | 'blocksize'>): Float32Array {
  const { codes, absmax, code, blocksize } = q;
  const n = codes.length;
  if (absmax.length !== Math.ceil(n / blocksize)) {
    throw new TsFinetuneError(
      'SHAPE_MISMATCH',
      `dequantizeBlockwise8bit: ${n} codes in blocks of ${blocksize} need ${Math.ceil(n / blocksize)} absmax values, got ${absmax.length}`,
      { n, blocksize, absmax: absmax.length },
    );
  }
  if (code.length !== 256) {
    throw new TsFinetuneError('QUANT_ERROR', `dequantizeBlockwise8bit: code map has ${code.length} entries, expected 256`);
  }
  const out = new Float32Array(n);
  for (let b = 0; b < absmax.length; b++) {
    const s = absmax[b]!;
    const end = Math.min(n, (b + 1) * blocksize);
    for (let i = b * blocksize; i < end; i++) out[i] = f32(code[codes[i]!]! * s);
  }
  return out;
}
