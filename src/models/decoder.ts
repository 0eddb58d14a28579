// The Llama-family decoder as a graph: embed → N × (attn + MLP with pre-RMSNorm and residuals) → norm →
// lm_head (the embedding matrix when tied). One builder covers llama, mistral, qwen2 (q/k/v bias) and
// qwen3 (q/k norms): they differ only in config flags (transformers' modeling_{llama,mistral,qwen2,qwen3}.py).
// Graph inputs it expects: input_ids, attention_mask, position_ids [B, T] int64, optional document_ids.
// Generation passes `kvCache` (src/models/generate.ts): past keys/values per layer come in, the new
// tokens' keys/values go out, and attention_mask then covers the cached slots too ([B, S+T]).

import { TsFinetuneError } from '../core/errors.js';
import { op, type Value } from '../graph/index.js';
import { attentionBias, cachedAttentionBias, selfAttentionWithCache, type AttentionConfig, type KvPair } from '../nn/attention.js';
import { gatedMlp, rmsNorm } from '../nn/layers.js';
import { ropeCosSin, ropeInvFreq, ropeTables } from '../nn/rope.js';
import type { ModelBuildContext } from './build-context.js';
import type { CausalLMConfig } from './config.js';

export interface DecoderInputs {
  inputIds: Value; // [B, T] int64
  attentionMask: Value; // [B, T] int64 ([B, S+T] with kvCache.past)
  positionIds: Value; // [B, T] int64
  documentIds?: Value; // [B, T] int64 (packing)
  kvCache?: KvCacheIO;
}

/** The KV-cache side of a generation graph (inputs it reads, outputs the decoder fills in). */
export interface KvCacheIO {
  /** Per layer, cached keys (after RoPE) and values [B, K, S, D]; attention_mask's first S columns mask them. */
  past?: readonly KvPair[];
  /** Filled by the decoder: per layer, the new tokens' keys and values [B, K, T, D]. */
  present: KvPair[];
  /** Return hidden states of the last position only ([B, 1, C]): generation needs only the next token. */
  lastOnly?: boolean;
}

export interface DecoderOptions {
  /** Positions gathered from the RoPE table are < this (T for training). */
  maxPosition: number;
  /** Wraps each block's construction (gradient-checkpoint segments hook in here). */
  block?: <T>(layer: number, build: () => T) => T;
}

export function attentionConfig(cfg: CausalLMConfig): AttentionConfig {
  return {
    numHeads: cfg.numAttentionHeads,
    numKvHeads: cfg.numKeyValueHeads,
    headDim: cfg.headDim,
    qkvBias: cfg.attentionBias,
    qkNorm: cfg.qkNorm,
    rmsNormEps: cfg.rmsNormEps,
  };
}

/** Final hidden states [B, T, C] (after model.norm). */
export function decoderHidden(ctx: ModelBuildContext, cfg: CausalLMConfig, inputs: DecoderInputs, opts: DecoderOptions): Value {
  const g = ctx.g;
  const tables = ropeTables(ropeInvFreq(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling), opts.maxPosition);
  const rope = ropeCosSin(g, inputs.positionIds, tables);
  const kv = inputs.kvCache;
  if (kv?.past && inputs.documentIds) throw new TsFinetuneError('GRAPH_ERROR', 'decoderHidden: packed document ids cannot be combined with a KV cache');
  const pastLength = kv?.past?.[0]?.key.shape[2] ?? 0;
  const bias = kv?.past ? cachedAttentionBias(g, inputs.attentionMask, pastLength) : attentionBias(g, inputs.attentionMask, inputs.documentIds);
  const attn = attentionConfig(cfg);
  const wrap = opts.block ?? (<T>(_i: number, f: () => T): T => f());
  let h = ctx.embed('model.embed_tokens.weight', inputs.inputIds); // [B, T, C]
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    h = wrap(i, () => {
      const x = rmsNorm(ctx, `${p}.input_layernorm`, h, cfg.rmsNormEps);
      const a = selfAttentionWithCache(ctx, `${p}.self_attn`, x, rope, bias, attn, kv?.past?.[i]);
      if (kv) kv.present[i] = a.present;
      const h1 = op.Add(h, a.out);
      const m = gatedMlp(ctx, `${p}.mlp`, rmsNorm(ctx, `${p}.post_attention_layernorm`, h1, cfg.rmsNormEps));
      return op.Add(h1, m); // [B, T, C]
    });
  }
  if (kv?.lastOnly) {
    const T = h.shape[1]!;
    h = op.Slice(h, [T - 1], [T], [1]); // [B, 1, C]: the final norm and lm_head are per position
  }
  return rmsNorm(ctx, 'model.norm', h, cfg.rmsNormEps);
}

/**
 * Logits [B, T, V] from final hidden states; lm_head may be adapted (LoRA on lm_head is allowed). A 16-bit
 * head (a 4-bit model's) is multiplied through kernels/half-linear.ts, which never holds it in float32.
 */
export function lmHead(ctx: ModelBuildContext, cfg: CausalLMConfig, hidden: Value): Value {
  if (cfg.tieWordEmbeddings) return ctx.matmulT('model.embed_tokens.weight', hidden);
  if (ctx.quantizedHas('lm_head.weight')) {
    const w = ctx.linearWeight('lm_head');
    if (w.kind !== 'dense') return op.MatMul(hidden, op.Transpose(w.dequantize(ctx.g), [1, 0]));
  }
  const y = ctx.matmulT('lm_head.weight', hidden); // [B, T, V]
  const adapter = ctx.adaptersEnabled ? ctx.adapters.get('lm_head') : undefined;
  return adapter ? adapter.apply(ctx, 'lm_head', hidden, y, ctx.linearWeight('lm_head')) : y;
}
