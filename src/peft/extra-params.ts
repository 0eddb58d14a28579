// What a LoRA config trains besides the adapters: biases (`bias: 'all' | 'lora_only'`) and full copies of the
// `modulesToSave` modules, with their peft names. Follows peft `tuners/lora/model.py`
// (_mark_only_adapters_as_trainable) and `utils/other.py` (ModulesToSaveWrapper: a trainable deep copy,
// saved as `base_model.model.<module>.<param>`).
// Not here: the adapter tensors themselves (peft-model.ts).

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { CausalLMConfig } from '../models/config.js';
import type { LoraConfig } from './lora-config.js';
import { loraKeys } from './lora-layer.js';
import { selectModulesToSave } from './target-modules.js';

/** A bias trained with the adapter: the base's own tensor (peft trains base_layer.bias in place). */
export interface BiasParam {
  name: string; // peft key: …<module>.base_layer.bias (adapted module) or …<module>.bias
  hfName: string; // e.g. model.layers.0.self_attn.q_proj.bias
}

/** A modules_to_save copy of one HF parameter. */
export interface SavedModuleParam {
  name: string; // peft key: base_model.model.<hf name>
  hfName: string;
  tensor: Tensor<'float32'>;
}

/** The biases `config.bias` trains: every bias ('all') or those of adapted modules ('lora_only'). */
export function selectBiasParams(config: LoraConfig, cfg: CausalLMConfig, denseNames: Iterable<string>, adaptedModules: readonly string[]): BiasParam[] {
  if (config.bias === 'none') return [];
  const adapted = new Set(adaptedModules);
  const saved = selectModulesToSave(config, cfg);
  const out: BiasParam[] = [];
  for (const hfName of denseNames) {
    if (!hfName.endsWith('.bias')) continue;
    const module = hfName.slice(0, -'.bias'.length);
    if (saved.includes(module)) continue; // trained through its modules_to_save copy
    if (adapted.has(module)) out.push({ name: loraKeys(module).bias, hfName });
    else if (config.bias === 'all') out.push({ name: `base_model.model.${hfName}`, hfName });
  }
  return out;
}

/** Trainable copies of every parameter of the modules_to_save modules (fp only). */
export function copyModulesToSave(config: LoraConfig, cfg: CausalLMConfig, model: CausalLM): SavedModuleParam[] {
  const out: SavedModuleParam[] = [];
  for (const module of selectModulesToSave(config, cfg)) {
    const names = [...model.dense.keys()].filter((k) => k.startsWith(`${module}.`));
    if ([...model.quantized.keys()].some((k) => k.startsWith(`${module}.`))) {
      throw new TsFinetuneError('PEFT_ERROR', `modulesToSave: '${module}' is stored 4-bit; a 4-bit module cannot be trained fully`, { module });
    }
    if (names.length === 0) {
      const why = module === 'lm_head' && cfg.tieWordEmbeddings ? ' (its weight is tied to model.embed_tokens: save embed_tokens instead)' : '';
      throw new TsFinetuneError('PEFT_ERROR', `modulesToSave: '${module}' has no parameters of its own${why}`, { module });
    }
    for (const hfName of names) {
      const t = model.dense.get(hfName)!;
      out.push({ name: `base_model.model.${hfName}`, hfName, tensor: new Tensor('float32', t.dims, Float32Array.from(t.data)) });
    }
  }
  return out;
}
