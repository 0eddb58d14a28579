// The walkthrough's helpers around get_peft_model: `findAllLinearNames` (the QLoRA notebooks' helper that
// lists the linear module names to target) and `prepareModelForKbitTraining` (peft `utils/other.py`):
// freeze every base parameter, upcast fp16/bf16 parameters to fp32 (for frozen weights the graphs already
// compute in fp32, casting the 16-bit storage a 4-bit load keeps for embeddings, norms and lm_head; anything
// trained or merged is stored fp32, see models/float-weights.ts), and — for a model loaded in 4-bit, when
// asked — enable input grads and gradient checkpointing.
// Not here: the adapters (peft-model.ts).

import type { CausalLM } from '../models/causal-lm.js';
import { linearLeafNames } from './target-modules.js';

/**
 * Unique leaf names of the model's linear modules except the output head, in model order, e.g.
 * ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'].
 * @example
 * new LoraConfig({ r: 16, loraAlpha: 32, targetModules: findAllLinearNames(model) });
 */
export function findAllLinearNames(model: Pick<CausalLM, 'config'>): string[] {
  return linearLeafNames(model.config);
}

export interface PrepareKbitOptions {
  /** Default true, as peft. */
  useGradientCheckpointing?: boolean;
}

/**
 * peft's prepare_model_for_kbit_training: returns the same model, frozen, with gradient checkpointing and
 * input grads enabled when it holds 4-bit weights (peft does both only for k-bit models).
 * @example
 * const kbit = prepareModelForKbitTraining(model);
 */
export function prepareModelForKbitTraining<M extends CausalLM>(model: M, opts: PrepareKbitOptions = {}): M {
  model.requiresGrad = false;
  const loadedInKbit = model.quantized.size > 0;
  if (loadedInKbit && (opts.useGradientCheckpointing ?? true)) {
    model.enableInputRequireGrads();
    model.gradientCheckpointingEnable();
  }
  return model;
}
