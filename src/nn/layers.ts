// Linear, Embedding, RMSNorm and SiLU-gated MLP as graph fragments, following transformers'
// modeling_llama.py. Shapes: B batch, T tokens, C model dim, F ffn dim, V vocab.
// RMSNorm is ORT's SimplifiedLayerNormalization by default, or primitives (src/nn/formulation.ts).

import { op, type Value } from '../graph/index.js';
import type { BuildContext } from './context.js';
import { nnFormulation } from './formulation.js';

/** y = x · Wᵀ (+ b), W in HF layout [out, in]; 4-bit weights use MatMulBnb4; adapters wrap the result. */
export function linear(ctx: BuildContext, modulePath: string, x: Value, opts: { bias?: boolean } = {}): Value {
  const w = ctx.linearWeight(modulePath);
  let y: Value;
  if (w.kind === 'dense') {
    // ORT fuses this Transpose into FusedMatMul (transB); storing frozen weights pre-transposed measured
    // no faster (docs/performance.md).
    y = op.MatMul(x, op.Transpose(w.weight, [1, 0])); // [..., out]
  } else {
    y = op.MatMulBnb4(x, w.packed, w.absmax, { K: w.inFeatures, N: w.outFeatures, blockSize: w.blockSize, quantType: w.quantType });
  }
  if (opts.bias) y = op.Add(y, ctx.param(`${modulePath}.bias`));
  const adapter = ctx.adaptersEnabled ? ctx.adapters.get(modulePath) : undefined;
  return adapter ? adapter.apply(ctx, modulePath, x, y, w) : y;
}

/** Token embedding lookup: ids [B, T] int64 → [B, T, C]. */
export function embedding(ctx: BuildContext, name: string, ids: Value): Value {
  return op.Gather(ctx.param(`${name}.weight`), ids, 0);
}

/**
 * RMSNorm: w · x / sqrt(mean(x², -1) + eps), in fp32 (transformers' LlamaRMSNorm). The graph's formulation
 * picks ORT's SimplifiedLayerNormalization (one kernel; its saved inv_std_var feeds the backward rule) or
 * the primitive chain, which needs no special rule and matches torch to rounding.
 */
export function rmsNorm(ctx: BuildContext, name: string, x: Value, eps: number): Value {
  const w = ctx.param(`${name}.weight`);
  if (nnFormulation(ctx.g).rmsNorm === 'fused') return op.SimplifiedLayerNormalization(x, w, eps)[0];
  const ms = op.ReduceMean(op.Mul(x, x), [-1]); // [..., 1]
  const inv = op.Reciprocal(op.Sqrt(op.Add(ms, eps)));
  return op.Mul(op.Mul(x, inv), w);
}

export function silu(x: Value): Value {
  return op.Mul(x, op.Sigmoid(x));
}

/** down_proj(silu(gate_proj(x)) * up_proj(x)). */
export function gatedMlp(ctx: BuildContext, path: string, x: Value): Value {
  const gate = linear(ctx, `${path}.gate_proj`, x); // [B, T, F]
  const up = linear(ctx, `${path}.up_proj`, x); // [B, T, F]
  return linear(ctx, `${path}.down_proj`, op.Mul(silu(gate), up)); // [B, T, C]
}
