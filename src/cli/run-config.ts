// The run config behind `ts-finetune sft|dpo|orpo`: the embedded defaults, then a YAML/JSON file
// (--config), then flags (--model, --dataset, --output-dir), then key=value overrides. Keys of the
// training arguments may sit at the top level or under `args:`; LoRA under `lora:` (false = full
// fine-tuning); 4-bit loading under `quantization:` (BitsAndBytesConfig fields).

import * as path from 'node:path';
import { TsFinetuneError } from '../core/errors.js';
import { loadDataset, type Dataset } from '../data/index.js';
import { AutoModelForCausalLM, type CausalLM } from '../models/index.js';
import { AutoTokenizer, type PreTrainedTokenizer } from '../tokenizers/index.js';
import { BitsAndBytesConfig, type BitsAndBytesConfigInit } from '../quant/index.js';
import { LoraConfig, type LoraConfigInit } from '../peft/index.js';
import { deepMerge, parseArgs, readRunConfig } from './args.js';
import { assetPath } from './package-root.js';

export interface RunConfig {
  model: string;
  dataset: string;
  datasetSplit: string;
  evalSplit?: string;
  lora: LoraConfig | null;
  quantization: BitsAndBytesConfig | null;
  args: Record<string, unknown>;
  samplePrompt: string;
  maxNewTokens: number;
  raw: Record<string, unknown>;
}

const TOP_KEYS = ['model', 'dataset', 'dataset_split', 'eval_split', 'lora', 'quantization', 'args', 'sample_prompt', 'max_new_tokens'];

const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function snakeKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [snake(k), v]));
}

const camel = (k: string): string => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function camelKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [camel(k), v]));
}

/** Keys that are not top-level run keys are training arguments: move them under `args`. */
function nestArgs(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const args: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (TOP_KEYS.includes(k)) out[k] = v;
    else args[k] = v;
  }
  return Object.keys(args).length ? deepMerge(out, { args }) : out;
}

export async function resolveRunConfig(argv: readonly string[], defaults: Record<string, unknown>): Promise<RunConfig> {
  const { flags, overrides, positional } = parseArgs(argv);
  if (positional.length) throw new TsFinetuneError('INVALID_ARGUMENT', `Unexpected argument '${positional[0]}' (use --flag value or key=value)`);
  let raw = snakeKeys(defaults);
  // The file's top-level training keys go under args now, so key=value overrides below win over them.
  if (typeof flags.config === 'string') raw = deepMerge(raw, nestArgs(snakeKeys(await readRunConfig(flags.config))));
  for (const [k, v] of Object.entries(flags)) {
    if (k === 'config') continue;
    if (k === 'output_dir') raw = deepMerge(raw, { args: { output_dir: v } });
    else if (TOP_KEYS.includes(k)) raw[k] = v;
    else throw new TsFinetuneError('UNKNOWN_CONFIG_KEY', `Unknown flag --${k.replace(/_/g, '-')} (flags: --config, --model, --dataset, --output-dir; other settings as key=value)`);
  }
  // key=value: top-level keys stay; everything else is a training argument.
  for (const [k, v] of Object.entries(snakeKeys(overrides))) {
    if (TOP_KEYS.includes(k)) raw = deepMerge(raw, { [k]: v });
    else raw = deepMerge(raw, { args: { [k]: v } });
  }
  // Top-level training-argument keys in a config file are moved under args.
  for (const k of Object.keys(raw)) {
    if (!TOP_KEYS.includes(k)) {
      raw = deepMerge(raw, { args: { [k]: raw[k] } });
      delete raw[k];
    }
  }
  const lora = raw.lora === false || raw.lora === null ? null : new LoraConfig(camelKeys((raw.lora ?? {}) as Record<string, unknown>) as LoraConfigInit);
  const q = raw.quantization ? new BitsAndBytesConfig(camelKeys(raw.quantization as Record<string, unknown>) as BitsAndBytesConfigInit) : null;
  const cfg: RunConfig = {
    model: String(raw.model),
    dataset: String(raw.dataset),
    datasetSplit: String(raw.dataset_split ?? 'train'),
    lora,
    quantization: q,
    args: (raw.args ?? {}) as Record<string, unknown>,
    samplePrompt: String(raw.sample_prompt ?? 'What does a cow say?'),
    maxNewTokens: Number(raw.max_new_tokens ?? 24),
    raw,
  };
  if (raw.eval_split !== undefined) cfg.evalSplit = String(raw.eval_split);
  return cfg;
}

/** A local file (by extension), a local folder, a saved dataset, or a Hub dataset id. */
export async function loadRunDataset(spec: string, split: string): Promise<Dataset> {
  const builders: Record<string, string> = { '.jsonl': 'json', '.json': 'json', '.parquet': 'parquet', '.csv': 'csv', '.txt': 'text', '.arrow': 'arrow' };
  const builder = builders[path.extname(spec).toLowerCase()];
  if (builder) return loadDataset(builder, { dataFiles: { [split]: spec }, split });
  return loadDataset(spec, { split });
}

/** `assets/…` names in the embedded defaults resolve inside the installed package. */
export function embedded(...parts: string[]): string {
  return assetPath(...parts);
}

/** The run's tokenizer (pad = eos when it has no pad token, as the walkthrough sets) and base model. */
export async function loadRunModel(
  cfg: RunConfig,
  device: 'cpu' | 'cuda' | 'webgpu' | 'auto',
): Promise<{ tokenizer: PreTrainedTokenizer; base: CausalLM; loadOpts: Parameters<typeof AutoModelForCausalLM.fromPretrained>[1] }> {
  const tokenizer = await AutoTokenizer.fromPretrained(cfg.model);
  if (tokenizer.padToken === null) tokenizer.padToken = tokenizer.eosToken;
  const loadOpts: Parameters<typeof AutoModelForCausalLM.fromPretrained>[1] = { device };
  if (cfg.quantization) loadOpts.quantizationConfig = cfg.quantization;
  const base = await AutoModelForCausalLM.fromPretrained(cfg.model, loadOpts);
  return { tokenizer, base, loadOpts };
}

/**
 * A fresh run folder under `base` (base/run-YYYYMMDD-HHMMSS) for the commands' defaults, so running the
 * embedded default twice starts a new run instead of meeting the last run's checkpoints.
 */
export function defaultRunDir(base: string): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return path.join(base, `run-${t}`);
}
