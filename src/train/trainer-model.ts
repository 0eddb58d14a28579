// What the trainers need from a model beyond building graphs: writing trained values back, and saving.
// Both the base model (full fine-tuning) and a PEFT model (adapters only) provide it.

import { TsFinetuneError } from '../core/errors.js';
import type { ParamLayout, TrainableModel } from '../models/index.js';

export interface TrainerModel extends TrainableModel {
  /** Copy the flat trained values back into the model's own tensors. */
  loadTrainableValues(layout: ParamLayout, flat: Float32Array): void;
  /** The adapter (PEFT) or the whole model (full fine-tuning), in the Hugging Face layout. */
  savePretrained(dir: string): Promise<void>;
}

export function asTrainerModel(m: unknown): TrainerModel {
  const t = m as Partial<TrainerModel>;
  for (const k of ['buildLogits', 'trainableParams', 'trainableValues', 'loadTrainableValues', 'savePretrained'] as const) {
    if (typeof t?.[k] !== 'function') {
      throw new TsFinetuneError('INVALID_ARGUMENT', `Trainer: model lacks ${k}(); pass a model from AutoModelForCausalLM or getPeftModel`);
    }
  }
  return m as TrainerModel;
}
