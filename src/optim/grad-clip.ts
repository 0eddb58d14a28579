// Gradient clipping by global L2 norm over many tensors, as torch.nn.utils.clip_grad_norm_ (which HF's
// Trainer calls with `max_grad_norm`): norm = sqrt(Σ g²) over every element of every gradient; when
// maxNorm / (norm + 1e-6) < 1 every gradient is scaled by that coefficient, in float32 as torch does.
// We accumulate the sum of squares in float64, so the norm is the exact one rounded once (torch sums in
// float32 per tensor; the two agree to ~1e-7 relative). Not here: clipping inside an ONNX graph.

import { TsFinetuneError } from '../core/errors.js';

/** torch's eps in `max_norm / (total_norm + 1e-6)`. */
export const CLIP_EPS = 1e-6;

/** sqrt of the sum of squares of every element of every array, accumulated in float64. */
export function globalL2Norm(grads: Iterable<Float32Array | Float64Array>): number {
  let sum = 0;
  for (const g of grads) {
    for (let i = 0; i < g.length; i++) {
      const v = g[i]!;
      sum += v * v;
    }
  }
  return Math.sqrt(sum);
}

/**
 * The factor torch multiplies gradients by: min(1, maxNorm / (norm + 1e-6)), rounded to float32.
 * NaN or Infinity norms give NaN or 0, as in torch (with `error_if_nonfinite=False`).
 */
export function clipCoefficient(norm: number, maxNorm: number): number {
  // Every operand is a float32 in torch (the norm tensor, and the scalars cast to its dtype).
  const f = Math.fround;
  return Math.min(1, f(f(maxNorm) / f(f(norm) + f(CLIP_EPS))));
}

export interface ClipResult {
  /** The global norm before clipping: what HF logs as `grad_norm`. */
  norm: number;
  /** The factor applied (1 when nothing was clipped). */
  coefficient: number;
  clipped: boolean;
}

/**
 * Clip `grads` in place to global L2 norm `maxNorm` and return the norm before clipping.
 * `maxNorm <= 0` only measures (HF skips clipping when max_grad_norm is 0).
 *
 * @example
 * const g = [new Float32Array([3, 4])];
 * clipGradNorm(g, 1);   // { norm: 5, coefficient: ≈0.2, clipped: true }; g[0] ≈ [0.6, 0.8]
 */
export function clipGradNorm(grads: readonly Float32Array[], maxNorm: number): ClipResult {
  if (!Number.isFinite(maxNorm)) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `clipGradNorm: maxNorm must be finite, got ${maxNorm}.`, { maxNorm });
  }
  const norm = globalL2Norm(grads);
  if (maxNorm <= 0) return { norm, coefficient: 1, clipped: false };
  const coefficient = clipCoefficient(norm, maxNorm);
  // torch multiplies even by 1.0 (a no-op in float32), and by NaN for a NaN norm.
  if (coefficient === 1) return { norm, coefficient, clipped: false };
  for (const g of grads) {
    for (let i = 0; i < g.length; i++) g[i] = g[i]! * coefficient;
  }
  return { norm, coefficient, clipped: true };
}
