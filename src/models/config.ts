// Hugging Face `config.json` for the decoder families we build (llama, mistral, qwen2, qwen3), parsed
// into one typed shape. Field names and defaults follow transformers' Llama/Mistral/Qwen2/Qwen3 configs.

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { TsFinetuneError } from '../core/errors.js';
import type { RopeScaling } from '../nn/rope.js';

export const SUPPORTED_MODEL_TYPES = ['llama', 'mistral', 'qwen2', 'qwen3'] as const;
export type ModelType = (typeof SUPPORTED_MODEL_TYPES)[number];

export interface CausalLMConfig {
  modelType: ModelType;
  vocabSize: number; // V
  hiddenSize: number; // C
  intermediateSize: number; // F
  numHiddenLayers: number;
  numAttentionHeads: number; // H
  numKeyValueHeads: number; // K
  headDim: number; // D
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling?: RopeScaling;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  attentionBias: boolean; // q/k/v bias (qwen2 always)
  qkNorm: boolean; // qwen3
  bosTokenId?: number;
  eosTokenId?: number | number[];
  padTokenId?: number;
  torchDtype?: string;
  /** transformers' `use_cache`; training sets it false (generation builds its own KV-cache graph). */
  useCache: boolean;
  /** The config.json as read, for saving back unchanged fields. */
  raw: Record<string, unknown>;
}

function req(raw: Record<string, unknown>, key: string, file: string): number {
  const v = raw[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new TsFinetuneError('INVALID_CONFIG', `${file}: required field '${key}' is missing or not a number`, { file, key });
  }
  return v;
}

function opt<T>(raw: Record<string, unknown>, key: string, dflt: T): T {
  const v = raw[key];
  return v === undefined || v === null ? dflt : (v as T);
}

export function parseConfig(raw: Record<string, unknown>, file = 'config.json'): CausalLMConfig {
  const modelType = raw.model_type;
  if (typeof modelType !== 'string' || !(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    throw new TsFinetuneError(
      'UNSUPPORTED_MODEL',
      `${file}: model_type '${String(modelType)}' is not supported; supported: ${SUPPORTED_MODEL_TYPES.join(', ')}`,
      { file, modelType },
    );
  }
  const mt = modelType as ModelType;
  const hidden = req(raw, 'hidden_size', file);
  const heads = req(raw, 'num_attention_heads', file);
  const kv = opt(raw, 'num_key_value_heads', heads);
  if (heads % kv !== 0) {
    throw new TsFinetuneError('INVALID_CONFIG', `${file}: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kv}`);
  }
  const rs = raw.rope_scaling as Record<string, unknown> | null | undefined;
  let ropeScaling: RopeScaling | undefined;
  if (rs && typeof rs === 'object') {
    const t = String(rs.rope_type ?? rs.type ?? 'default');
    if (t !== 'llama3' && t !== 'linear' && t !== 'default') {
      throw new TsFinetuneError('INVALID_CONFIG', `${file}: rope_scaling type '${t}' is not supported (llama3, linear, default)`);
    }
    ropeScaling = {
      ropeType: t,
      factor: rs.factor as number | undefined,
      lowFreqFactor: rs.low_freq_factor as number | undefined,
      highFreqFactor: rs.high_freq_factor as number | undefined,
      originalMaxPositionEmbeddings: rs.original_max_position_embeddings as number | undefined,
    };
  }
  const cfg: CausalLMConfig = {
    modelType: mt,
    vocabSize: req(raw, 'vocab_size', file),
    hiddenSize: hidden,
    intermediateSize: req(raw, 'intermediate_size', file),
    numHiddenLayers: req(raw, 'num_hidden_layers', file),
    numAttentionHeads: heads,
    numKeyValueHeads: kv,
    headDim: opt(raw, 'head_dim', hidden / heads),
    rmsNormEps: opt(raw, 'rms_norm_eps', 1e-6),
    ropeTheta: opt(raw, 'rope_theta', 10000),
    maxPositionEmbeddings: opt(raw, 'max_position_embeddings', 2048),
    tieWordEmbeddings: opt(raw, 'tie_word_embeddings', false),
    attentionBias: mt === 'qwen2' ? true : opt(raw, 'attention_bias', false),
    qkNorm: mt === 'qwen3',
    useCache: opt(raw, 'use_cache', true),
    raw,
  };
  if (ropeScaling) cfg.ropeScaling = ropeScaling;
  for (const [k, key] of [
    ['bosTokenId', 'bos_token_id'],
    ['eosTokenId', 'eos_token_id'],
    ['padTokenId', 'pad_token_id'],
    ['torchDtype', 'torch_dtype'],
  ] as const) {
    const v = raw[key];
    if (v !== undefined && v !== null) (cfg as unknown as Record<string, unknown>)[k] = v;
  }
  return cfg;
}

export async function readConfig(dir: string): Promise<CausalLMConfig> {
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    throw new TsFinetuneError('FILE_NOT_FOUND', `No config.json in ${dir}`, { file });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TsFinetuneError('INVALID_CONFIG', `${file} is not valid JSON: ${(e as Error).message}`, { file });
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new TsFinetuneError('INVALID_CONFIG', `${file} must hold a JSON object`, { file });
  }
  return parseConfig(raw as Record<string, unknown>, file);
}

/** Expected HF parameter names and shapes ([out, in] for linears). */
export function expectedParameters(cfg: CausalLMConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const { hiddenSize: C, intermediateSize: F, numAttentionHeads: H, numKeyValueHeads: K, headDim: D, vocabSize: V } = cfg;
  m.set('model.embed_tokens.weight', [V, C]);
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    m.set(`${p}.input_layernorm.weight`, [C]);
    m.set(`${p}.self_attn.q_proj.weight`, [H * D, C]);
    m.set(`${p}.self_attn.k_proj.weight`, [K * D, C]);
    m.set(`${p}.self_attn.v_proj.weight`, [K * D, C]);
    if (cfg.attentionBias) {
      m.set(`${p}.self_attn.q_proj.bias`, [H * D]);
      m.set(`${p}.self_attn.k_proj.bias`, [K * D]);
      m.set(`${p}.self_attn.v_proj.bias`, [K * D]);
    }
    if (cfg.qkNorm) {
      m.set(`${p}.self_attn.q_norm.weight`, [D]);
      m.set(`${p}.self_attn.k_norm.weight`, [D]);
    }
    m.set(`${p}.self_attn.o_proj.weight`, [C, H * D]);
    m.set(`${p}.post_attention_layernorm.weight`, [C]);
    m.set(`${p}.mlp.gate_proj.weight`, [F, C]);
    m.set(`${p}.mlp.up_proj.weight`, [F, C]);
    m.set(`${p}.mlp.down_proj.weight`, [C, F]);
  }
  m.set('model.norm.weight', [C]);
  if (!cfg.tieWordEmbeddings) m.set('lm_head.weight', [V, C]);
  return m;
}

/** Module paths of every linear layer, in HF order (lm_head last, when untied). */
export function linearModuleNames(cfg: CausalLMConfig): string[] {
  const out: string[] = [];
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) out.push(`${p}.self_attn.${n}`);
    for (const n of ['gate_proj', 'up_proj', 'down_proj']) out.push(`${p}.mlp.${n}`);
  }
  if (!cfg.tieWordEmbeddings) out.push('lm_head');
  return out;
}
