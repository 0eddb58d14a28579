// Matrix and neural-network ops: MatMul, (Log)Softmax, the fused ORT ops DESIGN.md measured as usable for
// training (SimplifiedLayerNormalization with its saved inv_std_var, com.microsoft RotaryEmbedding),
// SoftmaxCrossEntropyLoss, com.microsoft MatMulBnb4 (transB=1 only: transB=0 is silently wrong in ORT 1.30),
// and calls of model-local functions (kernels/).

import type { DType } from '../core/dtype.js';
import { TsFinetuneError } from '../core/errors.js';
import type { Graph, ValueType } from './graph.js';
import { matmulShape, normAxis, formatShape } from './shape-infer.js';
import { attr, type Attrs, type Value } from './value.js';

export function MatMul(a: Value, b: Value): Value {
  if (a.dtype !== b.dtype) throw new TsFinetuneError('GRAPH_ERROR', `MatMul: dtypes differ (${a.dtype} × ${b.dtype})`);
  return a.graph.node('MatMul', [a, b], {}, [{ dtype: a.dtype, shape: matmulShape(a.shape, b.shape) }])[0]!;
}

export function Softmax(x: Value, axis = -1): Value {
  return x.graph.node('Softmax', [x], { axis: attr.int(normAxis('Softmax', axis, x.rank)) }, [{ dtype: x.dtype, shape: x.shape }])[0]!;
}

export function LogSoftmax(x: Value, axis = -1): Value {
  return x.graph.node('LogSoftmax', [x], { axis: attr.int(normAxis('LogSoftmax', axis, x.rank)) }, [
    { dtype: x.dtype, shape: x.shape },
  ])[0]!;
}

/**
 * RMSNorm over the last axis: y = scale · x / sqrt(mean(x²) + eps). Returns [y, invStd] where invStd
 * ([..., 1]) is ORT's saved 1/rms, which the backward reuses.
 */
export function SimplifiedLayerNormalization(x: Value, scale: Value, epsilon: number): [Value, Value] {
  const inv = [...x.shape.slice(0, -1), 1];
  const [y, invStd] = x.graph.node(
    'SimplifiedLayerNormalization',
    [x, scale],
    { axis: attr.int(-1), epsilon: attr.float(epsilon), stash_type: attr.int(1) },
    [
      { dtype: x.dtype, shape: x.shape },
      { dtype: 'float32', shape: inv },
    ],
  );
  return [y!, invStd!];
}

/**
 * com.microsoft RotaryEmbedding on [B, N, S, D] (or [B, S, N·D] with numHeads) with HF's non-interleaved
 * rotate_half layout. cos/sin caches are [maxPos, rotaryDim/2]; positionIds [B, S] int64.
 */
export function RotaryEmbedding(
  x: Value,
  positionIds: Value,
  cosCache: Value,
  sinCache: Value,
  opts: { numHeads?: number; interleaved?: boolean; rotaryEmbeddingDim?: number } = {},
): Value {
  const g = x.graph;
  g.useOpset('com.microsoft', 1);
  const attrs: Attrs = { interleaved: attr.int(opts.interleaved ? 1 : 0) };
  if (opts.numHeads !== undefined) attrs.num_heads = attr.int(opts.numHeads);
  if (opts.rotaryEmbeddingDim !== undefined) attrs.rotary_embedding_dim = attr.int(opts.rotaryEmbeddingDim);
  return g.node('RotaryEmbedding', [x, positionIds, cosCache, sinCache], attrs, [{ dtype: x.dtype, shape: x.shape }], {
    domain: 'com.microsoft',
  })[0]!;
}

/** ONNX SoftmaxCrossEntropyLoss: scores [N, C, …], labels [N, …] int64 → [loss, logProb]. */
export function SoftmaxCrossEntropyLoss(
  scores: Value,
  labels: Value,
  opts: { reduction?: 'mean' | 'sum' | 'none'; ignoreIndex?: number } = {},
): [Value, Value] {
  const reduction = opts.reduction ?? 'mean';
  const attrs: Attrs = { reduction: attr.string(reduction) };
  if (opts.ignoreIndex !== undefined) attrs.ignore_index = attr.int(opts.ignoreIndex);
  const lossShape = reduction === 'none' ? labels.shape : [];
  const [loss, logProb] = scores.graph.node('SoftmaxCrossEntropyLoss', [scores, labels], attrs, [
    { dtype: scores.dtype, shape: lossShape },
    { dtype: scores.dtype, shape: scores.shape },
  ]);
  return [loss!, logProb!];
}

/**
 * x · dequant(W)ᵀ for a bitsandbytes-layout 4-bit weight W [N, K] (packed uint8, absmax per block).
 * Always transB=1 (see file header). Output [..., N].
 */
export function MatMulBnb4(
  x: Value,
  packed: Value,
  absmax: Value,
  opts: { K: number; N: number; blockSize: number; quantType: 'nf4' | 'fp4' },
): Value {
  const g = x.graph;
  if (x.shape[x.rank - 1] !== opts.K) {
    throw new TsFinetuneError('SHAPE_MISMATCH', `MatMulBnb4: input ${formatShape(x.shape)} does not end in K=${opts.K}`);
  }
  g.useOpset('com.microsoft', 1);
  return g.node(
    'MatMulBnb4',
    [x, packed, absmax],
    {
      K: attr.int(opts.K),
      N: attr.int(opts.N),
      block_size: attr.int(opts.blockSize),
      quant_type: attr.int(opts.quantType === 'nf4' ? 1 : 0),
      transB: attr.int(1),
    },
    [{ dtype: x.dtype, shape: [...x.shape.slice(0, -1), opts.N] }],
    { domain: 'com.microsoft' },
  )[0]!;
}

/** Call a model-local function registered with `graph.addFunction` (see function.ts). */
export function Call(
  g: Graph,
  fn: { domain: string; name: string },
  inputs: readonly (Value | null)[],
  outTypes: readonly ValueType[],
  attrs: Attrs = {},
): Value[] {
  return g.node(fn.name, inputs, attrs, outTypes, { domain: fn.domain });
}

export type { DType };
