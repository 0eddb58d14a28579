// A plain-TS transcription of bitsandbytes' 8-bit AdamW for the tests, written from csrc/kernels.cu
// independently of kernels/adamw-8bit*.ts: `quantize_2D` (the binary search with its quadrant start),
// kOptimizerStatic8bit2StateBlockwise per tensor (blocks of 256, out-of-range items loaded as g = 0, c1 = 128,
// c2 = 0, the non-finite-gradient guard, absmax from −FLT_MAX, the sign-keeping step), and
// kOptimizer32bit2State for tensors under 4096 elements. Float32 arithmetic in the C order, IEEE division
// (the GPU's __fdividef is approximate; the graph divides exactly too). The scalars come from
// kernels/adamw.ts bnb32AdamwHyper — they are tested on their own; this checks the per-element math.

import { dynamicMap } from '../../src/quant/index.js';
import { bnb32AdamwHyper } from '../../kernels/adamw.js';

const f32 = Math.fround;
const FLT_MAX = 3.4028234663852886e38;

/** kernels.cu quantize_2D<SIGNED>(quadrants, smem_code, x). */
export function quantize2D(code: Readonly<Float32Array>, x: number, signed: boolean): number {
  const quadrants = [code[63]!, code[127]!, code[191]!];
  let pivot = 127;
  let upperPivot = 255;
  let lowerPivot = 0;
  let lower = signed ? -1 : 0;
  let upper = 1;
  let val = quadrants[1]!;
  let localPivot = 1;
  let offset = 1;
  for (let i = 64; i > 0; i >>= 1) {
    if (x > val) {
      lowerPivot = pivot;
      lower = val;
      pivot += i;
      localPivot += offset;
    } else {
      upperPivot = pivot;
      upper = val;
      pivot -= i;
      localPivot -= offset;
    }
    val = i >= 64 ? quadrants[localPivot]! : code[pivot]!;
    offset -= 1;
  }
  if (x > val) return x > f32(f32(upper + val) * 0.5) ? upperPivot : pivot;
  return x < f32(f32(lower + val) * 0.5) ? lowerPivot : pivot;
}

const signBit = (x: number): boolean => x < 0 || Object.is(x, -0);

/** The stored code of s / absmax: quantize_2D, then for the signed map the sign-keeping step. */
export function stateCode(code: Readonly<Float32Array>, x: number, s: number, signed: boolean): number {
  let c = quantize2D(code, x, signed);
  if (signed && signBit(code[c]!) !== signBit(s)) c = s > 0 ? (c + 1) & 255 : (c - 1) & 255;
  return c;
}

interface QTensor {
  start: number;
  n: number;
  c1: Uint8Array;
  c2: Uint8Array;
  a1: Float32Array;
  a2: Float32Array;
}
interface FTensor {
  start: number;
  n: number;
  m: Float32Array;
  v: Float32Array;
}

export interface Bnb8bitConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export class Bnb8bitAdamwRef {
  readonly q: QTensor[] = [];
  readonly f: FTensor[] = [];
  t = 0;
  private readonly code1 = dynamicMap(true);
  private readonly code2 = dynamicMap(false);

  constructor(
    ranges: readonly (readonly [number, number])[],
    readonly cfg: Bnb8bitConfig,
    readonly mask?: Float32Array,
  ) {
    for (const [start, end] of ranges) {
      const n = end - start;
      const blocks = Math.ceil(n / 256);
      if (n >= 4096) this.q.push({ start, n, c1: new Uint8Array(n), c2: new Uint8Array(n), a1: new Float32Array(blocks), a2: new Float32Array(blocks) });
      else this.f.push({ start, n, m: new Float32Array(n), v: new Float32Array(n) });
    }
  }

  step(p: Float32Array, g: Float32Array, lr: number): void {
    this.t++;
    const [beta1, omb1, beta2, omb2, epsC2, stepSize, decay] = bnb32AdamwHyper({ lr, ...this.cfg }, this.t) as unknown as number[];
    const decayAt = (i: number): number => (this.cfg.weightDecay > 0 && (this.mask === undefined || this.mask[i] === 1) ? decay! : 1);
    for (const T of this.q) {
      for (let b = 0; b * 256 < T.n; b++) {
        const s1 = new Float32Array(256);
        const s2 = new Float32Array(256);
        const ok: boolean[] = [];
        let m1 = -FLT_MAX;
        let m2 = -FLT_MAX;
        for (let j = 0; j < 256; j++) {
          const i = b * 256 + j;
          const valid = i < T.n;
          const gv = valid ? g[T.start + i]! : 0;
          const c1 = valid ? T.c1[i]! : 128;
          const c2 = valid ? T.c2[i]! : 0;
          ok[j] = Number.isFinite(gv);
          if (ok[j]) {
            s2[j] = f32(f32(f32(this.code2[c2]! * T.a2[b]!) * beta2!) + f32(f32(omb2! * gv) * gv));
            s1[j] = f32(f32(f32(this.code1[c1]! * T.a1[b]!) * beta1!) + f32(omb1! * gv));
          }
          m1 = Math.max(m1, Math.abs(s1[j]!));
          m2 = Math.max(m2, Math.abs(s2[j]!));
        }
        T.a1[b] = m1;
        T.a2[b] = m2;
        for (let j = 0; j < 256 && b * 256 + j < T.n; j++) {
          const i = b * 256 + j;
          if (ok[j]) {
            const k = T.start + i;
            const upd = f32(stepSize! * f32(s1[j]! / f32(f32(Math.sqrt(s2[j]!)) + epsC2!)));
            p[k] = f32(f32(p[k]! + upd) * decayAt(k));
          }
          T.c1[i] = stateCode(this.code1, f32(s1[j]! / m1), s1[j]!, true);
          T.c2[i] = stateCode(this.code2, f32(s2[j]! / m2), s2[j]!, false);
        }
      }
    }
    for (const T of this.f) {
      for (let i = 0; i < T.n; i++) {
        const k = T.start + i;
        const gv = g[k]!;
        T.m[i] = f32(f32(T.m[i]! * beta1!) + f32(omb1! * gv));
        T.v[i] = f32(f32(T.v[i]! * beta2!) + f32(omb2! * f32(gv * gv)));
        const upd = f32(stepSize! * f32(T.m[i]! / f32(f32(Math.sqrt(T.v[i]!)) + epsC2!)));
        p[k] = f32(f32(p[k]! + upd) * decayAt(k));
      }
    }
  }
}
