// LoraConfig: PEFT's LoRA configuration with its defaults and checks, in camelCase, and its
// adapter_config.json form (snake_case, every field peft 0.17 writes) in both directions.
// Follows peft `tuners/lora/config.py` (LoraConfig.__post_init__) and `config.py` (PeftConfigMixin.to_dict /
// save_pretrained: sets become sorted lists, inference_mode is written true).
// Not here: which modules a config selects (target-modules.ts), the model wrapper (peft-model.ts).

import { closestName, TsFinetuneError } from '../core/errors.js';
import { PyFloat, pythonJsonDumps } from './py-json.js';

export type LoraBias = 'none' | 'all' | 'lora_only';
export type InitLoraWeights = boolean | 'gaussian';
/** peft's TaskType values. */
export const TASK_TYPES = ['SEQ_CLS', 'SEQ_2_SEQ_LM', 'CAUSAL_LM', 'TOKEN_CLS', 'QUESTION_ANS', 'FEATURE_EXTRACTION'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** The string peft accepts for "every linear layer except the output head". */
export const ALL_LINEAR = 'all-linear';
/** The peft version whose adapter_config.json layout we write (the fixtures' format). */
export const PEFT_FORMAT_VERSION = '0.17.1';

export interface LoraConfigInit {
  /** LoRA rank (default 8). */
  r?: number;
  /** Scaling numerator: scaling = loraAlpha / r (default 8). */
  loraAlpha?: number;
  /** Dropout on the LoRA input while training (default 0). */
  loraDropout?: number;
  /**
   * Modules to adapt. A list matches a module whose name equals an entry or ends with `.entry`; a string is
   * a regex that must match the whole module name; 'all-linear' = every linear but lm_head.
   * Default for llama / mistral / qwen2 / qwen3: ['q_proj', 'v_proj'].
   */
  targetModules?: readonly string[] | string;
  /** Modules never adapted (same matching rules as targetModules). */
  excludeModules?: readonly string[] | string;
  /** Which biases train: 'none' (default), 'all' (every bias), 'lora_only' (biases of adapted modules). */
  bias?: LoraBias;
  /** rsLoRA: scaling = loraAlpha / sqrt(r). */
  useRslora?: boolean;
  /** DoRA: weight-decomposed LoRA with a trainable magnitude per output feature. */
  useDora?: boolean;
  /** true: A kaiming-uniform, B = 0 (default); 'gaussian': A ~ N(0, (1/r)²), B = 0; false: A and B random. */
  initLoraWeights?: InitLoraWeights;
  /** Only adapt these layer indices (with list targetModules). */
  layersToTransform?: number | readonly number[];
  /** Name of the layer list the indices refer to (e.g. 'layers'). */
  layersPattern?: string | readonly string[];
  /** Per-module rank overrides: { regex: r }, matched against the end of the module name. */
  rankPattern?: Readonly<Record<string, number>>;
  /** Per-module alpha overrides: { regex: alpha }. */
  alphaPattern?: Readonly<Record<string, number>>;
  /** Modules trained fully (a copy) and saved with the adapter, e.g. ['lm_head']. */
  modulesToSave?: readonly string[];
  taskType?: TaskType;
  /** Conv1D layout (GPT-2 style); Llama-family linears are nn.Linear, so this must stay false. */
  fanInFanOut?: boolean;
  inferenceMode?: boolean;
  baseModelNameOrPath?: string;
  revision?: string;
}

const KEYS = [
  'r', 'loraAlpha', 'loraDropout', 'targetModules', 'excludeModules', 'bias', 'useRslora', 'useDora', 'initLoraWeights',
  'layersToTransform', 'layersPattern', 'rankPattern', 'alphaPattern', 'modulesToSave', 'taskType', 'fanInFanOut',
  'inferenceMode', 'baseModelNameOrPath', 'revision',
] as const satisfies readonly (keyof LoraConfigInit)[];

/** adapter_config.json keys peft 0.17 writes that we read but whose features we do not implement: their neutral values. */
const NEUTRAL_FIELDS: Readonly<Record<string, (v: unknown) => boolean>> = {
  auto_mapping: () => true,
  corda_config: (v) => v === null,
  eva_config: (v) => v === null,
  layer_replication: (v) => v === null,
  loftq_config: (v) => v === null || (typeof v === 'object' && Object.keys(v as object).length === 0),
  lora_bias: (v) => v === false,
  megatron_config: (v) => v === null,
  megatron_core: () => true,
  qalora_group_size: () => true,
  target_parameters: (v) => v === null || (Array.isArray(v) && v.length === 0),
  trainable_token_indices: (v) => v === null,
  use_qalora: (v) => v === false,
  peft_version: () => true,
  peft_type: () => true,
};

function fail(msg: string, details: Record<string, unknown> = {}): never {
  throw new TsFinetuneError('INVALID_CONFIG', `LoraConfig: ${msg}`, details);
}

function stringList(v: unknown, field: string): string[] | string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return [...v] as string[];
  return fail(`${field} must be a string or a list of strings, got ${JSON.stringify(v)}`, { field });
}

function numberRecord(v: unknown, field: string, positiveInt: boolean): Record<string, number> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) fail(`${field} must be an object { pattern: number }`, { field });
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x !== 'number' || !Number.isFinite(x) || (positiveInt && (!Number.isInteger(x) || x <= 0))) {
      fail(`${field}['${k}'] must be ${positiveInt ? 'a positive integer' : 'a number'}, got ${JSON.stringify(x)}`, { field, key: k });
    }
    out[k] = x;
  }
  return out;
}

export class LoraConfig {
  readonly peftType = 'LORA' as const;
  r: number;
  loraAlpha: number;
  loraDropout: number;
  targetModules: string[] | string | undefined;
  excludeModules: string[] | string | undefined;
  bias: LoraBias;
  useRslora: boolean;
  useDora: boolean;
  initLoraWeights: InitLoraWeights;
  layersToTransform: number | number[] | undefined;
  layersPattern: string | string[] | undefined;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  modulesToSave: string[] | undefined;
  taskType: TaskType | undefined;
  fanInFanOut: boolean;
  inferenceMode: boolean;
  baseModelNameOrPath: string | undefined;
  revision: string | undefined;

  /**
   * @example
   * const config = new LoraConfig({ r: 16, loraAlpha: 32, targetModules: 'all-linear', loraDropout: 0.05, taskType: 'CAUSAL_LM' });
   */
  constructor(init: LoraConfigInit = {}) {
    for (const k of Object.keys(init)) {
      if (!(KEYS as readonly string[]).includes(k)) {
        const near = closestName(k, KEYS);
        throw new TsFinetuneError('UNKNOWN_CONFIG_KEY', `LoraConfig: unknown option '${k}'${near ? ` (did you mean '${near}'?)` : ''}`, {
          key: k,
          suggestion: near,
        });
      }
    }
    this.r = init.r ?? 8;
    this.loraAlpha = init.loraAlpha ?? 8;
    this.loraDropout = init.loraDropout ?? 0;
    this.targetModules = stringList(init.targetModules, 'targetModules');
    this.excludeModules = stringList(init.excludeModules, 'excludeModules');
    this.bias = init.bias ?? 'none';
    this.useRslora = init.useRslora ?? false;
    this.useDora = init.useDora ?? false;
    this.initLoraWeights = init.initLoraWeights ?? true;
    this.layersToTransform = typeof init.layersToTransform === 'number' ? init.layersToTransform : init.layersToTransform ? [...init.layersToTransform] : undefined;
    this.layersPattern = typeof init.layersPattern === 'string' ? init.layersPattern : init.layersPattern ? [...init.layersPattern] : undefined;
    this.rankPattern = numberRecord(init.rankPattern, 'rankPattern', true);
    this.alphaPattern = numberRecord(init.alphaPattern, 'alphaPattern', false);
    this.modulesToSave = init.modulesToSave ? [...init.modulesToSave] : undefined;
    this.taskType = init.taskType;
    this.fanInFanOut = init.fanInFanOut ?? false;
    this.inferenceMode = init.inferenceMode ?? false;
    this.baseModelNameOrPath = init.baseModelNameOrPath;
    this.revision = init.revision;
    this.validate();
  }

  /** peft's __post_init__ checks, with the field named. */
  validate(): void {
    if (typeof this.r !== 'number' || !Number.isInteger(this.r) || this.r <= 0) {
      fail(`\`r\` should be a positive integer value but the value passed is ${this.r}`, { field: 'r', value: this.r });
    }
    if (typeof this.loraAlpha !== 'number' || !Number.isFinite(this.loraAlpha)) fail(`loraAlpha must be a finite number, got ${this.loraAlpha}`);
    if (typeof this.loraDropout !== 'number' || !(this.loraDropout >= 0 && this.loraDropout < 1)) {
      fail(`loraDropout must be in [0, 1), got ${this.loraDropout}`, { field: 'loraDropout' });
    }
    if (!['none', 'all', 'lora_only'].includes(this.bias)) fail(`bias must be 'none', 'all' or 'lora_only', got '${String(this.bias)}'`);
    if (this.initLoraWeights !== true && this.initLoraWeights !== false && this.initLoraWeights !== 'gaussian') {
      throw new TsFinetuneError(
        'PEFT_ERROR',
        `LoraConfig: initLoraWeights '${String(this.initLoraWeights)}' is not supported (supported: true, false, 'gaussian'; PiSSA, OLoRA, LoftQ, EVA and CorDA inits are not implemented)`,
        { field: 'initLoraWeights' },
      );
    }
    if (this.taskType !== undefined && !(TASK_TYPES as readonly string[]).includes(this.taskType)) {
      fail(`taskType '${this.taskType}' is not one of ${TASK_TYPES.join(', ')}`, { field: 'taskType' });
    }
    const lt = this.layersToTransform;
    if (lt !== undefined) {
      const list = typeof lt === 'number' ? [lt] : lt;
      if (list.some((i) => !Number.isInteger(i) || i < 0)) fail(`layersToTransform must hold non-negative layer indices, got ${JSON.stringify(lt)}`);
      if (typeof this.targetModules === 'string') fail('`layersToTransform` cannot be used when `targetModules` is a str (a regex).');
    }
    if (this.layersPattern !== undefined) {
      if (typeof this.targetModules === 'string') fail('`layersPattern` cannot be used when `targetModules` is a str (a regex).');
      if (lt === undefined) fail('When `layersPattern` is specified, `layersToTransform` must also be specified.');
    }
    if (Array.isArray(this.targetModules) && this.targetModules.length === 0) fail('targetModules is an empty list: nothing would be adapted');
    if (this.fanInFanOut) {
      // peft warns and resets it for nn.Linear; every linear we build is nn.Linear.
      console.warn('[ts-finetune] fan_in_fan_out is set to True but the target modules are `torch.nn.Linear`. Setting fan_in_fan_out to False.');
      this.fanInFanOut = false;
    }
  }

  /** The scaling of a module with rank r and alpha (rsLoRA: alpha / √r). */
  scaling(r = this.r, alpha = this.loraAlpha): number {
    return this.useRslora ? alpha / Math.sqrt(r) : alpha / r;
  }

  /** A deep copy with `over` applied. */
  with(over: Partial<LoraConfigInit>): LoraConfig {
    return new LoraConfig({ ...this.toInit(), ...over });
  }

  toInit(): LoraConfigInit {
    const o: Record<string, unknown> = {};
    for (const k of KEYS) {
      const v = (this as unknown as Record<string, unknown>)[k];
      if (v !== undefined) o[k] = Array.isArray(v) ? [...(v as unknown[])] : v && typeof v === 'object' ? { ...(v as object) } : v;
    }
    delete o.fanInFanOut; // already reset by validate(); re-passing false is harmless but noisy
    return o as LoraConfigInit;
  }

  /** adapter_config.json contents (snake_case; lists from sets sorted as peft writes them). */
  toJSON(): Record<string, unknown> {
    const setLike = (v: string[] | string | undefined): string[] | string | null =>
      v === undefined ? null : typeof v === 'string' ? v : [...new Set(v)].sort();
    return {
      alpha_pattern: { ...this.alphaPattern },
      auto_mapping: null,
      base_model_name_or_path: this.baseModelNameOrPath ?? null,
      bias: this.bias,
      corda_config: null,
      eva_config: null,
      exclude_modules: setLike(this.excludeModules),
      fan_in_fan_out: this.fanInFanOut,
      inference_mode: this.inferenceMode,
      init_lora_weights: this.initLoraWeights,
      layer_replication: null,
      layers_pattern: this.layersPattern ?? null,
      layers_to_transform: this.layersToTransform ?? null,
      loftq_config: {},
      lora_alpha: this.loraAlpha,
      lora_bias: false,
      lora_dropout: new PyFloat(this.loraDropout),
      megatron_config: null,
      megatron_core: 'megatron.core',
      modules_to_save: this.modulesToSave ?? null,
      peft_type: 'LORA',
      peft_version: PEFT_FORMAT_VERSION,
      qalora_group_size: 16,
      r: this.r,
      rank_pattern: { ...this.rankPattern },
      revision: this.revision ?? null,
      target_modules: setLike(this.targetModules),
      target_parameters: null,
      task_type: this.taskType ?? null,
      trainable_token_indices: null,
      use_dora: this.useDora,
      use_qalora: false,
      use_rslora: this.useRslora,
    };
  }

  /** The file text peft writes (json.dumps(indent=2, sort_keys=True), no trailing newline). */
  toJSONString(): string {
    return pythonJsonDumps(this.toJSON());
  }

  /**
   * Read an adapter_config.json object. Fields of peft features we do not implement are accepted at their
   * neutral values and refused otherwise; unknown fields are ignored with a warning, as peft does.
   */
  static fromJSON(json: Record<string, unknown>, file = 'adapter_config.json'): LoraConfig {
    if (json.peft_type !== 'LORA') {
      throw new TsFinetuneError('PEFT_ERROR', `${file}: peft_type is ${JSON.stringify(json.peft_type)}; only LoRA adapters ("LORA") are supported`, {
        file,
        peftType: json.peft_type,
      });
    }
    const map: Record<string, keyof LoraConfigInit> = {
      r: 'r', lora_alpha: 'loraAlpha', lora_dropout: 'loraDropout', target_modules: 'targetModules', exclude_modules: 'excludeModules',
      bias: 'bias', use_rslora: 'useRslora', use_dora: 'useDora', init_lora_weights: 'initLoraWeights',
      layers_to_transform: 'layersToTransform', layers_pattern: 'layersPattern', rank_pattern: 'rankPattern',
      alpha_pattern: 'alphaPattern', modules_to_save: 'modulesToSave', task_type: 'taskType', fan_in_fan_out: 'fanInFanOut',
      inference_mode: 'inferenceMode', base_model_name_or_path: 'baseModelNameOrPath', revision: 'revision',
    };
    const init: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(json)) {
      const camel = map[k];
      if (camel) {
        if (v !== null && v !== undefined) init[camel] = v;
        continue;
      }
      const neutral = NEUTRAL_FIELDS[k];
      if (neutral) {
        if (!neutral(v)) {
          throw new TsFinetuneError('PEFT_ERROR', `${file}: '${k}' = ${JSON.stringify(v)} uses a peft feature ts-finetune does not implement`, { file, key: k });
        }
        continue;
      }
      const trivial = v === null || v === false || (typeof v === 'object' && Object.keys(v as object).length === 0);
      if (!trivial) console.warn(`[ts-finetune] ${file}: unknown field '${k}' is ignored`);
    }
    try {
      return new LoraConfig(init as LoraConfigInit);
    } catch (e) {
      if (e instanceof TsFinetuneError) throw new TsFinetuneError(e.code, `${file}: ${e.message}`, { ...e.details, file }, { cause: e });
      throw e;
    }
  }
}
