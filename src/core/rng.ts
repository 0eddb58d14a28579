// A seeded random generator that gives the same numbers for the same seed on every machine and Node
// version: xoshiro128** (Blackman & Vigna) on 32-bit integer arithmetic only, seeded through splitmix32.
// Used for shuffles, splits, LoRA init and dropout masks. Its state is four u32s, so checkpoints can
// save and restore it exactly (`getState` / `setState`).
// Not numpy's PCG64: HF datasets' shuffle order is not reproduced, only its seeded determinism.

export type RngState = [number, number, number, number];

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

export class Rng {
  private s: RngState;
  private spareNormal: number | undefined;

  constructor(seed: number | string = 0) {
    const n = typeof seed === 'string' ? hashString(seed) : seed;
    // Seeds beyond 32 bits fold their high word in, so 2**32 + 1 and 1 differ.
    const sm = splitmix32((n >>> 0) ^ Math.floor(n / 2 ** 32));
    this.s = [sm(), sm(), sm(), sm()];
    if (this.s.every((v) => v === 0)) this.s[0] = 1;
  }

  /** The next uniform u32. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] = (s[2] ^ s[0]) >>> 0;
    s[3] = (s[3] ^ s[1]) >>> 0;
    s[1] = (s[1] ^ s[2]) >>> 0;
    s[0] = (s[0] ^ s[3]) >>> 0;
    s[2] = (s[2] ^ t) >>> 0;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  random(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [low, high). */
  uniform(low = 0, high = 1): number {
    return low + (high - low) * this.random();
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling). */
  randint(n: number): number {
    if (n <= 0 || !Number.isInteger(n)) throw new RangeError(`randint(n) needs a positive integer, got ${n}`);
    if (n <= 2 ** 32) {
      const limit = Math.floor(2 ** 32 / n) * n;
      let x = this.nextU32();
      while (x >= limit) x = this.nextU32();
      return x % n;
    }
    return Math.floor(this.random() * n);
  }

  /** Standard normal (Box–Muller; the second value is kept for the next call). */
  normal(mean = 0, std = 1): number {
    if (this.spareNormal !== undefined) {
      const v = this.spareNormal;
      this.spareNormal = undefined;
      return mean + std * v;
    }
    let u = 0;
    while (u === 0) u = this.random();
    const v = this.random();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.randint(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.randint(i + 1);
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  }

  /** An independent stream derived from this seed state and a label (e.g. 'dropout', 'epoch-3'). */
  fork(label: string): Rng {
    const r = new Rng(0);
    const h = hashString(label);
    r.s = [(this.s[0] ^ h) >>> 0, (this.s[1] ^ Math.imul(h, 0x9e3779b9)) >>> 0, this.s[2], (this.s[3] ^ 0x6a09e667) >>> 0];
    if (r.s.every((v) => v === 0)) r.s[0] = 1;
    for (let i = 0; i < 8; i++) r.nextU32();
    return r;
  }

  getState(): RngState {
    return [...this.s];
  }

  setState(state: RngState): void {
    this.s = [state[0] >>> 0, state[1] >>> 0, state[2] >>> 0, state[3] >>> 0];
    this.spareNormal = undefined;
  }
}

/** FNV-1a over UTF-16 code units: stable string → u32. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
