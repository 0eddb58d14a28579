// LoRA dropout with masks made inside the graph from the step's `step_seed` input by a counter-based hash,
// so a mask is a pure function of (step seed, module, row, column): reproducible across runs and resumes,
// and no [B, T, in] mask ever crosses the JS boundary (DESIGN.md: inputs and outputs are copied).
// Integer ops the CPU EP runs (measured on ORT 1.30): Mul / Add / BitwiseXor / BitwiseAnd / Div on int32
// and int64; BitShift exists only for unsigned types, which our graphs do not carry, so right shifts are
// Div by 2^k on non-negative int64 values.
// Cost is kept off the per-module path (each small ORT node costs ~10 µs whatever its size):
//  - once per graph: the seed's key, and per row count N / column count K a hash of the index with it
//    (murmur3's fmix32 in int64 holding u32 values, then as int32);
//  - per module: its salts (from the module path, host constants) xor-multiplied into the row and column
//    hashes ([N] and [K], int32: the wrap-around is the mod 2^32 multiply), and per element one more
//    xor-multiply whose high bits decide keep (P = 1 − p): Xor, Mul, GreaterOrEqual, Where.
// The 1/(1−p) rescale is left to the caller, which folds it into the thin LoRA factor.
// `dropoutMaskReference` is the same function in JS (tests check bit equality and independence).
// Semantics: torch.nn.Dropout as PEFT uses it (`lora_dropout`).

import type { DType } from '../core/dtype.js';
import { hashString } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { op, shapes, type Graph, type Value } from '../graph/index.js';

const M32 = 0xffffffff;
const SEED_SALTS = [0x68e31da4, 0xb5297a4d, 0x1b56c4e9] as const;
/** Odd multipliers < 2^31 for the int32 rounds (row, column, element). */
const C_ROW = 0x2c1b3c6d;
const C_COL = 0x297a2d39;
const C_ELT = 0x4f6cdd1d;

// ---- graph side --------------------------------------------------------------------------------------

function bitwise(kind: 'BitwiseAnd' | 'BitwiseXor', a: Value, b: Value | number): Value {
  const g = a.graph;
  const bv = typeof b === 'number' ? intScalar(g, b, a.dtype) : b;
  return g.node(kind, [a, bv], {}, [{ dtype: a.dtype, shape: shapes.broadcastShapes(kind, a.shape, bv.shape) }])[0]!;
}

/** An exact integer scalar (g.scalar goes through float32, which would round a 32-bit constant). */
function intScalar(g: Graph, v: number, dtype: DType): Value {
  return dtype === 'int32' ? g.constant(new Tensor('int32', [], Int32Array.of(v | 0))) : g.constant(Tensor.int64([v], []));
}

const xor = (a: Value, b: Value | number): Value => bitwise('BitwiseXor', a, b);
const shr = (x: Value, k: number): Value => op.Div(x, 2 ** k);

/** (x · c) mod 2^32 for int64 x in [0, 2^32): c split in halves so no product exceeds 2^48. */
function mulMod32(x: Value, c: number): Value {
  const a = op.Mul(x, c & 0xffff);
  const b = op.Mul(bitwise('BitwiseAnd', op.Mul(x, c >>> 16), 0xffff), 65536);
  return bitwise('BitwiseAnd', op.Add(a, b), M32);
}

/** murmur3 fmix32 on int64 values in [0, 2^32). */
function fmix(x: Value): Value {
  let h = xor(x, shr(x, 16));
  h = mulMod32(h, 0x85ebca6b);
  h = xor(h, shr(h, 13));
  h = mulMod32(h, 0xc2b2ae35);
  return xor(h, shr(h, 16));
}

/** u32 held in int64 → the int32 with the same bits. */
function toInt32(x: Value): Value {
  return op.Cast(op.Where(op.GreaterOrEqual(x, 2 ** 31), op.Sub(x, 2 ** 32), x), 'int32');
}

const cache = new WeakMap<Graph, Map<string, Value>>();

function cached(g: Graph, key: string, make: () => Value): Value {
  let m = cache.get(g);
  if (!m) cache.set(g, (m = new Map()));
  let v = m.get(key);
  if (!v) m.set(key, (v = make()));
  return v;
}

function iota(g: Graph, n: number): Value {
  return cached(g, `iota:${n}`, () => g.constant(new Tensor('int64', [n], BigInt64Array.from({ length: n }, (_, i) => BigInt(i)))));
}

/** The step's key: fmix of both 32-bit halves of the int64 seed (u32 in an int64 scalar). */
function seedKey(seed: Value): Value {
  return cached(seed.graph, `key:${seed.name}`, () => {
    const lo = bitwise('BitwiseAnd', seed, M32);
    const hi = bitwise('BitwiseAnd', op.Div(seed, 2 ** 32), M32); // Div truncates: negative seeds are fine
    return fmix(xor(fmix(xor(lo, SEED_SALTS[0])), hi));
  });
}

/** fmix(fmix(i ^ key ^ salt) ^ key) for i < n, as int32 [n]: shared by every module of the graph. */
function indexHash(seed: Value, n: number, salt: number): Value {
  const g = seed.graph;
  return cached(g, `idx:${seed.name}:${n}:${salt}`, () => {
    const k = seedKey(seed);
    return toInt32(fmix(xor(fmix(xor(xor(iota(g, n), k), salt)), k)));
  });
}

/**
 * x [..., K] with dropped elements zeroed and kept ones NOT rescaled: the caller folds 1/(1−p) into the
 * thin LoRA factor (one multiply on [R, out] instead of one on [B, T, in]). p = 0 returns x unchanged.
 */
export function dropoutUnscaled(x: Value, p: number, stepSeed: Value, salt: number): Value {
  if (p <= 0) return x;
  const g = x.graph;
  const K = x.shape[x.rank - 1]!;
  const N = x.size / K;
  const [sr, sc] = moduleSalts(salt);
  const row = op.Mul(xor(indexHash(stepSeed, N, SEED_SALTS[1]), sr), intScalar(g, C_ROW, 'int32')); // [N] int32
  const col = op.Mul(xor(indexHash(stepSeed, K, SEED_SALTS[2]), sc), intScalar(g, C_COL, 'int32')); // [K] int32
  const h = op.Mul(xor(op.Reshape(row, [N, 1]), col), intScalar(g, C_ELT, 'int32')); // [N, K], wraps mod 2^32
  const keep = op.GreaterOrEqual(h, intScalar(g, threshold(p), 'int32')); // P(keep) = 1 − p
  return op.Where(op.Reshape(keep, x.shape), x, g.scalar(0, x.dtype));
}

/** torch.nn.Dropout: dropped elements 0, kept ones scaled by 1/(1−p). */
export function dropout(x: Value, p: number, stepSeed: Value, salt: number): Value {
  if (p <= 0) return x;
  return op.Mul(dropoutUnscaled(x, p, stepSeed, salt), dropoutScale(p));
}

/** 1/(1−p) in float32. */
export function dropoutScale(p: number): number {
  return Math.fround(1 / (1 - p));
}

/** int32 threshold t with P(h ≥ t) = 1 − p for h uniform over int32. */
function threshold(p: number): number {
  return Math.min(Math.round(p * 2 ** 32) - 2 ** 31, 2 ** 31 - 1);
}

/** A stable per-module salt (FNV-1a of the module path). */
export function dropoutSalt(modulePath: string): number {
  return hashString(modulePath);
}

/** The row and column salts of a module (host-side fmix of its salt; int32 bit patterns). */
function moduleSalts(salt: number): [number, number] {
  const a = fmixJs(salt ^ 0x3c6ef372);
  return [a | 0, fmixJs(a ^ 0xa54ff53a) | 0];
}

// ---- the same function in JS ---------------------------------------------------------------------------

function fmixJs(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** The keep mask (1 = kept) the graph computes for N rows × K columns. */
export function dropoutMaskReference(stepSeed: bigint | number, salt: number, N: number, K: number, p: number): Uint8Array {
  const s = BigInt(stepSeed);
  const lo = Number(BigInt.asUintN(64, s) & 0xffffffffn);
  const hi = Number(BigInt.asUintN(64, s / 0x100000000n) & 0xffffffffn);
  const key = fmixJs(fmixJs(lo ^ SEED_SALTS[0]) ^ hi);
  const idx = (i: number, salt2: number): number => fmixJs(fmixJs(i ^ key ^ salt2) ^ key) | 0;
  const [sr, sc] = moduleSalts(salt);
  const t = threshold(p);
  const col = new Int32Array(K);
  for (let j = 0; j < K; j++) col[j] = Math.imul(idx(j, SEED_SALTS[2]) ^ sc, C_COL);
  const out = new Uint8Array(N * K);
  for (let i = 0; i < N; i++) {
    const r = Math.imul(idx(i, SEED_SALTS[1]) ^ sr, C_ROW);
    for (let j = 0; j < K; j++) out[i * K + j] = Math.imul(r ^ col[j]!, C_ELT) >= t ? 1 : 0;
  }
  return out;
}
