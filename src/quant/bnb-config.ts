// BitsAndBytesConfig: how a model is quantised at load (QLoRA's 4-bit base weights), with transformers'
// field names in camelCase and its `quantization_config` JSON form for config.json.
// Not here: applying it to a model (src/models), the quantiser (quantize-4bit.ts). LLM.int8() 8-bit
// loading is not implemented: `loadIn8bit: true` is rejected, and the llm_int8_* fields are kept only so
// that configs round-trip.
// Follows transformers `utils/quantization_config.py` (BitsAndBytesConfig: defaults, post_init checks,
// to_dict); the JSON keys are written sorted, as in a saved config.json.

import { closestName, TsFinetuneError } from '../core/index.js';
import type { QuantType4bit } from './codebooks.js';

export type ComputeDType = 'float32' | 'bfloat16' | 'float16';
/** transformers accepts these for bnb_4bit_quant_storage; packed bytes are the same whatever the dtype. */
export type QuantStorage = 'uint8' | 'int8' | 'float16' | 'bfloat16' | 'float32' | 'float64';

export interface BitsAndBytesConfigInit {
  loadIn4bit?: boolean;
  /** LLM.int8(): not supported; true throws. */
  loadIn8bit?: boolean;
  /** Default 'fp4', as transformers (QLoRA recipes set 'nf4'). */
  bnb4bitQuantType?: QuantType4bit;
  /** Default 'float32'. */
  bnb4bitComputeDtype?: ComputeDType;
  /** Quantise the absmax values too (QLoRA's double quantisation). Default false. */
  bnb4bitUseDoubleQuant?: boolean;
  /** Default 'uint8'. */
  bnb4bitQuantStorage?: QuantStorage;
  /** Modules left in full precision (besides the ones bitsandbytes always skips, e.g. lm_head). Default null. */
  llmInt8SkipModules?: string[] | null;
  /** 8-bit only; kept for round-trips. Default 6. */
  llmInt8Threshold?: number;
  /** 8-bit only; kept for round-trips. Default false. */
  llmInt8EnableFp32CpuOffload?: boolean;
  /** 8-bit only; kept for round-trips. Default false. */
  llmInt8HasFp16Weight?: boolean;
}

/** The `quantization_config` object transformers writes into config.json. */
export interface BitsAndBytesConfigJSON {
  _load_in_4bit: boolean;
  _load_in_8bit: boolean;
  bnb_4bit_compute_dtype: ComputeDType;
  bnb_4bit_quant_storage: QuantStorage;
  bnb_4bit_quant_type: QuantType4bit;
  bnb_4bit_use_double_quant: boolean;
  llm_int8_enable_fp32_cpu_offload: boolean;
  llm_int8_has_fp16_weight: boolean;
  llm_int8_skip_modules: string[] | null;
  llm_int8_threshold: number;
  load_in_4bit: boolean;
  load_in_8bit: boolean;
  quant_method: 'bitsandbytes';
}

const INIT_KEYS: Record<keyof BitsAndBytesConfigInit, keyof BitsAndBytesConfigJSON> = {
  loadIn4bit: 'load_in_4bit',
  loadIn8bit: 'load_in_8bit',
  bnb4bitQuantType: 'bnb_4bit_quant_type',
  bnb4bitComputeDtype: 'bnb_4bit_compute_dtype',
  bnb4bitUseDoubleQuant: 'bnb_4bit_use_double_quant',
  bnb4bitQuantStorage: 'bnb_4bit_quant_storage',
  llmInt8SkipModules: 'llm_int8_skip_modules',
  llmInt8Threshold: 'llm_int8_threshold',
  llmInt8EnableFp32CpuOffload: 'llm_int8_enable_fp32_cpu_offload',
  llmInt8HasFp16Weight: 'llm_int8_has_fp16_weight',
};

const COMPUTE_DTYPES: readonly ComputeDType[] = ['float32', 'bfloat16', 'float16'];
const QUANT_STORAGES: readonly QuantStorage[] = ['uint8', 'int8', 'float16', 'bfloat16', 'float32', 'float64'];

function invalid(key: string, message: string, value: unknown): TsFinetuneError {
  return new TsFinetuneError('INVALID_CONFIG', `BitsAndBytesConfig.${key}: ${message}, got ${JSON.stringify(value)}`, { key, value });
}

function bool(key: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw invalid(key, 'must be a boolean', v);
  return v;
}

function oneOf<T extends string>(key: string, v: unknown, allowed: readonly T[], dflt: T): T {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw invalid(key, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`, v);
  }
  return v as T;
}

export class BitsAndBytesConfig {
  readonly loadIn4bit: boolean;
  readonly loadIn8bit: boolean;
  readonly bnb4bitQuantType: QuantType4bit;
  readonly bnb4bitComputeDtype: ComputeDType;
  readonly bnb4bitUseDoubleQuant: boolean;
  readonly bnb4bitQuantStorage: QuantStorage;
  readonly llmInt8SkipModules: readonly string[] | null;
  readonly llmInt8Threshold: number;
  readonly llmInt8EnableFp32CpuOffload: boolean;
  readonly llmInt8HasFp16Weight: boolean;
  /** Keys of a `fromJSON` input that this version does not know (ignored, as transformers ignores them). */
  readonly unusedKeys: readonly string[];

  constructor(init: BitsAndBytesConfigInit = {}) {
    const known = Object.keys(INIT_KEYS);
    for (const k of Object.keys(init)) {
      if (!known.includes(k)) {
        const guess = closestName(k, known);
        throw new TsFinetuneError(
          'UNKNOWN_CONFIG_KEY',
          `BitsAndBytesConfig: unknown option '${k}'${guess ? ` (did you mean '${guess}'?)` : ''}`,
          { key: k, suggestion: guess },
        );
      }
    }
    this.loadIn4bit = bool('loadIn4bit', init.loadIn4bit, false);
    this.loadIn8bit = bool('loadIn8bit', init.loadIn8bit, false);
    if (this.loadIn8bit) {
      throw new TsFinetuneError(
        'INVALID_CONFIG',
        this.loadIn4bit
          ? 'BitsAndBytesConfig: loadIn4bit and loadIn8bit are both true, but only one can be used at a time'
          : 'BitsAndBytesConfig.loadIn8bit: 8-bit (LLM.int8()) loading is not supported by ts-finetune; use loadIn4bit: true with bnb4bitQuantType: \'nf4\' (QLoRA)',
        { key: 'loadIn8bit', value: true },
      );
    }
    this.bnb4bitQuantType = oneOf('bnb4bitQuantType', init.bnb4bitQuantType, ['nf4', 'fp4'] as const, 'fp4');
    this.bnb4bitComputeDtype = oneOf('bnb4bitComputeDtype', init.bnb4bitComputeDtype, COMPUTE_DTYPES, 'float32');
    this.bnb4bitUseDoubleQuant = bool('bnb4bitUseDoubleQuant', init.bnb4bitUseDoubleQuant, false);
    this.bnb4bitQuantStorage = oneOf('bnb4bitQuantStorage', init.bnb4bitQuantStorage, QUANT_STORAGES, 'uint8');
    const skip = init.llmInt8SkipModules;
    if (skip !== undefined && skip !== null && !(Array.isArray(skip) && skip.every((s) => typeof s === 'string' && s !== ''))) {
      throw invalid('llmInt8SkipModules', 'must be a list of module names or null', skip);
    }
    this.llmInt8SkipModules = skip ? Object.freeze([...skip]) : null;
    const thr = init.llmInt8Threshold ?? 6;
    if (typeof thr !== 'number' || !Number.isFinite(thr)) throw invalid('llmInt8Threshold', 'must be a finite number', thr);
    this.llmInt8Threshold = thr;
    this.llmInt8EnableFp32CpuOffload = bool('llmInt8EnableFp32CpuOffload', init.llmInt8EnableFp32CpuOffload, false);
    this.llmInt8HasFp16Weight = bool('llmInt8HasFp16Weight', init.llmInt8HasFp16Weight, false);
    this.unusedKeys = [];
  }

  /** True when the config asks for any quantisation (today: 4-bit). */
  get isQuantized(): boolean {
    return this.loadIn4bit;
  }

  /**
   * Whether `moduleName` (e.g. `model.layers.0.mlp.down_proj`) stays unquantised because of
   * llmInt8SkipModules: an entry equal to the name, a dotted prefix of it, a dotted component run inside it,
   * or its dotted suffix (the union of what transformers versions match, without regexes).
   */
  skipsModule(moduleName: string): boolean {
    if (!this.llmInt8SkipModules) return false;
    return this.llmInt8SkipModules.some(
      (k) => moduleName === k || moduleName.startsWith(`${k}.`) || moduleName.endsWith(`.${k}`) || moduleName.includes(`.${k}.`),
    );
  }

  /** transformers' `quantization_config` (snake_case, sorted keys). */
  toJSON(): BitsAndBytesConfigJSON {
    return {
      _load_in_4bit: this.loadIn4bit,
      _load_in_8bit: this.loadIn8bit,
      bnb_4bit_compute_dtype: this.bnb4bitComputeDtype,
      bnb_4bit_quant_storage: this.bnb4bitQuantStorage,
      bnb_4bit_quant_type: this.bnb4bitQuantType,
      bnb_4bit_use_double_quant: this.bnb4bitUseDoubleQuant,
      llm_int8_enable_fp32_cpu_offload: this.llmInt8EnableFp32CpuOffload,
      llm_int8_has_fp16_weight: this.llmInt8HasFp16Weight,
      llm_int8_skip_modules: this.llmInt8SkipModules ? [...this.llmInt8SkipModules] : null,
      llm_int8_threshold: this.llmInt8Threshold,
      load_in_4bit: this.loadIn4bit,
      load_in_8bit: this.loadIn8bit,
      quant_method: 'bitsandbytes',
    };
  }

  /** Read a `quantization_config` object (from config.json or `toJSON`). Unknown keys land in `unusedKeys`. */
  static fromJSON(json: unknown): BitsAndBytesConfig {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new TsFinetuneError('INVALID_CONFIG', `quantization_config must be a JSON object, got ${JSON.stringify(json)}`);
    }
    const obj = json as Record<string, unknown>;
    if (obj['quant_method'] !== undefined && obj['quant_method'] !== 'bitsandbytes') {
      throw new TsFinetuneError(
        'INVALID_CONFIG',
        `quantization_config.quant_method is ${JSON.stringify(obj['quant_method'])}; only 'bitsandbytes' is supported`,
        { key: 'quant_method', value: obj['quant_method'] },
      );
    }
    const init: Record<string, unknown> = {};
    const bySnake = new Map(Object.entries(INIT_KEYS).map(([camel, snake]) => [snake as string, camel]));
    const unused: string[] = [];
    for (const [k, v] of Object.entries(obj)) {
      const camel = bySnake.get(k);
      if (camel !== undefined) init[camel] = v;
      else if (k !== 'quant_method' && k !== '_load_in_4bit' && k !== '_load_in_8bit') unused.push(k);
    }
    // transformers keeps the public flags in _load_in_* and writes both; older configs have only one form.
    for (const bits of ['4', '8'] as const) {
      const pub = obj[`load_in_${bits}bit`];
      const priv = obj[`_load_in_${bits}bit`];
      if (priv !== undefined && pub !== undefined && priv !== pub) {
        throw new TsFinetuneError('INVALID_CONFIG', `quantization_config: load_in_${bits}bit and _load_in_${bits}bit disagree`, {
          key: `load_in_${bits}bit`,
        });
      }
      if (pub === undefined && priv !== undefined) init[`loadIn${bits}bit`] = priv;
    }
    let cfg: BitsAndBytesConfig;
    try {
      cfg = new BitsAndBytesConfig(init as BitsAndBytesConfigInit);
    } catch (e) {
      // Re-key the message to the JSON name the user will find in config.json.
      if (e instanceof TsFinetuneError && typeof e.details['key'] === 'string') {
        const snake = INIT_KEYS[e.details['key'] as keyof BitsAndBytesConfigInit];
        if (snake) {
          throw new TsFinetuneError(e.code, e.message.replace(`BitsAndBytesConfig.${e.details['key']}`, `quantization_config.${snake}`), {
            ...e.details,
            key: snake,
          });
        }
      }
      throw e;
    }
    (cfg as { unusedKeys: readonly string[] }).unusedKeys = Object.freeze(unused);
    return cfg;
  }
}
