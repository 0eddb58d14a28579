// torch's AdamW update as a host loop over float32 arrays, in place: the CPU engine of `adamw_torch` and
// `paged_adamw_32bit`. It computes exactly what the update graph of kernels/adamw.ts (`math: 'torch'`)
// computes, operation for operation, so the two engines give bit-identical parameters and moments:
//   - every float32 operation (+, −, ×, ÷, √) is done in float64 and rounded once with Math.fround; for
//     these operations that equals the correctly rounded float32 result (float64 has more than 2·24 + 2
//     mantissa bits, so the double rounding is innocuous);
//   - torch's two fused multiply-adds (lerp and addcmul) are the kernel's float64 emulation: the product of
//     two float32 values is exact in float64, the sum rounds there, then once more to float32.
// Why a host loop on the CPU: ONNX has no fused AdamW, so the graph is ~21 elementwise passes over the
// vector plus float64 casts, each allocating a fresh output; measured on the 1.18M-parameter LoRA of
// bench/lora-step.ts it took 23–65 ms per step, the loop below takes a few ms (docs/optimizers.md).
// CUDA and WebGPU keep the graph (the vector then lives where the step graph runs).
// Not here: the hyper-parameters (kernels/adamw.ts torchAdamwHyper), paging (paged.ts).

const f32 = Math.fround;

/** One page of AdamW state and inputs; p, m, v are updated in place. */
export interface HostAdamwPage {
  p: Float32Array;
  g: Float32Array;
  m: Float32Array;
  v: Float32Array;
  /** Per-element weight-decay multiplier (0/1), or undefined for "decay everything". */
  mask?: Float32Array | undefined;
}

export interface HostAdamwFlags {
  /** Emulate torch's fused multiply-adds (true on CPU, as the kernel's default). */
  fma: boolean;
  /** torch's lerp branch: m + w·(g − m) when |w| < 0.5, else g + (w − 1)·(g − m). */
  lerpSmallWeight: boolean;
}

/**
 * Apply one update with the kernel's hyper vector `h` = [decay, lerp_coeff, β2, 1 − β2, √bc2, eps,
 * −lr/bc1] (torchAdamwHyper), each entry already a float32 value.
 */
export function hostAdamwTorch(page: HostAdamwPage, h: Float32Array, flags: HostAdamwFlags): void {
  const { p, g, m, v, mask } = page;
  const decay = h[0]!;
  const coeff = h[1]!;
  const beta2 = h[2]!;
  const omb2 = h[3]!;
  const bc2Sqrt = h[4]!;
  const eps = h[5]!;
  const negStep = h[6]!;
  const decayMinus1 = f32(decay - 1);
  const n = p.length;
  // The CPU default (FMA, small lerp weight) gets its own branch-free loop; the general one serves the rest.
  if (flags.fma && flags.lerpSmallWeight) {
    for (let i = 0; i < n; i++) {
      const gi = g[i]!;
      const mi = m[i]!;
      const d = mask === undefined ? decay : f32(f32(mask[i]! * decayMinus1) + 1);
      const p1 = f32(p[i]! * d);
      const m1 = f32(coeff * f32(gi - mi) + mi);
      const v1 = f32(f32(omb2 * gi) * gi + f32(v[i]! * beta2));
      const den = f32(f32(f32(Math.sqrt(v1)) / bc2Sqrt) + eps);
      p[i] = f32(p1 + f32(f32(negStep * m1) / den));
      m[i] = m1;
      v[i] = v1;
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
    const mi = m[i]!;
    const d = mask === undefined ? decay : f32(f32(mask[i]! * decayMinus1) + 1);
    const p1 = f32(p[i]! * d);
    const base = flags.lerpSmallWeight ? mi : gi;
    const diff = f32(gi - mi);
    const sq = f32(omb2 * gi);
    const vb = f32(v[i]! * beta2);
    const m1 = flags.fma ? f32(coeff * diff + base) : f32(f32(coeff * diff) + base);
    const v1 = flags.fma ? f32(sq * gi + vb) : f32(f32(sq * gi) + vb);
    const den = f32(f32(f32(Math.sqrt(v1)) / bc2Sqrt) + eps);
    p[i] = f32(p1 + f32(f32(negStep * m1) / den));
    m[i] = m1;
    v[i] = v1;
  }
}
