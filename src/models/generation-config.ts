// A model folder's `generation_config.json` as generate() options: the defaults transformers' generate
// takes from `model.generation_config` (eos / pad ids, do_sample, temperature, top_k, top_p,
// max_new_tokens). Options the caller passes win over these. Fields we do not implement (repetition
// penalty, num_beams > 1, …) are reported in `ignored`, so a caller can say so instead of silently
// generating differently. Follows transformers generation/configuration_utils.py (GenerationConfig).

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { TsFinetuneError } from '../core/errors.js';
import type { GenerateOptions } from './generate.js';

export interface GenerationDefaults {
  options: GenerateOptions;
  /** Fields that change generation in transformers but not here (with their values). */
  ignored: Record<string, unknown>;
}

/** Fields we do not implement, at the value where they change nothing. */
const NEUTRAL: Record<string, unknown> = {
  num_beams: 1,
  num_return_sequences: 1,
  repetition_penalty: 1,
  length_penalty: 1,
  no_repeat_ngram_size: 0,
  min_new_tokens: 0,
  min_length: 0,
};

const HANDLED = new Set(['eos_token_id', 'pad_token_id', 'do_sample', 'temperature', 'top_k', 'top_p', 'max_new_tokens']);
const INFO = new Set(['bos_token_id', 'decoder_start_token_id', 'transformers_version', '_from_model_config', 'max_length', 'use_cache']);

/** Parse a generation_config.json object (`file` names it in errors). */
export function parseGenerationConfig(raw: Record<string, unknown>, file = 'generation_config.json'): GenerationDefaults {
  const options: GenerateOptions = {};
  const num = (key: string): number | undefined => {
    const v = raw[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new TsFinetuneError('INVALID_CONFIG', `${file}: '${key}' must be a number, got ${JSON.stringify(v)}`, { file, key });
    return v;
  };
  const eos = raw.eos_token_id;
  if (eos !== undefined && eos !== null) {
    const list = Array.isArray(eos) ? eos : [eos];
    if (!list.every((t) => Number.isInteger(t))) throw new TsFinetuneError('INVALID_CONFIG', `${file}: 'eos_token_id' must be an integer or a list of integers`, { file });
    options.eosTokenId = list as number[];
  }
  const pad = num('pad_token_id');
  if (pad !== undefined) options.padTokenId = pad;
  if (typeof raw.do_sample === 'boolean') options.doSample = raw.do_sample;
  const temperature = num('temperature');
  if (temperature !== undefined) options.temperature = temperature;
  const topK = num('top_k');
  if (topK !== undefined) options.topK = topK;
  const topP = num('top_p');
  if (topP !== undefined) options.topP = topP;
  const maxNew = num('max_new_tokens');
  if (maxNew !== undefined) options.maxNewTokens = maxNew;
  const ignored: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (HANDLED.has(k) || INFO.has(k) || v === null || v === undefined) continue;
    if (k in NEUTRAL && NEUTRAL[k] === v) continue;
    ignored[k] = v;
  }
  return { options, ignored };
}

/** The folder's generation_config.json, or empty defaults when it has none. */
export async function readGenerationConfig(dir: string): Promise<GenerationDefaults> {
  const file = path.join(dir, 'generation_config.json');
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return { options: {}, ignored: {} };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TsFinetuneError('INVALID_CONFIG', `${file} is not valid JSON: ${(e as Error).message}`, { file });
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new TsFinetuneError('INVALID_CONFIG', `${file} must hold a JSON object`, { file });
  return parseGenerationConfig(raw as Record<string, unknown>, file);
}
