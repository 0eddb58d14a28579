// The AdamW update as ONNX model-local functions (domain 'ts_finetune') over a page of N float32 elements:
//   torch  — torch.optim.AdamW, the single-tensor path (`_single_tensor_adamw`, foreach=False, torch ≥ 2.0),
//            operation for operation: p·(1−lr·wd); m.lerp_(g, 1−β1); v·β2 + ((1−β2)·g)·g;
//            denom = sqrt(v)/sqrt(bc2) + eps; p + ((−lr/bc1)·m)/denom.
//   bnb32  — bitsandbytes' 32-bit AdamW kernel (csrc kOptimizer32bit2State, ADAM): what bnb's 8-bit AdamW
//            runs for tensors under 4096 elements. Update first, decoupled decay after, eps scaled by √bc2.
// Every scalar (the `hyper` input) is computed on the host in float64 and rounded to float32 once, which is
// what torch does with its Python-float scalars (torchAdamwHyper / bnb32AdamwHyper below).
// Fused multiply-adds: torch's CPU lerp is an explicit `fmadd(w, g − m, m)` and its addcmul compiles to an
// FMA on AVX2 builds (measured on the torch here: 0 mismatches of 1M vs FMA, 3,251 vs separate roundings).
// ONNX has no FMA, so with `fma: true` those two steps run in float64 (the product of two float32 is exact
// there) and round once to float32; the only remaining difference is a double rounding, about 2⁻²⁹ per
// element. WebGPU has no float64: there `fma: false` rounds the product and the sum separately.
// Not here: the 8-bit state (adamw-8bit.ts), paging and sessions (src/optim).

import { Tensor } from '../src/core/index.js';
import { defineFunction, op, type DefinedFunction, type Graph, type Value } from '../src/graph/index.js';

/** Which AdamW a kernel reproduces. */
export type AdamwMath = 'torch' | 'bnb32';

export interface AdamwKernelOptions {
  /** Elements per call (one page, or the whole vector when unpaged). */
  n: number;
  math: AdamwMath;
  /** A per-element weight-decay multiplier input `wd_mask` [n] (1 decays, 0 does not). */
  mask: boolean;
  /** torch only: emulate torch's fused multiply-adds in float64 (see the header). Default true. */
  fma?: boolean;
  /**
   * torch only: `|1 − β1| < 0.5` (any β1 > 0.5). torch's lerp computes m + w·(g − m) for small weights
   * and g + (w − 1)·(g − m) otherwise; the branch is fixed when the graph is built. Default true.
   */
  lerpSmallWeight?: boolean;
}

/** Names of the `hyper` entries, in order, for each math. */
export const ADAMW_HYPER = {
  torch: ['decay', 'lerp_coeff', 'beta2', 'one_minus_beta2', 'bc2_sqrt', 'eps', 'neg_step_size'],
  bnb32: ['beta1', 'one_minus_beta1', 'beta2', 'one_minus_beta2', 'eps_bc2_sqrt', 'step_size', 'decay'],
} as const;

export interface AdamwScalars {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

const f32 = Math.fround;

/**
 * torch's scalars for update number `step` (1-based), each computed as torch computes it in Python
 * float64 and cast once to float32 where it meets the tensor.
 */
export function torchAdamwHyper(s: AdamwScalars, step: number): Float32Array {
  const bc1 = 1 - s.beta1 ** step;
  const bc2 = 1 - s.beta2 ** step;
  const w = f32(1 - s.beta1);
  // Vectorized lerp: coeff = blendv(w − 1, w, |w| < 0.5), with w already float32.
  const lerpCoeff = Math.abs(w) < 0.5 ? w : f32(w - 1);
  return Float32Array.of(1 - s.lr * s.weightDecay, lerpCoeff, s.beta2, 1 - s.beta2, Math.sqrt(bc2), s.eps, -(s.lr / bc1));
}

/**
 * bitsandbytes' scalars for `step`: its kernels receive lr, β1, β2, eps, wd as C floats and compute
 * correction1 = 1 − β1^t, correction2 = sqrt(1 − β2^t), step_size = −lr·c2/c1, eps·c2 and 1 − lr·wd in
 * float32. We do the same float32 arithmetic; the powers and the square root are computed in float64 and
 * rounded (bnb's device `powf`/`sqrtf` may differ from that by an ulp).
 */
export function bnb32AdamwHyper(s: AdamwScalars, step: number): Float32Array {
  const lr = f32(s.lr);
  const b1 = f32(s.beta1);
  const b2 = f32(s.beta2);
  const eps = f32(s.eps);
  const wd = f32(s.weightDecay);
  const c1 = f32(1 - f32(b1 ** step));
  const c2 = f32(Math.sqrt(f32(1 - f32(b2 ** step))));
  const stepSize = f32(f32(-lr * c2) / c1);
  return Float32Array.of(b1, f32(1 - b1), b2, f32(1 - b2), f32(eps * c2), stepSize, f32(1 - f32(lr * wd)));
}

/** The hyper vector for `math`. */
export function adamwHyper(math: AdamwMath, s: AdamwScalars, step: number): Float32Array {
  return math === 'torch' ? torchAdamwHyper(s, step) : bnb32AdamwHyper(s, step);
}

/** `hyper` [k] → k scalars of shape [1] (they broadcast against [n]). */
export function splitHyper(hyper: Value, k: number): Value[] {
  return op.Split(hyper, new Array<number>(k).fill(1), 0);
}

/** a·b + c rounded once to float32 (exact product in float64, one rounding there, one to float32). */
function fmaF32(a: Value, b: Value, c: Value, fma: boolean): Value {
  if (!fma) return op.Add(op.Mul(a, b), c);
  const d = (v: Value): Value => op.Cast(v, 'float64');
  return op.Cast(op.Add(op.Mul(d(a), d(b)), d(c)), 'float32');
}

/**
 * Per-element decay factor: 1 + mask·(decay − 1). For a 0/1 mask this is exactly `decay` or 1 (decay − 1 is
 * exact for decay in [0.5, 2]), so masked elements are multiplied by 1.0 as torch's wd = 0 group is.
 */
export function maskedDecay(decay: Value, mask: Value | undefined): Value {
  return mask === undefined ? decay : op.Add(op.Mul(mask, op.Sub(decay, 1)), 1);
}

function torchBody(p: Value, g: Value, m: Value, v: Value, mask: Value | undefined, hyper: Value, o: AdamwKernelOptions): Value[] {
  const fma = o.fma ?? true;
  const [decay, lerpCoeff, beta2, oneMinusBeta2, bc2Sqrt, eps, negStepSize] = splitHyper(hyper, 7) as [Value, Value, Value, Value, Value, Value, Value];
  const p1 = op.Mul(p, maskedDecay(decay, mask)); // param.mul_(1 − lr·wd)
  // exp_avg.lerp_(grad, 1 − β1) = fma(coeff, g − m, base)
  const m1 = fmaF32(lerpCoeff, op.Sub(g, m), (o.lerpSmallWeight ?? true) ? m : g, fma);
  // exp_avg_sq.mul_(β2).addcmul_(grad, grad, value=1 − β2) = fma((1 − β2)·g, g, v·β2)
  const v1 = fmaF32(op.Mul(oneMinusBeta2, g), g, op.Mul(v, beta2), fma);
  const denom = op.Add(op.Div(op.Sqrt(v1), bc2Sqrt), eps); // (v.sqrt() / bc2_sqrt).add_(eps)
  const p2 = op.Add(p1, op.Div(op.Mul(negStepSize, m1), denom)); // param.addcdiv_(m, denom, value=−step_size)
  return [p2, m1, v1];
}

function bnb32Body(p: Value, g: Value, m: Value, v: Value, mask: Value | undefined, hyper: Value): Value[] {
  const [beta1, oneMinusBeta1, beta2, oneMinusBeta2, epsC2, stepSize, decay] = splitHyper(hyper, 7) as [Value, Value, Value, Value, Value, Value, Value];
  const m1 = op.Add(op.Mul(m, beta1), op.Mul(oneMinusBeta1, g)); // s1·β1 + (1−β1)·g
  const v1 = op.Add(op.Mul(v, beta2), op.Mul(oneMinusBeta2, op.Mul(g, g))); // s2·β2 + (1−β2)·(g·g)
  const upd = op.Mul(stepSize, op.Div(m1, op.Add(op.Sqrt(v1), epsC2))); // step_size·(s1/(sqrt(s2) + eps·c2))
  const p1 = op.Mul(op.Add(p, upd), maskedDecay(decay, mask)); // then p·(1 − lr·wd)
  return [p1, m1, v1];
}

const cache = new Map<string, DefinedFunction>();

/** `(param, grad, exp_avg, exp_avg_sq[, wd_mask], hyper) → (param', exp_avg', exp_avg_sq')` for one n. */
export function adamwFunction(o: AdamwKernelOptions): DefinedFunction {
  const fma = o.math === 'torch' && (o.fma ?? true);
  const small = o.lerpSmallWeight ?? true;
  const tag = o.math === 'torch' ? `torch${fma ? '_fma' : ''}${small ? '' : '_lerpbig'}` : 'bnb32';
  const name = `AdamW_${tag}${o.mask ? '_masked' : ''}_n${o.n}`;
  let fn = cache.get(name);
  if (fn !== undefined) return fn;
  const vec = { dtype: 'float32' as const, shape: [o.n] };
  const inputs = [
    { name: 'param', ...vec },
    { name: 'grad', ...vec },
    { name: 'exp_avg', ...vec },
    { name: 'exp_avg_sq', ...vec },
    ...(o.mask ? [{ name: 'wd_mask', ...vec }] : []),
    { name: 'hyper', dtype: 'float32' as const, shape: [ADAMW_HYPER[o.math].length] },
  ];
  fn = defineFunction(
    { name, inputs, docString: `${o.math === 'torch' ? 'torch.optim.AdamW' : 'bitsandbytes 32-bit AdamW'} over ${o.n} elements; hyper = [${ADAMW_HYPER[o.math].join(', ')}]` },
    (_g, ins) => {
      const [p, g, m, v] = ins as [Value, Value, Value, Value];
      const mask = o.mask ? ins[4] : undefined;
      const hyper = ins[ins.length - 1]!;
      return o.math === 'torch' ? torchBody(p, g, m, v, mask, hyper, o) : bnb32Body(p, g, m, v, mask, hyper);
    },
  );
  cache.set(name, fn);
  return fn;
}

/**
 * A whole update graph around one call: inputs `param, grad, exp_avg, exp_avg_sq[, wd_mask], hyper`,
 * outputs `param_out, exp_avg_out, exp_avg_sq_out`.
 */
export function buildAdamwGraph(g: Graph, o: AdamwKernelOptions): void {
  const vec = [o.n];
  const ins = [g.input('param', 'float32', vec), g.input('grad', 'float32', vec), g.input('exp_avg', 'float32', vec), g.input('exp_avg_sq', 'float32', vec)];
  if (o.mask) ins.push(g.input('wd_mask', 'float32', vec));
  ins.push(g.input('hyper', 'float32', [ADAMW_HYPER[o.math].length]));
  const [p, m, v] = adamwFunction(o).call(g, ins) as [Value, Value, Value];
  g.output(p, 'param_out');
  g.output(m, 'exp_avg_out');
  g.output(v, 'exp_avg_sq_out');
}

/** A float32 [k] tensor of hyper values (what the session's `hyper` input takes). */
export function hyperTensor(h: Float32Array): Tensor<'float32'> {
  return new Tensor('float32', [h.length], h);
}
