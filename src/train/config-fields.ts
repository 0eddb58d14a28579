// The machinery behind TrainingArguments / SFTConfig / DPOConfig / ORPOConfig: one typed table per config
// class says, for every field, its default and how a value is checked; from that table we get defaults,
// type/range errors that name the key, unknown-key errors that suggest the close name, the Python
// (snake_case) key of every field, and the snake_case JSON form HF writes as training_args.json.
// Not here: the fields themselves (training-args.ts, sft-config.ts, …) or cross-field rules.
// Follows transformers' `HfArgumentParser.parse_dict` + dataclass `__post_init__` validation, made strict.

import { TsFinetuneError, closestName } from '../core/errors.js';

/** Checks one value and returns it normalised (e.g. '2e-4' → 2e-4, an alias → its canonical name). */
export type FieldCheck<T> = (value: unknown, key: string) => T;

export interface FieldSpec<T> {
  readonly default: T;
  readonly check: FieldCheck<T>;
  /** Python name when it is not the mechanical snake_case of the camelCase name. */
  readonly py?: string;
}

/** One entry per field of F; a field without a spec is a type error, so no field goes unchecked. */
export type FieldTable<F> = { readonly [K in keyof F]-?: FieldSpec<F[K]> };

/** A field spec, with T inferred from the check. */
export function field<T>(defaultValue: NoInfer<T>, check: FieldCheck<T>, py?: string): FieldSpec<T> {
  return py === undefined ? { default: defaultValue, check } : { default: defaultValue, check, py };
}

/** `perDeviceTrainBatchSize` → `per_device_train_batch_size`; digits stay attached (`adamBeta1` → `adam_beta1`). */
export function toSnakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Type-level twin of toSnakeCase, so option objects may use the Python names with full type checking. */
export type SnakeCase<S extends string> = S extends `${infer H}${infer T}`
  ? `${H extends Lowercase<H> ? H : `_${Lowercase<H>}`}${SnakeCase<T>}`
  : S;
export type SnakeCased<F> = { [K in keyof F as K extends string ? SnakeCase<K> : never]: F[K] };

function invalid(key: string, expected: string, value: unknown): TsFinetuneError {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return new TsFinetuneError('INVALID_CONFIG', `Config key "${key}" must be ${expected}, got ${shown}.`, {
    key,
    expected,
    value,
  });
}

// YAML and `key=value` command lines hand us strings; a string that is exactly a number is accepted.
function asNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(value)) return Number(value);
  return undefined;
}

export interface NumberRange {
  min?: number;
  max?: number;
  /** Exclusive bounds, for e.g. beta in [0, 1). */
  gt?: number;
  lt?: number;
}

function rangeText(r: NumberRange): string {
  const parts: string[] = [];
  if (r.min !== undefined) parts.push(`>= ${r.min}`);
  if (r.gt !== undefined) parts.push(`> ${r.gt}`);
  if (r.max !== undefined) parts.push(`<= ${r.max}`);
  if (r.lt !== undefined) parts.push(`< ${r.lt}`);
  return parts.join(' and ');
}

function inRange(n: number, r: NumberRange): boolean {
  return (
    (r.min === undefined || n >= r.min) &&
    (r.max === undefined || n <= r.max) &&
    (r.gt === undefined || n > r.gt) &&
    (r.lt === undefined || n < r.lt)
  );
}

export function num(range: NumberRange = {}): FieldCheck<number> {
  const what = ['a finite number', rangeText(range)].filter((s) => s !== '').join(' ');
  return (value, key) => {
    const n = asNumber(value);
    if (n === undefined || !Number.isFinite(n) || !inRange(n, range)) throw invalid(key, what, value);
    return n;
  };
}

export function int(range: NumberRange = {}): FieldCheck<number> {
  const what = ['an integer', rangeText(range)].filter((s) => s !== '').join(' ');
  return (value, key) => {
    const n = asNumber(value);
    if (n === undefined || !Number.isSafeInteger(n) || !inRange(n, range)) throw invalid(key, what, value);
    return n;
  };
}

/** HF's `logging_steps` / `save_steps` / `eval_steps` / `warmup_steps`: an integer ≥ 1, or a ratio in [0, 1). */
export function stepsOrRatio(allowZero: boolean): FieldCheck<number> {
  const what = `an integer >= 1 or a ratio of the total steps in ${allowZero ? '[0, 1)' : '(0, 1)'}`;
  return (value, key) => {
    const n = asNumber(value);
    if (n === undefined || !Number.isFinite(n) || n < 0 || (n === 0 && !allowZero)) throw invalid(key, what, value);
    if (n >= 1 && !Number.isInteger(n)) throw invalid(key, what, value);
    return n;
  };
}

export function bool(): FieldCheck<boolean> {
  return (value, key) => {
    if (typeof value === 'boolean') return value;
    if (value === 'true' || value === 'True') return true;
    if (value === 'false' || value === 'False') return false;
    throw invalid(key, 'true or false', value);
  };
}

export function str(): FieldCheck<string> {
  return (value, key) => {
    if (typeof value !== 'string') throw invalid(key, 'a string', value);
    return value;
  };
}

/** One of a fixed set of names; `aliases` maps accepted spellings (e.g. HF's older names) onto them. */
export function oneOf<const V extends string>(
  values: readonly V[],
  aliases: Readonly<Record<string, V>> = {},
): FieldCheck<V> {
  return (value, key) => {
    if (typeof value === 'string') {
      if ((values as readonly string[]).includes(value)) return value as V;
      const aliased = aliases[value];
      if (aliased !== undefined) return aliased;
      const near = closestName(value, values);
      const hint = near !== undefined ? ` Did you mean "${near}"?` : '';
      throw new TsFinetuneError(
        'INVALID_CONFIG',
        `Config key "${key}" must be one of ${values.map((v) => `"${v}"`).join(', ')}, got "${value}".${hint}`,
        { key, expected: values, value, suggestion: near },
      );
    }
    throw invalid(key, `one of ${values.map((v) => `"${v}"`).join(', ')}`, value);
  };
}

/** Accepts null (and YAML's empty value) as well as what `check` accepts. */
export function nullable<T>(check: FieldCheck<T>): FieldCheck<T | null> {
  return (value, key) => (value === null ? null : check(value, key));
}

/** A plain object of JSON-like values, or a JSON string starting with '{' (HF parses those too). */
export function plainObject(): FieldCheck<Record<string, unknown>> {
  return (value, key) => {
    let v = value;
    if (typeof v === 'string' && v.trimStart().startsWith('{')) {
      try {
        v = JSON.parse(v);
      } catch {
        throw invalid(key, 'an object (or a JSON object string)', value);
      }
    }
    if (!isPlainObject(v)) throw invalid(key, 'an object', value);
    return { ...v };
  };
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Keys users paste from Python configs that name HF features we do not have. `any`: the key has no
 * effect on a single-process run (accepted, ignored). Otherwise the value listed is HF's default, the only
 * value accepted (ignored); anything else is an INVALID_CONFIG error saying the feature is unsupported.
 */
export const HF_KEYS_WITHOUT_EFFECT: Readonly<Record<string, 'any' | boolean | number | string | null>> = {
  do_train: 'any',
  do_eval: 'any',
  do_predict: 'any',
  overwrite_output_dir: 'any',
  logging_dir: 'any',
  log_level: 'any',
  log_level_replica: 'any',
  log_on_each_node: 'any',
  save_safetensors: 'any',
  save_on_each_node: 'any',
  local_rank: 'any',
  ddp_find_unused_parameters: 'any',
  ddp_backend: 'any',
  ddp_timeout: 'any',
  dataloader_num_workers: 'any',
  dataloader_pin_memory: 'any',
  dataloader_persistent_workers: 'any',
  dataloader_prefetch_factor: 'any',
  remove_unused_columns: 'any',
  skip_memory_metrics: 'any',
  hub_strategy: 'any',
  project: 'any',
  push_to_hub: false,
  hub_model_id: null,
  group_by_length: false,
  torch_compile: false,
  tf32: null,
  use_liger_kernel: false,
  label_smoothing_factor: 0,
  neftune_noise_alpha: null,
  fsdp: '',
  deepspeed: null,
  optim_args: null,
  auto_find_batch_size: false,
};

export interface ParseOptions {
  /** Class name for messages ("TrainingArguments", "SFTConfig", …). */
  className: string;
  /** Extra accepted key spellings → canonical camelCase field (e.g. `max_seq_length` → `maxLength`). */
  aliases?: Readonly<Record<string, string>>;
  /** Skip unknown keys instead of throwing (for reading training_args.json written by transformers). */
  ignoreUnknown?: boolean;
}

/**
 * Validate `options` against `table` and return every field's value (defaults filled in).
 * Keys may be camelCase or the Python snake_case names; an unknown key throws UNKNOWN_CONFIG_KEY with the
 * closest known name, in the same spelling style as the key given.
 */
export function parseFields<F>(
  table: FieldTable<F>,
  options: unknown,
  opts: ParseOptions,
): { values: F; given: Set<keyof F> } {
  if (options === undefined || options === null) options = {};
  if (!isPlainObject(options)) {
    throw new TsFinetuneError('INVALID_CONFIG', `${opts.className} expects an options object, got ${typeof options}.`, {
      className: opts.className,
    });
  }
  const camelKeys = Object.keys(table) as (keyof F & string)[];
  const bySnake = new Map<string, keyof F & string>();
  for (const k of camelKeys) bySnake.set(pyName(table, k), k);
  const aliases = opts.aliases ?? {};

  const provided = new Map<keyof F & string, { key: string; value: unknown }>();
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const target: (keyof F & string) | undefined =
      key in table ? (key as keyof F & string) : (bySnake.get(key) ?? (aliases[key] as (keyof F & string) | undefined));
    if (target === undefined) {
      if (key in HF_KEYS_WITHOUT_EFFECT) {
        checkNoEffectKey(key, value, opts.className);
        continue;
      }
      if (opts.ignoreUnknown === true) continue;
      const pool = key.includes('_') ? [...bySnake.keys()] : camelKeys;
      const suggestion = closestName(key, pool);
      throw new TsFinetuneError(
        'UNKNOWN_CONFIG_KEY',
        `Unknown ${opts.className} key "${key}".` +
          (suggestion !== undefined ? ` Did you mean "${suggestion}"?` : ` See docs/training-args.md for the keys.`),
        { key, suggestion, className: opts.className },
      );
    }
    const prev = provided.get(target);
    if (prev !== undefined && !sameValue(prev.value, value)) {
      throw new TsFinetuneError(
        'INVALID_CONFIG',
        `${opts.className} got both "${prev.key}" and "${key}" (the same setting) with different values.`,
        { key, other: prev.key },
      );
    }
    provided.set(target, { key, value });
  }

  const values = {} as F;
  for (const k of camelKeys) {
    const spec = table[k];
    const p = provided.get(k);
    values[k] = p === undefined ? cloneDefault(spec.default) : spec.check(p.value, p.key);
  }
  return { values, given: new Set(provided.keys()) };
}

function checkNoEffectKey(key: string, value: unknown, className: string): void {
  const accepted = HF_KEYS_WITHOUT_EFFECT[key];
  // null is how YAML / HF's JSON spell "unset", which every one of these accepts.
  if (accepted === 'any' || value === null || sameValue(accepted, value) || (accepted === null && value === false)) return;
  throw new TsFinetuneError(
    'INVALID_CONFIG',
    `${className} key "${key}" is a transformers feature ts-finetune does not have; ` +
      `only its default (${JSON.stringify(accepted)}) is accepted, got ${JSON.stringify(value)}.`,
    { key, value },
  );
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function cloneDefault<T>(v: T): T {
  if (Array.isArray(v)) return [...v] as T;
  if (isPlainObject(v)) return { ...v } as T;
  return v;
}

/** The camelCase field a key (camelCase, snake_case or alias) names; unknown keys come back unchanged. */
export function canonicalKey<F>(table: FieldTable<F>, key: string, aliases: Readonly<Record<string, string>> = {}): string {
  if (key in table) return key;
  for (const k of Object.keys(table) as (keyof F & string)[]) if (pyName(table, k) === key) return k;
  return aliases[key] ?? key;
}

export function pyName<F>(table: FieldTable<F>, key: keyof F & string): string {
  return table[key].py ?? toSnakeCase(key);
}

/** The snake_case JSON form (training_args.json), in table order. */
export function fieldsToPython<F>(table: FieldTable<F>, values: F): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(table) as (keyof F & string)[]) out[pyName(table, k)] = cloneDefault(values[k]);
  return out;
}

/** Throw INVALID_CONFIG for a rule that spans fields; `key` is the field the message is about. */
export function configError(className: string, key: string, message: string, details: Record<string, unknown> = {}): never {
  throw new TsFinetuneError('INVALID_CONFIG', `${className}: ${message}`, { key, className, ...details });
}
