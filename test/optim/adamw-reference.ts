// Plain-TS references for the AdamW tests: torch's algorithm in float64 (the closed form the issue asks to
// match to 1e-6), the same algorithm operation for operation in float32 (what the graph must equal bit for
// bit), and the integer-hash inputs shared with scripts/golden_adamw.py.

const f32 = Math.fround;

/** scripts/golden_adamw.py `x`: exact float32 in [−0.5, 0.5). */
export function hx(i: number, t: number, salt: number): number {
  return ((i * 2654435761 + t * 97531 + salt * 1234567) % 2 ** 24) / 2 ** 24 - 0.5;
}

export function hashVec(n: number, t: number, salt: number, scale: (i: number) => number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => hx(i, t, salt) * scale(i));
}

export interface AdamwConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** torch.optim.AdamW in float64 (decoupled decay, bias-corrected moments), on copies it owns. */
export class AdamwF64 {
  readonly p: Float64Array;
  readonly m: Float64Array;
  readonly v: Float64Array;
  t = 0;
  constructor(
    p0: Float32Array,
    readonly c: AdamwConfig,
    readonly mask?: Float32Array,
  ) {
    this.p = Float64Array.from(p0);
    this.m = new Float64Array(p0.length);
    this.v = new Float64Array(p0.length);
  }

  step(g: Float32Array, lr: number): void {
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = this.c;
    this.t++;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    for (let i = 0; i < this.p.length; i++) {
      const w = wd * (this.mask ? this.mask[i]! : 1);
      this.p[i]! *= 1 - lr * w;
      this.m[i] = b1 * this.m[i]! + (1 - b1) * g[i]!;
      this.v[i] = b2 * this.v[i]! + (1 - b2) * g[i]! * g[i]!;
      this.p[i]! -= ((lr / bc1) * this.m[i]!) / (Math.sqrt(this.v[i]!) / Math.sqrt(bc2) + eps);
    }
  }
}

/**
 * kernels/adamw.ts `torch` in float32, op for op (fused multiply-adds through float64, as the graph does):
 * updates p, m, v in place with the kernel's hyper vector.
 */
export function torchStepF32(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: Float32Array, mask?: Float32Array, lerpSmall = true): void {
  const [decay, coeff, beta2, omb2, bc2Sqrt, eps, negStep] = h as unknown as number[];
  for (let i = 0; i < p.length; i++) {
    const d = mask ? f32(f32(mask[i]! * f32(decay! - 1)) + 1) : decay!;
    const p1 = f32(p[i]! * d);
    const diff = f32(g[i]! - m[i]!);
    const m1 = f32(coeff! * diff + (lerpSmall ? m[i]! : g[i]!));
    const v1 = f32(f32(omb2! * g[i]!) * g[i]! + f32(v[i]! * beta2!));
    const den = f32(f32(f32(Math.sqrt(v1)) / bc2Sqrt!) + eps!);
    p[i] = f32(p1 + f32(f32(negStep! * m1) / den));
    m[i] = m1;
    v[i] = v1;
  }
}

export function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

/** Index and values of the first difference in bits, for readable failures. */
export function firstDiff(a: Float32Array, b: Float32Array): string | undefined {
  const ba = bitsOf(a);
  const bb = bitsOf(b);
  if (ba.length !== bb.length) return `lengths ${ba.length} vs ${bb.length}`;
  for (let i = 0; i < ba.length; i++) if (ba[i] !== bb[i]) return `element ${i}: ${a[i]} vs ${b[i]}`;
  return undefined;
}
