// Merging adapters into the base model's host weights (peft LoraModel.merge_and_unload): for every adapted
// linear W ← W + s·B@A (DoRA: rows rescaled to the magnitude), a 4-bit weight dequantised first and kept
// in fp32 afterwards, with peft's rounding warning. Also reading a linear's fp32 weight on the host.
// Follows peft `tuners/lora/layer.py` (Linear.merge), `tuners/lora/bnb.py` (Linear4bit.merge).
// Not here: the arithmetic (lora-math.ts), the wrapper's bookkeeping (peft-model.ts).

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import type { CausalLM } from '../models/causal-lm.js';
import { loraKeys, type LoraModuleSpec } from './lora-layer.js';
import { mergeWeight } from './lora-math.js';

/** A 4-bit linear that can give back its fp32 weight (models/quantized-linear.ts). */
interface Dequantizable {
  dequantize(): Tensor<'float32'>;
}

function hasDequantize(q: unknown): q is Dequantizable {
  return typeof (q as Partial<Dequantizable>).dequantize === 'function';
}

/** The fp32 weight [out, in] of linear `module` (dequantised when stored 4-bit). */
export function hostLinearWeight(model: CausalLM, module: string): Float32Array {
  const name = `${module}.weight`;
  const d = model.dense.get(name);
  if (d) return d.data;
  const q = model.quantized.get(name);
  if (q && hasDequantize(q)) return q.dequantize().data;
  throw new TsFinetuneError('MISSING_TENSOR', `Cannot read the weight of ${module} on the host (${q ? 'its 4-bit form cannot be dequantised' : 'missing'})`, {
    tensor: name,
  });
}

/** Merge every adapter of `specs` (tensors in `weights`, by peft key) into `base`, in place. */
export function mergeAdapters(base: CausalLM, specs: readonly LoraModuleSpec[], weights: ReadonlyMap<string, Tensor<'float32'>>, safeMerge: boolean): void {
  let warned4bit = false;
  for (const s of specs) {
    const k = loraKeys(s.module);
    const name = `${s.module}.weight`;
    const fromQuant = !base.dense.has(name);
    if (fromQuant && !warned4bit) {
      console.warn('[ts-finetune] Merge lora module to 4-bit linear may get different generations due to rounding errors.');
      warned4bit = true;
    }
    const dims = { r: s.r, inF: s.inFeatures, outF: s.outFeatures, scaling: s.scaling };
    const mag = s.dora ? weights.get(k.magnitude)!.data : undefined;
    const merged = mergeWeight(hostLinearWeight(base, s.module), weights.get(k.A)!.data, weights.get(k.B)!.data, dims, mag);
    if (safeMerge && merged.some((v) => !Number.isFinite(v))) {
      throw new TsFinetuneError('PEFT_ERROR', `NaNs detected in the merged weights. The adapter ${s.module} seems to be broken`, { module: s.module });
    }
    base.dense.set(name, new Tensor('float32', [s.outFeatures, s.inFeatures], merged));
    if (fromQuant) base.quantized.delete(name);
  }
  if (base.quantized.size === 0) base.quantizationConfig = undefined;
}
