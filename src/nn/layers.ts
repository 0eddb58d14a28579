// Linear, Embedding, RMSNorm and SiLU-gated MLP as graph fragments, following transformers'
// modeling_llama.py. Shapes: B batch, T tokens, C model dim, F ffn dim, V vocab.

import { Tensor } from '../core/tensor.js';
import { op, type Value } from '../graph/index.js';
import type { BuildContext } from './context.js';
import { nnFormulation } from './formulation.js';

/** y = x · Wᵀ (+ b), W in HF layout [out, in]; 4-bit weights use MatMulBnb4; adapters wrap the result. */
export function linear(ctx: BuildContext, modulePath: string, x: Value, opts: { bias?: boolean } = {}): Value {
  const w = ctx.linearWeight(modulePath);
  let y: Value;
  if (w.kind === 'dense') {
    y = op.MatMul(x, weightT(ctx, w.weight)); // [..., out]
  } else {
    y = op.MatMulBnb4(x, w.packed, w.absmax, { K: w.inFeatures, N: w.outFeatures, blockSize: w.blockSize, quantType: w.quantType });
  }
  if (opts.bias) y = op.Add(y, ctx.param(`${modulePath}.bias`));
  const adapter = ctx.adaptersEnabled ? ctx.adapters.get(modulePath) : undefined;
  return adapter ? adapter.apply(ctx, modulePath, x, y, w) : y;
}

/**
 * Wᵀ [in, out] of a linear weight W [out, in]. A trainable W (a graph input) is transposed in the graph.
 * A frozen one (an initializer) is, with the 'pretransposed' formulation, stored transposed under a
 * derived name (`<name>.__T`, made once per graph): training sessions run with ConstantFolding off, so a
 * Transpose of an initializer would otherwise be a node the graph carries (ORT fuses it into FusedMatMul
 * with transB, see docs/performance.md).
 */
export function weightT(ctx: BuildContext, weight: Value): Value {
  const g = ctx.g;
  const entry = weight.kind === 'initializer' ? g.initializers.get(weight.name) : undefined;
  if (!entry || nnFormulation(g).frozenLinear !== 'pretransposed' || weight.rank !== 2 || weight.dtype !== 'float32') {
    return op.Transpose(weight, [1, 0]);
  }
  const name = `${weight.name}.__T`;
  const hit = g.initializers.get(name);
  if (hit) return hit.value;
  const [rows, cols] = weight.shape as [number, number];
  const src = entry.tensor.data as Float32Array;
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = src[r * cols + c]!;
  return g.initializer(name, new Tensor('float32', [cols, rows], t), { qualified: true, external: entry.external });
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
