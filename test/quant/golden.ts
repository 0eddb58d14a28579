// Shared by the quant tests: the golden fixture made by scripts/golden_quant.py and the deterministic
// weight generator that script uses (mirrored bit for bit, so large inputs need not be stored).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const golden = JSON.parse(
  readFileSync(fileURLToPath(new URL('../fixtures/quant/golden.json', import.meta.url)), 'utf8'),
) as Record<string, any>;

function bytes(b64: string): Uint8Array {
  return Uint8Array.from(Buffer.from(b64, 'base64'));
}
export const u8 = (b64: string): Uint8Array => bytes(b64);
export const f32 = (b64: string): Float32Array => {
  const b = bytes(b64);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

/** Bit patterns, so that -0 vs 0 and NaN payloads count as differences. */
export const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

export function fnv1a(a: Float32Array): number {
  const b = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let h = 0x811c9dc5;
  for (const byte of b) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

function mix32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** scripts/golden_quant.py gen_weight: roughly normal float32 values, row scale 2^-(row % 4). */
export function genWeight(rows: number, cols: number, seed: number): Float32Array {
  const n = rows * cols;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < 3; k++) s += mix32((i * 3 + k + seed * 0x9e3779b9) % 2 ** 32) >>> 8;
    s -= 3 * 2 ** 23;
    out[i] = s * 2 ** (-24 - (Math.floor(i / cols) % 4));
  }
  return out;
}
