// Rotary position embeddings as in transformers: inv_freq = 1/θ^(2i/D), optional llama3 band rescaling,
// emb = cat(freqs, freqs), q' = q·cos + rotate_half(q)·sin with rotate_half(x) = cat(-x[D/2:], x[:D/2]).
// The tables are computed here in float64 then rounded to f32 (torch computes them in f32: differences are
// ~1e-7, far below the 1e-4 golden tolerance). Positions are gathered in-graph from position ids [B, T]:
// by com.microsoft RotaryEmbedding itself (default: one kernel, ~5× faster than the primitive chain in
// bench/lora-step.ts), or by Gather for the primitive form (src/nn/formulation.ts picks).

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { op, type Graph, type Value } from '../graph/index.js';
import { nnFormulation } from './formulation.js';

export interface RopeScaling {
  ropeType: 'llama3' | 'default' | 'linear';
  factor?: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
}

/** transformers' _compute_default_rope_parameters / _compute_llama3_parameters / linear scaling. */
export function ropeInvFreq(headDim: number, theta: number, scaling?: RopeScaling, rotaryDim = headDim): Float64Array {
  const half = rotaryDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / theta ** ((2 * i) / rotaryDim);
  if (!scaling || scaling.ropeType === 'default') return inv;
  const factor = scaling.factor ?? 1;
  if (scaling.ropeType === 'linear') return inv.map((f) => f / factor);
  const low = scaling.lowFreqFactor ?? 1;
  const high = scaling.highFreqFactor ?? 4;
  const oldCtx = scaling.originalMaxPositionEmbeddings ?? 8192;
  const lowWavelen = oldCtx / low;
  const highWavelen = oldCtx / high;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / factor;
    const smooth = (oldCtx / wavelen - low) / (high - low);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

/** cos/sin tables [maxPos, D] (halves duplicated, as HF's `emb = cat(freqs, freqs)`). */
export function ropeTables(invFreq: Float64Array, maxPos: number): { cos: Tensor; sin: Tensor } {
  const half = invFreq.length;
  const d = 2 * half;
  const cos = new Float32Array(maxPos * d);
  const sin = new Float32Array(maxPos * d);
  for (let p = 0; p < maxPos; p++) {
    for (let i = 0; i < half; i++) {
      // torch: freqs = (inv_freq_f32 · pos) in f32; mirror the f32 rounding of inv_freq and the product.
      const f = Math.fround(Math.fround(invFreq[i]!) * p);
      const c = Math.cos(f);
      const s = Math.sin(f);
      cos[p * d + i] = c;
      cos[p * d + half + i] = c;
      sin[p * d + i] = s;
      sin[p * d + half + i] = s;
    }
  }
  return { cos: new Tensor('float32', [maxPos, d], cos), sin: new Tensor('float32', [maxPos, d], sin) };
}

/**
 * What the attention blocks need to rotate q and k, in the graph's formulation (made before any
 * checkpoint segment, so every layer shares them): the per-token cos/sin [B, 1, T, D] for the primitive
 * form, or the position ids with the half tables [maxPos, D/2] that com.microsoft RotaryEmbedding reads.
 */
export interface RopeValues {
  positionIds: Value; // [B, T] int64
  cos?: Value; // [B, 1, T, D]
  sin?: Value; // [B, 1, T, D]
  cosCache?: Value; // [maxPos, D/2]
  sinCache?: Value; // [maxPos, D/2]
}

/** The rotation inputs for position ids [B, T] (see RopeValues). */
export function ropeCosSin(g: Graph, positionIds: Value, tables: { cos: Tensor; sin: Tensor }): RopeValues {
  if (nnFormulation(g).rope === 'fused') {
    // The fused op gathers its rows itself: only the first half of each table (the halves are equal).
    const [maxPos, d] = tables.cos.dims as [number, number];
    const half = (t: Tensor): Tensor => {
      const src = t.data as Float32Array;
      const out = new Float32Array(maxPos * (d / 2));
      for (let p = 0; p < maxPos; p++) out.set(src.subarray(p * d, p * d + d / 2), (p * d) / 2);
      return new Tensor('float32', [maxPos, d / 2], out);
    };
    return { positionIds, cosCache: g.constant(half(tables.cos)), sinCache: g.constant(half(tables.sin)) };
  }
  const cosT = g.constant(tables.cos);
  const sinT = g.constant(tables.sin);
  const cos = op.Unsqueeze(op.Gather(cosT, positionIds, 0), [1]); // [B, 1, T, D]
  const sin = op.Unsqueeze(op.Gather(sinT, positionIds, 0), [1]); // [B, 1, T, D]
  return { positionIds, cos, sin };
}

/**
 * x [B, H, T, D] → x·cos + rotate_half(x)·sin: com.microsoft RotaryEmbedding (one kernel; its gradient is
 * the same op with −sin) or the primitive Split/Neg/Concat/Mul/Add chain, as ropeCosSin chose for the graph.
 */
export function applyRope(x: Value, rope: RopeValues): Value {
  if (rope.cosCache && rope.sinCache) return op.RotaryEmbedding(x, rope.positionIds, rope.cosCache, rope.sinCache);
  if (rope.cos && rope.sin) return applyRopePrimitives(x, rope.cos, rope.sin);
  throw new TsFinetuneError('GRAPH_ERROR', 'applyRope: RopeValues carry neither cos/sin nor the RotaryEmbedding caches (make them with ropeCosSin)');
}

/** x [B, H, T, D] → x·cos + rotate_half(x)·sin from primitives (cos, sin [B, 1, T, D]). */
export function applyRopePrimitives(x: Value, cos: Value, sin: Value): Value {
  const d = x.shape[x.rank - 1]!;
  const [x1, x2] = op.Split(x, [d / 2, d / 2], -1) as [Value, Value];
  const rotated = op.Concat([op.Neg(x2), x1], -1); // [B, H, T, D]
  return op.Add(op.Mul(x, cos), op.Mul(rotated, sin));
}
