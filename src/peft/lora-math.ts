// Host-side LoRA arithmetic on plain Float32Arrays: initialisation (seeded), the delta weight s·B@A, the
// merge into a base weight (DoRA included) and the DoRA magnitude init. Row-major, torch layouts:
// W [out, in], A [R, in], B [out, R].
// Follows peft `tuners/lora/layer.py` (reset_lora_parameters, get_delta_weight, merge) and
// `tuners/lora/dora.py` (get_weight_norm, update_layer). Not here: the graph forward (lora-layer.ts).

import type { Rng } from '../core/rng.js';
import type { InitLoraWeights } from './lora-config.js';

const f32 = Math.fround;

/**
 * A and B as peft initialises them. true: A ~ kaiming_uniform(a=√5) = U(−1/√in, 1/√in), B = 0;
 * 'gaussian': A ~ N(0, (1/R)²), B = 0; false: both keep nn.Linear's default init (kaiming-uniform), so the
 * adapter starts as a non-identity.
 */
export function initLora(rng: Rng, init: InitLoraWeights, r: number, inF: number, outF: number): { A: Float32Array; B: Float32Array } {
  const A = new Float32Array(r * inF);
  const B = new Float32Array(outF * r);
  if (init === 'gaussian') {
    for (let i = 0; i < A.length; i++) A[i] = rng.normal(0, 1 / r);
  } else {
    const bound = 1 / Math.sqrt(inF);
    for (let i = 0; i < A.length; i++) A[i] = rng.uniform(-bound, bound);
  }
  if (init === false) {
    const bound = 1 / Math.sqrt(r);
    for (let i = 0; i < B.length; i++) B[i] = rng.uniform(-bound, bound);
  }
  return { A, B };
}

/** s·(B@A) [out, in], each product summed in float64 and rounded once (torch's fp32 matmul, then × s). */
export function deltaWeight(A: Float32Array, B: Float32Array, r: number, inF: number, outF: number, scaling: number): Float32Array {
  const out = new Float32Array(outF * inF);
  const acc = new Float64Array(inF);
  for (let o = 0; o < outF; o++) {
    acc.fill(0);
    for (let k = 0; k < r; k++) {
      const b = B[o * r + k]!;
      if (b === 0) continue;
      const row = k * inF;
      for (let i = 0; i < inF; i++) acc[i]! += b * A[row + i]!;
    }
    const base = o * inF;
    for (let i = 0; i < inF; i++) out[base + i] = f32(f32(acc[i]!) * scaling);
  }
  return out;
}

/** ||W + delta|| per output row [out] (peft DoraLinearLayer.get_weight_norm). */
export function rowNorms(W: Float32Array, delta: Float32Array | undefined, outF: number, inF: number): Float32Array {
  const n = new Float32Array(outF);
  for (let o = 0; o < outF; o++) {
    let s = 0;
    for (let i = 0; i < inF; i++) {
      const v = delta ? f32(W[o * inF + i]! + delta[o * inF + i]!) : W[o * inF + i]!;
      s += v * v;
    }
    n[o] = Math.sqrt(s);
  }
  return n;
}

/**
 * The merged weight: W + s·B@A; with DoRA (magnitude m) (m / ||W + s·B@A||) · (W + s·B@A) per row
 * (peft Linear.merge). Returns a new array.
 */
export function mergeWeight(
  W: Float32Array,
  A: Float32Array,
  B: Float32Array,
  dims: { r: number; inF: number; outF: number; scaling: number },
  magnitude?: Float32Array,
): Float32Array {
  const { r, inF, outF, scaling } = dims;
  const delta = deltaWeight(A, B, r, inF, outF, scaling);
  const merged = new Float32Array(W.length);
  for (let i = 0; i < W.length; i++) merged[i] = f32(W[i]! + delta[i]!);
  if (!magnitude) return merged;
  const norms = rowNorms(merged, undefined, outF, inF);
  for (let o = 0; o < outF; o++) {
    const factor = f32(magnitude[o]! / norms[o]!);
    for (let i = 0; i < inF; i++) merged[o * inF + i] = f32(factor * merged[o * inF + i]!);
  }
  return merged;
}
