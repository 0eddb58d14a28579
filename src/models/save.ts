// Saving a CausalLM as a Hugging Face model folder, as transformers' save_pretrained writes it:
// config.json (json.dumps(indent=2, sort_keys=True) + newline), generation_config.json, and the weights as
// model.safetensors (metadata {"format": "pt"}) or, above `maxShardSize`, model-0000i-of-0000n.safetensors
// shards with model.safetensors.index.json. 4-bit linears are written in bitsandbytes' serialised form
// with `quantization_config` in config.json. Every file is written atomically; other files in the folder
// (a tokenizer, a README) are kept, stale shards of an earlier save are removed.
// Follows transformers `modeling_utils.py` (save_pretrained, shard_checkpoint) and `configuration_utils.py`.
// Not here: loading (weights.ts, auto-model.ts).

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { TsFinetuneError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fs-atomic.js';
import type { Tensor } from '../core/tensor.js';
import { saveSafetensors } from '../io/index.js';
import type { BitsAndBytesConfig } from '../quant/index.js';
import type { CausalLMConfig } from './config.js';

export interface SavePretrainedOptions {
  /** dtype of the floating-point weights on disk (default 'float32'; the model computes in fp32 on CPU). */
  dtype?: 'float32' | 'bfloat16' | 'float16';
  /** Largest shard in bytes (default 5 GB, transformers' default "5GB"). */
  maxShardSize?: number;
}

/** What save needs from a model (CausalLM satisfies it). */
export interface SavableModel {
  readonly config: CausalLMConfig;
  readonly nameOrPath: string;
  readonly quantized: ReadonlyMap<string, unknown>;
  quantizationConfig?: BitsAndBytesConfig;
  stateDict(): Map<string, Tensor>;
}

const WEIGHTS = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';
/** config.json fields transformers holds as Python floats (printed with a decimal point). */
const FLOAT_FIELDS = new Set(['rope_theta', 'rms_norm_eps', 'attention_dropout', 'initializer_range']);

/** Python json.dumps(indent=2, sort_keys=True) for plain JSON data, with FLOAT_FIELDS written as floats. */
function dumps(value: unknown, depth = 0, key = ''): string {
  const pad = '\n' + '  '.repeat(depth + 1);
  const end = '\n' + '  '.repeat(depth);
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number') return FLOAT_FIELDS.has(key) && Number.isInteger(value) ? `${value}.0` : pyNumber(value);
  if (typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return value.length === 0 ? '[]' : `[${value.map((v) => pad + dumps(v, depth + 1)).join(',')}${end}]`;
  const keys = Object.keys(value as object).sort();
  if (keys.length === 0) return '{}';
  return `{${keys.map((k) => `${pad}${JSON.stringify(k)}: ${dumps((value as Record<string, unknown>)[k], depth + 1, k)}`).join(',')}${end}}`;
}

/** Python repr of a number: 1e-05 rather than JS's 0.00001. */
function pyNumber(x: number): string {
  if (Number.isInteger(x)) return String(x);
  const s = String(x);
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-])(\d+)$/.exec(x.toExponential());
  if (Math.abs(x) < 1e-4 && m) return `${m[1]}${m[2]}${m[3] ? `.${m[3]}` : ''}e${m[4]}${m[5]!.padStart(2, '0')}`;
  return s;
}

/** config.json contents for the model as it is now (fp32 on disk unless `dtype`, quantization_config when 4-bit remains). */
export function configJson(model: SavableModel, dtype: string): Record<string, unknown> {
  const cfg = model.config;
  const raw: Record<string, unknown> = { ...cfg.raw };
  raw.torch_dtype = dtype;
  raw.use_cache = cfg.useCache;
  if (model.quantized.size > 0 && model.quantizationConfig) raw.quantization_config = model.quantizationConfig.toJSON();
  else delete raw.quantization_config;
  return raw;
}

async function generationConfig(model: SavableModel): Promise<string | undefined> {
  try {
    const local = path.join(model.nameOrPath, 'generation_config.json');
    return await fsp.readFile(local, 'utf8');
  } catch {
    // not a local folder with one: derive it as GenerationConfig.from_model_config does
  }
  const raw = model.config.raw;
  const g: Record<string, unknown> = { _from_model_config: true };
  for (const k of ['bos_token_id', 'eos_token_id', 'pad_token_id']) if (raw[k] !== undefined && raw[k] !== null) g[k] = raw[k];
  if (Object.keys(g).length === 1) return undefined;
  if (typeof raw.transformers_version === 'string') g.transformers_version = raw.transformers_version;
  return dumps(g) + '\n';
}

/**
 * Write `model` into `dir` as an HF folder that transformers (and our AutoModelForCausalLM) loads.
 * @example
 * await saveCausalLM(merged, 'out/merged');
 */
export async function saveCausalLM(model: SavableModel, dir: string, opts: SavePretrainedOptions = {}): Promise<void> {
  const dtype = opts.dtype ?? 'float32';
  if (!['float32', 'bfloat16', 'float16'].includes(dtype)) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `savePretrained: dtype '${dtype}' is not one of float32, bfloat16, float16`);
  }
  const maxShard = opts.maxShardSize ?? 5_000_000_000;
  await fsp.mkdir(dir, { recursive: true });
  const tensors = new Map<string, Tensor>();
  for (const [k, t] of model.stateDict()) {
    const isFloat = t.dtype === 'float32' || t.dtype === 'float16' || t.dtype === 'bfloat16';
    // bitsandbytes' absmax / quant_map stay float32 whatever the weight dtype.
    const quantPart = /\.(absmax|quant_map|nested_absmax|nested_quant_map)$/.test(k);
    tensors.set(k, isFloat && !quantPart ? t.to(dtype) : t);
  }
  // Greedy shards in state-dict order, as transformers' shard_checkpoint.
  const shards: Map<string, Tensor>[] = [new Map()];
  let size = 0;
  let total = 0;
  for (const [k, t] of tensors) {
    total += t.byteLength;
    if (size + t.byteLength > maxShard && shards[shards.length - 1]!.size > 0) {
      shards.push(new Map());
      size = 0;
    }
    shards[shards.length - 1]!.set(k, t);
    size += t.byteLength;
  }
  const names = shards.length === 1 ? [WEIGHTS] : shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`);
  for (let i = 0; i < shards.length; i++) await saveSafetensors(path.join(dir, names[i]!), shards[i]!, { format: 'pt' });
  // Remove weights of an earlier save that this one does not overwrite.
  for (const f of await fsp.readdir(dir)) {
    const stale = (f === WEIGHTS || f === INDEX || /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)) && !names.includes(f);
    if (stale && !(f === INDEX && shards.length > 1)) await fsp.rm(path.join(dir, f), { force: true });
  }
  if (shards.length > 1) {
    const weightMap: Record<string, string> = {};
    shards.forEach((s, i) => {
      for (const k of s.keys()) weightMap[k] = names[i]!;
    });
    await writeFileAtomic(path.join(dir, INDEX), dumps({ metadata: { total_size: total }, weight_map: weightMap }) + '\n');
  }
  await writeFileAtomic(path.join(dir, 'config.json'), dumps(configJson(model, dtype)) + '\n');
  const gen = await generationConfig(model);
  if (gen !== undefined) await writeFileAtomic(path.join(dir, 'generation_config.json'), gen);
}
