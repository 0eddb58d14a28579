// Causal self-attention with grouped KV heads (Llama / Mistral / Qwen2 / Qwen3), as transformers'
// eager attention: softmax(q kᵀ / √D + mask) v. Query heads are grouped per KV head ([B, K, G, T, D])
// instead of repeating K/V (measured faster, DESIGN.md); head h = k·G + g matches HF's repeat_kv order.
// The mask is additive: causal, padding (attention_mask 0 → masked key) and, for packed batches,
// document boundaries (keys of another document are masked).
// Generation (src/models/generate.ts) adds a KV cache: `selfAttentionWithCache` also returns the new
// tokens' keys (after RoPE) and values, and attends over cached ones passed in.
// Without a past (training), the G query heads of a KV head are stacked as GEMM rows ([B, K, G·T, D]) by
// default: see the comment there and docs/performance.md; 'grouped' (the earlier [B, K, G, T, D] form with
// broadcast K/V) stays selectable through src/nn/formulation.ts for A/B measurements. Step graphs split it
// into causal query blocks that skip the masked keys (causalBlocks); each block's softmax·v is a kernels/
// function with its own backward (attention-block.ts, attention-tiles.ts).

import { Tensor } from '../core/tensor.js';
import { op, type Graph, type Value } from '../graph/index.js';
import type { BuildContext } from './context.js';
import { linear, rmsNorm } from './layers.js';
import { nnFormulation } from './formulation.js';
import { applyRope, type RopeValues } from './rope.js';
import { attentionBlock } from '../../kernels/attention-block.js';
import { attentionTiles } from '../../kernels/attention-tiles.js';

export interface AttentionConfig {
  numHeads: number; // H
  numKvHeads: number; // K
  headDim: number; // D
  qkvBias: boolean; // Qwen2
  qkNorm: boolean; // Qwen3: RMSNorm over D on q and k before RoPE
  rmsNormEps: number;
}

/** One layer's keys (after RoPE, as HF's cache holds them) and values, [B, K, S, D]. */
export interface KvPair {
  key: Value;
  value: Value;
}

const NEG = -1e9; // exp(NEG - max) underflows to exactly 0 in f32, like HF's finfo.min, without inf arithmetic

/**
 * Additive mask [B, 1, 1, T, T] from attention_mask [B, T] (1 = real token) and optional document ids
 * [B, T] (packing): allowed(i, j) = j ≤ i ∧ mask[j] ∧ doc[i] = doc[j].
 */
export function attentionBias(g: Graph, attentionMask: Value, documentIds?: Value): Value {
  const [B, T] = attentionMask.shape as [number, number];
  // Future keys get 2·NEG, below any padded past key (NEG): a query that sees no key at all (a left pad)
  // then attends uniformly over its padded past, never over the future. Such a row's output is arbitrary
  // (transformers' eager and sdpa attention differ there too), but this one depends on keys ≤ i only, so
  // the causal blocks of causalBlocks() compute it exactly.
  const causal = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) causal[i * T + j] = 2 * NEG;
  const causalV = g.constant(new Tensor('float32', [T, T], causal)); // [T, T]
  const keyOk = op.Cast(op.Reshape(attentionMask, [B, 1, 1, 1, T]), 'float32'); // [B,1,1,1,T]
  let bias = op.Add(causalV, op.Mul(op.Sub(1, keyOk), NEG)); // [B,1,1,T,T]
  if (documentIds) {
    const qi = op.Reshape(documentIds, [B, 1, 1, T, 1]);
    const kj = op.Reshape(documentIds, [B, 1, 1, 1, T]);
    const same = op.Cast(op.Equal(qi, kj), 'float32'); // [B,1,1,T,T]
    bias = op.Add(bias, op.Mul(op.Sub(1, same), NEG));
  }
  return bias;
}

/**
 * Additive mask [B, 1, 1, T, S+T] for T new tokens attending over S cached slots and themselves, from
 * attention_mask [B, S+T] (1 = a real token in that slot; 0 = padding or a slot not yet filled):
 * allowed(i, j) = mask[j] ∧ (j < S ∨ j − S ≤ i).
 */
export function cachedAttentionBias(g: Graph, attentionMask: Value, pastLength: number): Value {
  const [B, L] = attentionMask.shape as [number, number];
  const S = pastLength;
  const T = L - S;
  const causal = new Float32Array(T * L);
  for (let i = 0; i < T; i++) for (let j = S + i + 1; j < L; j++) causal[i * L + j] = NEG;
  const causalV = g.constant(new Tensor('float32', [T, L], causal)); // [T, S+T]
  const keyOk = op.Cast(op.Reshape(attentionMask, [B, 1, 1, 1, L]), 'float32'); // [B,1,1,1,S+T]
  return op.Add(causalV, op.Mul(op.Sub(1, keyOk), NEG)); // [B,1,1,T,S+T]
}

export function selfAttention(
  ctx: BuildContext,
  path: string,
  x: Value, // [B, T, C]
  rope: RopeValues,
  bias: Value, // [B, 1, 1, T, T]
  cfg: AttentionConfig,
): Value {
  return selfAttentionWithCache(ctx, path, x, rope, bias, cfg).out;
}

/**
 * Self-attention that also returns `present`, the new tokens' keys and values [B, K, T, D]. With `past`
 * ([B, K, S, D], bias [B, 1, 1, T, S+T]) the new queries attend over the cached keys and their own:
 * the scores of both are concatenated (softmax over all S+T keys) and the probabilities split again,
 * so the cache is read in place, never concatenated with the new keys.
 */
export function selfAttentionWithCache(
  ctx: BuildContext,
  path: string,
  x: Value, // [B, T, C]
  rope: RopeValues,
  bias: Value, // [B, 1, 1, T, T] or, with past, [B, 1, 1, T, S+T]
  cfg: AttentionConfig,
  past?: KvPair,
): { out: Value; present: KvPair } {
  const [B, T] = x.shape as [number, number, number];
  const { numHeads: H, numKvHeads: K, headDim: D } = cfg;
  const G = H / K;
  let q = op.Reshape(linear(ctx, `${path}.q_proj`, x, { bias: cfg.qkvBias }), [B, T, H, D]);
  let k = op.Reshape(linear(ctx, `${path}.k_proj`, x, { bias: cfg.qkvBias }), [B, T, K, D]);
  const v = op.Reshape(linear(ctx, `${path}.v_proj`, x, { bias: cfg.qkvBias }), [B, T, K, D]);
  if (cfg.qkNorm) {
    q = rmsNorm(ctx, `${path}.q_norm`, q, cfg.rmsNormEps);
    k = rmsNorm(ctx, `${path}.k_norm`, k, cfg.rmsNormEps);
  }
  q = applyRope(op.Transpose(q, [0, 2, 1, 3]), rope); // [B, H, T, D]
  k = applyRope(op.Transpose(k, [0, 2, 1, 3]), rope); // [B, K, T, D]
  const vt = op.Transpose(v, [0, 2, 1, 3]); // [B, K, T, D]
  const scale = 1 / Math.sqrt(D);
  const finish = (c: Value): { out: Value; present: KvPair } => {
    const merged = op.Reshape(op.Transpose(op.Reshape(c, [B, H, T, D]), [0, 2, 1, 3]), [B, T, H * D]); // [B, T, H·D]
    return { out: linear(ctx, `${path}.o_proj`, merged), present: { key: k, value: vt } };
  };
  let ctxv: Value;
  if (!past && nnFormulation(x.graph).attention === 'grouped') {
    const qg = op.Reshape(q, [B, K, G, T, D]); // [B, K, G, T, D]
    const kg = op.Reshape(k, [B, K, 1, T, D]); // [B, K, 1, T, D]
    const vg = op.Reshape(vt, [B, K, 1, T, D]); // [B, K, 1, T, D]
    const scores = op.Add(op.Mul(op.MatMul(qg, op.Transpose(kg, [0, 1, 2, 4, 3])), scale), bias); // [B,K,G,T,T]
    ctxv = op.MatMul(op.Softmax(scores, -1), vg); // [B, K, G, T, D]
  } else if (!past && causalBlockRows(T, nnFormulation(x.graph).attentionBlock) < T) {
    ctxv = causalBlocks(q, k, vt, bias, scale, G, causalBlockRows(T, nnFormulation(x.graph).attentionBlock));
  } else if (!past) {
    // The G query heads of a KV head are stacked as rows (free reshape: head h = k·G + g is row block g),
    // so each product is ONE GEMM per (b, k) with no broadcast operand: the backward's dK and dV then sum
    // over the G heads inside the GEMM (K-dim G·T) instead of a ReduceSum over a middle axis.
    const qf = op.Reshape(q, [B, K, G * T, D]); // [B, K, G·T, D]
    if (nnFormulation(x.graph).attentionCore === 'function') return finish(attentionBlock(x.graph, qf, k, vt, bias, G, scale));
    const scores = op.Mul(op.MatMul(qf, op.Transpose(k, [0, 1, 3, 2])), scale); // [B, K, G·T, T]
    const masked = op.Add(op.Reshape(scores, [B, K, G, T, T]), bias); // [B, K, G, T, T]
    const probs = op.Reshape(op.Softmax(masked, -1), [B, K, G * T, T]); // [B, K, G·T, T]
    ctxv = op.MatMul(probs, vt); // [B, K, G·T, D]
  } else {
    const qg = op.Reshape(q, [B, K, G, T, D]); // [B, K, G, T, D]
    const kg = op.Reshape(k, [B, K, 1, T, D]); // [B, K, 1, T, D]
    const vg = op.Reshape(vt, [B, K, 1, T, D]); // [B, K, 1, T, D]
    const S = past.key.shape[2]!;
    const pk = op.Reshape(past.key, [B, K, 1, S, D]); // [B, K, 1, S, D]
    const pv = op.Reshape(past.value, [B, K, 1, S, D]); // [B, K, 1, S, D]
    const sPast = op.MatMul(qg, op.Transpose(pk, [0, 1, 2, 4, 3])); // [B, K, G, T, S]
    const sNew = op.MatMul(qg, op.Transpose(kg, [0, 1, 2, 4, 3])); // [B, K, G, T, T]
    const scores = op.Add(op.Mul(op.Concat([sPast, sNew], -1), scale), bias); // [B, K, G, T, S+T]
    const [pPast, pNew] = op.Split(op.Softmax(scores, -1), [S, T], -1) as [Value, Value];
    ctxv = op.Add(op.MatMul(pPast, pv), op.MatMul(pNew, vg)); // [B, K, G, T, D]
  }
  return finish(ctxv);
}

/** Query rows per causal block for T tokens: the largest divisor of T not above `block` (T when off). */
function causalBlockRows(T: number, block: number): number {
  if (block <= 0 || block >= T) return T;
  for (let r = block; r > 1; r--) if (T % r === 0) return r;
  return T;
}

/**
 * The stacked product split into query blocks of `rows` tokens. Block i (queries [i·rows, (i+1)·rows))
 * reads only the keys [0, (i+1)·rows): the causal mask sets every later one to exactly 0 probability, so
 * leaving them out changes nothing but skips (NB − 1) / 2NB of the score and context GEMMs, and of the
 * mask/softmax passes and the probabilities kept for the backward (flash attention's block skipping).
 * Returns the context [B, H, T, D].
 */
function causalBlocks(q: Value, k: Value, vt: Value, bias: Value, scale: number, G: number, rows: number): Value {
  const [B, H, T, D] = q.shape as [number, number, number, number];
  const K = H / G;
  const nb = T / rows;
  const qs = op.Split(q, new Array<number>(nb).fill(rows), 2); // nb × [B, H, rows, D]
  const out: Value[] = [];
  for (let i = 0; i < nb; i++) {
    const s = i * rows;
    const e = s + rows;
    const ki = e === T ? k : op.Slice(k, [0], [e], [2]); // [B, K, e, D]
    const vi = e === T ? vt : op.Slice(vt, [0], [e], [2]); // [B, K, e, D]
    const bi = op.Slice(bias, [s, 0], [e, e], [3, 4]); // [B, 1, 1, rows, e]
    const qi = op.Reshape(qs[i]!, [B, K, G * rows, D]); // [B, K, G·rows, D]
    let ctxi: Value;
    const f = nnFormulation(q.graph);
    if (f.attentionCore === 'function' && f.attentionKeyTiles && e > rows) ctxi = attentionTiles(qi, ki, vi, bi, G, scale, rows);
    else if (f.attentionCore === 'function') ctxi = attentionBlock(q.graph, qi, ki, vi, bi, G, scale);
    else {
      const scores = op.Mul(op.MatMul(qi, op.Transpose(ki, [0, 1, 3, 2])), scale); // [B, K, G·rows, e]
      const masked = op.Add(op.Reshape(scores, [B, K, G, rows, e]), bi); // [B, K, G, rows, e]
      ctxi = op.MatMul(op.Reshape(op.Softmax(masked, -1), [B, K, G * rows, e]), vi);
    }
    out.push(op.Reshape(ctxi, [B, H, rows, D])); // [B, H, rows, D]
  }
  return op.Concat(out, 2); // [B, H, T, D]
}
