// How bitsandbytes' 8-bit blockwise optimizers pick the code of a normalised state value, and the O(1)
// lookup tables that reproduce that choice inside an ONNX graph.
// The rule (csrc/kernels.cu `quantize_2D` as called by kOptimizerStatic8bit2StateBlockwise): a 7-step binary
// search from index 127, then the nearest of the two neighbours by float32 midpoint; ties go to the even
// index, NaN goes to 0. For the signed map (first moment) the kernel then keeps the sign: if the chosen
// code's sign bit differs from the value's, it steps one code towards the value (uint8 wrap-around), so a
// small negative value never becomes +0 and −0 becomes code 126. That search is the same as src/quant's
// `quantize8bitValueCuda` (dQuantize): its pivot fix-ups never change the result, which a test checks.
// In-graph lookup: key = trunc(bits(x) / 2^s) as int32 (bits = the float's IEEE pattern, from ONNX BitCast),
// so each table row is a contiguous run of floats: 2^M rows per binade, both signs (negative keys wrap, as
// Gather allows). Each row stores the code at its low end and the largest float still mapping to it;
// code = base[row] + (x > thr[row]). M is the smallest resolution at which no row holds two code changes,
// so the table is exact for every float32, not only for the values a test tried.
// Not here: the update graph (adamw-8bit.ts), the float32 blockwise quantiser of weights (src/quant).

import { TsFinetuneError } from '../src/core/index.js';
import { dynamicMap, quantize8bitValueCuda } from '../src/quant/index.js';

const f32View = new Float32Array(1);
const i32View = new Int32Array(f32View.buffer);

/** The float32 whose IEEE bit pattern, as an int32, is `bits`. */
export function floatOfBits(bits: number): number {
  i32View[0] = bits;
  return f32View[0]!;
}

/** The IEEE bit pattern of float32 `x`, as an int32 (what ONNX BitCast(x, int32) gives). */
export function bitsOfFloat(x: number): number {
  f32View[0] = x;
  return i32View[0]!;
}

function signBit(x: number): boolean {
  return bitsOfFloat(x) < 0;
}

/**
 * The code bnb's 8-bit blockwise optimizer stores for normalised value `x` (already float32): `quantize_2D`,
 * and for the signed map the sign-keeping step after it.
 */
export function optimizerStateCode(code: Readonly<Float32Array>, x: number, signed: boolean): number {
  let c = quantize8bitValueCuda(code, x);
  if (signed && signBit(code[c]!) !== signBit(x)) c = x > 0 ? (c + 1) & 255 : (c + 255) & 255;
  return c;
}

export interface CodeTable {
  /** Key = trunc(bits / 2^shift); rows = 2^(32 − shift) (negative keys index from the end). */
  shift: number;
  base: Int32Array;
  thr: Float32Array;
}

/** Every finite float32 of a row, as ordered bit patterns [lo, hi] with x increasing (or undefined). */
function rowRange(key: number, shift: number): [number, number] | undefined {
  const w = 2 ** shift;
  let lo: number;
  let hi: number;
  if (key > 0) [lo, hi] = [key * w, key * w + w - 1];
  else if (key === 0) [lo, hi] = [0, w - 1]; // the negative patterns of key 0 are NaNs
  else if (key === -(2 ** (31 - shift))) [lo, hi] = [-(2 ** 31), -(2 ** 31)]; // −0 alone
  else [lo, hi] = [key * w - w + 1, key * w];
  // Drop infinities and NaNs (exponent all ones, magnitude bits ≥ 0x7f800000).
  const top = lo >= 0 ? 0x7f7fffff : -(2 ** 31) + 0x7f7fffff;
  hi = Math.min(hi, top);
  return hi < lo ? undefined : [lo, hi];
}

/** x of the i-th float (in increasing x) of a row given as bit patterns [lo, hi] of one sign. */
function rowFloat(lo: number, hi: number, i: number): number {
  // Positive patterns increase with x; negative patterns decrease with x.
  return lo >= 0 ? floatOfBits(lo + i) : floatOfBits(hi - i);
}

function buildTable(code: Readonly<Float32Array>, signed: boolean, resolution: number): CodeTable | undefined {
  const shift = 23 - resolution;
  const half = 2 ** (31 - shift);
  const rows = 2 * half;
  const base = new Int32Array(rows);
  const thr = new Float32Array(rows).fill(Infinity);
  for (let r = 0; r < rows; r++) {
    const key = r < half ? r : r - rows;
    const range = rowRange(key, shift);
    if (range === undefined) continue; // inf / NaN rows: base 0, never crossed (bnb maps NaN to 0)
    const [lo, hi] = range;
    const count = hi - lo + 1;
    const first = optimizerStateCode(code, rowFloat(lo, hi, 0), signed);
    const last = optimizerStateCode(code, rowFloat(lo, hi, count - 1), signed);
    base[r] = first;
    if (last === first) continue;
    if (last !== first + 1) return undefined; // two changes in one row: resolution too coarse
    // Largest i whose float still maps to `first` (the rule is monotone in x within one sign).
    let a = 0;
    let b = count - 1;
    while (b - a > 1) {
      const mid = a + Math.floor((b - a) / 2);
      if (optimizerStateCode(code, rowFloat(lo, hi, mid), signed) === first) a = mid;
      else b = mid;
    }
    thr[r] = rowFloat(lo, hi, a);
  }
  return { shift, base, thr };
}

const tables = new Map<string, CodeTable>();

/** The lookup table for bnb's signed (first moment) or unsigned (second moment) dynamic map. */
export function codeTable(signed: boolean): CodeTable {
  const key = signed ? 'signed' : 'unsigned';
  let t = tables.get(key);
  if (t !== undefined) return t;
  const code = dynamicMap(signed);
  for (let resolution = 5; resolution <= 10 && t === undefined; resolution++) t = buildTable(code, signed, resolution);
  if (t === undefined) throw new TsFinetuneError('QUANT_ERROR', `8-bit optimizer code table: no resolution up to 2^10 rows per binade separates the ${key} map`);
  tables.set(key, t);
  return t;
}

/** What the graph computes with the table, in plain TS (tests compare it with optimizerStateCode). */
export function tableCode(t: CodeTable, x: number): number {
  const key = Math.trunc(bitsOfFloat(x) / 2 ** t.shift);
  const row = key >= 0 ? key : t.base.length + key;
  return t.base[row]! + (x > t.thr[row]! ? 1 : 0);
}
