// Which modules a LoraConfig adapts: the model's named modules (as torch's named_modules() lists them for
// the HF Llama-family classes), PEFT's matching rules, and the per-module rank / alpha from the patterns.
// Follows peft `tuners/tuners_utils.py` (check_target_module_exists, _maybe_include_all_linear_layers,
// _check_exclude_module) and `utils/other.py` / `tuners/lora/model.py` (get_pattern_key for rank_pattern).
// Not here: building the adapters (lora-layer.ts), the wrapper (peft-model.ts).

import { TsFinetuneError } from '../core/errors.js';
import { linearModuleNames, type CausalLMConfig, type ModelType } from '../models/config.js';
import { ALL_LINEAR, type LoraConfig } from './lora-config.js';

export type ModuleKind = 'linear' | 'tied-linear' | 'embedding' | 'norm' | 'container' | 'other';

export interface NamedModule {
  name: string;
  kind: ModuleKind;
}

/** peft's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING for the families we build. */
export const DEFAULT_TARGET_MODULES: Readonly<Record<ModelType, readonly string[]>> = {
  llama: ['q_proj', 'v_proj'],
  mistral: ['q_proj', 'v_proj'],
  qwen2: ['q_proj', 'v_proj'],
  qwen3: ['q_proj', 'v_proj'],
};

/** Every named module of the HF model, in named_modules() order (the root '' omitted). */
export function namedModules(cfg: CausalLMConfig): NamedModule[] {
  const out: NamedModule[] = [
    { name: 'model', kind: 'container' },
    { name: 'model.embed_tokens', kind: 'embedding' },
    { name: 'model.layers', kind: 'container' },
  ];
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    out.push({ name: p, kind: 'container' }, { name: `${p}.self_attn`, kind: 'container' });
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) out.push({ name: `${p}.self_attn.${n}`, kind: 'linear' });
    if (cfg.qkNorm) out.push({ name: `${p}.self_attn.q_norm`, kind: 'norm' }, { name: `${p}.self_attn.k_norm`, kind: 'norm' });
    out.push({ name: `${p}.mlp`, kind: 'container' });
    for (const n of ['gate_proj', 'up_proj', 'down_proj']) out.push({ name: `${p}.mlp.${n}`, kind: 'linear' });
    out.push({ name: `${p}.mlp.act_fn`, kind: 'other' });
    out.push({ name: `${p}.input_layernorm`, kind: 'norm' }, { name: `${p}.post_attention_layernorm`, kind: 'norm' });
  }
  out.push({ name: 'model.norm', kind: 'norm' }, { name: 'model.rotary_emb', kind: 'other' });
  out.push({ name: 'lm_head', kind: cfg.tieWordEmbeddings ? 'tied-linear' : 'linear' });
  return out;
}

/** Leaf names of the linear modules without the output head, in model order (the walkthrough helper). */
export function linearLeafNames(cfg: CausalLMConfig): string[] {
  const names: string[] = [];
  for (const full of linearModuleNames(cfg)) {
    if (full === 'lm_head') continue;
    const leaf = full.slice(full.lastIndexOf('.') + 1);
    if (!names.includes(leaf)) names.push(leaf);
  }
  return names;
}

function pyFullMatch(pattern: string, key: string): boolean {
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${pattern})$`);
  } catch (e) {
    throw new TsFinetuneError('INVALID_CONFIG', `LoraConfig: '${pattern}' is not a valid regular expression: ${(e as Error).message}`);
  }
  return re.test(key);
}

function listMatch(list: readonly string[], key: string): boolean {
  return list.includes(key) || list.some((t) => key.endsWith(`.${t}`));
}

/** peft check_target_module_exists, for one module name (relative to the base model). */
export function isTargeted(config: LoraConfig, targets: readonly string[] | string, key: string): boolean {
  if (typeof targets === 'string') return pyFullMatch(targets, key);
  if (targets.includes(key)) return true;
  if (!targets.some((t) => key.endsWith(`.${t}`))) return false;
  const idx = config.layersToTransform;
  if (idx === undefined || (Array.isArray(idx) && idx.length === 0)) return true;
  let m: RegExpExecArray | null = null;
  const patterns = config.layersPattern === undefined ? [] : typeof config.layersPattern === 'string' ? [config.layersPattern] : config.layersPattern;
  if (patterns.length === 0) m = /^.*\.[^.]*\.(\d+)\./.exec(key);
  else {
    for (const p of patterns) {
      m = new RegExp(`^.*\\.${p}\\.(\\d+)\\.`).exec(key);
      if (m) break;
    }
  }
  if (!m) return false;
  const layer = Number(m[1]);
  return typeof idx === 'number' ? layer === idx : idx.includes(layer);
}

function isExcluded(config: LoraConfig, key: string): boolean {
  const ex = config.excludeModules;
  if (ex === undefined) return false;
  return typeof ex === 'string' ? pyFullMatch(ex, key) : listMatch(ex, key);
}

/** The target list a config resolves to on this model: 'all-linear' and the per-family default expanded. */
export function resolveTargetModules(config: LoraConfig, cfg: CausalLMConfig): string[] | string {
  const t = config.targetModules;
  if (t === undefined) return [...DEFAULT_TARGET_MODULES[cfg.modelType]];
  if (typeof t === 'string' && t.toLowerCase() === ALL_LINEAR) return linearLeafNames(cfg);
  return t;
}

/**
 * Module paths the config adapts, in model order. Throws when nothing matches (listing the linear modules)
 * or when a match is not a Linear layer we can adapt.
 */
export function selectTargetModules(config: LoraConfig, cfg: CausalLMConfig, targets = resolveTargetModules(config, cfg)): string[] {
  const saved = config.modulesToSave ?? [];
  const out: string[] = [];
  for (const m of namedModules(cfg)) {
    if (!isTargeted(config, targets, m.name) || isExcluded(config, m.name)) continue;
    if (saved.length && listMatch(saved, m.name)) continue; // modules_to_save wins, as peft skips them
    if (m.kind === 'linear') {
      out.push(m.name);
      continue;
    }
    const why =
      m.kind === 'tied-linear'
        ? `'${m.name}' shares its weight with model.embed_tokens (tie_word_embeddings); LoRA on a tied output head is not supported`
        : m.kind === 'embedding'
          ? `'${m.name}' is an Embedding; LoRA on embeddings is not supported (use modulesToSave to train it fully)`
          : `'${m.name}' is not a Linear layer (${m.kind})`;
    throw new TsFinetuneError('PEFT_ERROR', `Target module ${why}. Currently only Linear layers can be adapted: ${linearModuleNames(cfg).join(', ')}`, {
      module: m.name,
    });
  }
  if (out.length === 0) {
    const shown = typeof targets === 'string' ? `'${targets}'` : `[${targets.map((s) => `'${s}'`).join(', ')}]`;
    const layers = config.layersToTransform !== undefined ? ` with layersToTransform ${JSON.stringify(config.layersToTransform)}` : '';
    throw new TsFinetuneError(
      'PEFT_ERROR',
      `Target modules ${shown}${layers} not found in the base model (${cfg.modelType}, ${cfg.numHiddenLayers} layers). ` +
        `Its linear modules are: ${linearLeafNames(cfg).join(', ')}${cfg.tieWordEmbeddings ? '' : ', lm_head'} ` +
        `(full names like ${linearModuleNames(cfg)[0] ?? 'none'}).`,
      { targets, linearModules: linearModuleNames(cfg) },
    );
  }
  return out;
}

/** Module paths matched by modules_to_save (peft ModulesToSaveWrapper targets), in model order. */
export function selectModulesToSave(config: LoraConfig, cfg: CausalLMConfig): string[] {
  const saved = config.modulesToSave ?? [];
  if (saved.length === 0) return [];
  const mods = namedModules(cfg);
  const out = mods.filter((m) => listMatch(saved, m.name)).map((m) => m.name);
  for (const s of saved) {
    if (!mods.some((m) => m.name === s || m.name.endsWith(`.${s}`))) {
      throw new TsFinetuneError('PEFT_ERROR', `modulesToSave: no module named '${s}' in the base model (${cfg.modelType})`, { module: s });
    }
  }
  return out;
}

/** peft get_pattern_key: the first pattern key with re.match(rf"(.*\.)?({key})$", module). */
export function patternValue(patterns: Readonly<Record<string, number>>, module: string, dflt: number): number {
  for (const [key, value] of Object.entries(patterns)) {
    if (new RegExp(`^(.*\\.)?(${key})$`).test(module)) return value;
  }
  return dflt;
}
