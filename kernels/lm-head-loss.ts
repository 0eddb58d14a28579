// The causal-LM head and loss in token chunks, for a FROZEN head weight (LoRA / QLoRA): an ONNX function
//   (h [N, C], W [V, C], targets [N] int64) → (lossSum, count, correct, dh)
// = Σ over valid rows of −log softmax(h·Wᵀ)[target], the number of valid rows (target ≠ −100), how many
// of them the argmax predicts — src/nn/loss.ts causalLmLoss on the head's logits — and d lossSum / dh,
// computed chunk by chunk while the chunk's log-probabilities exist:
//   dh = valid·(softmax(h·Wᵀ) − onehot(target))·W   (the Exp + ScatterElements(add) form, DESIGN.md)
// The gradient rule only scales dh by the upstream gradient (a scalar): lossSum is the function's only
// differentiable output. Why: the plain head + loss keeps [N, V] float32 buffers alive from the forward into
// the backward (the log-probabilities, then probabilities and dlogits: 125 MB each per 1k tokens at
// V = 32000), the largest activations left once the decoder blocks are checkpointed. Here at most one
// chunk's [n, V] buffers are live: each chunk starts only after the previous one finished (zero-copy
// Reshape aliases on its results). The first version recomputed each chunk's logits in the backward
// instead: one more [N, C]·[C, V] GEMM per step for the [N, C] dh this one keeps (8 MB at 2 × 1024 tokens,
// C = 1024). W is float32 (an ordinary MatMul, pre-packed by ORT) or 16-bit, cast in row blocks as
// kernels/half-linear.ts does. The gradient reaches h only: W must not be trained (callers check).
// Not here: when to use it (src/models/step-graph.ts: with gradient checkpointing and the causal-LM
// objective; src/nn/formulation.ts `lmHeadLoss` for steps without checkpointing).

import { TsFinetuneError } from '../src/core/index.js';
import { defineFunction, KERNEL_DOMAIN, op, type DefinedFunction, type Graph, type Value } from '../src/graph/index.js';
import { registerFunctionGradient } from '../src/autodiff/index.js';
import { aliasAfter, sumInOrder } from './ordering.js';

/** Rows per chunk so that one chunk's [rows, V] float32 logits stay under this (default 32 MiB). */
export const DEFAULT_LOGITS_CHUNK_BYTES = 32 * 2 ** 20;
/** float32 bytes of a 16-bit W cast at once (as kernels/half-linear.ts). */
const W_CHUNK_BYTES = 4 * 2 ** 20;

export interface LmHeadLossOptions {
  /** Largest float32 [rows, V] logits chunk in bytes (tests make it small to force several chunks). */
  chunkBytes?: number;
}

export interface LmHeadLoss {
  lossSum: Value; // [] float32
  count: Value; // [] float32
  correct: Value; // [] float32
}

function ranges(n: number, per: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += per) out.push([s, Math.min(n, s + per)]);
  return out;
}

function rows(x: Value, [s, e]: [number, number]): Value {
  return s === 0 && e === x.shape[0] ? x : op.Slice(x, [s], [e], [0]);
}

/** W's rows [s, e) as float32. */
function wRows(w: Value, r: [number, number]): Value {
  const b = rows(w, r);
  return b.dtype === 'float32' ? b : op.Cast(b, 'float32');
}

/**
 * h [n, C] · Wᵀ → [n, V]. A 16-bit W's row blocks are cast after `h` exists (an alias of W anchored on
 * it): unanchored, ORT hoisted every block's cast to the start of the graph, holding all of W in float32.
 */
function logitsOf(g: Graph, h: Value, w: Value): Value {
  if (w.dtype === 'float32') return op.MatMul(h, op.Transpose(w, [1, 0])); // FusedMatMul(transB): no copy of W
  const [V, C] = w.shape as [number, number];
  const wa = aliasAfter(g, w, h);
  const parts = ranges(V, Math.max(1, Math.floor(W_CHUNK_BYTES / (4 * C)))).map((r) => op.MatMul(h, op.Transpose(wRows(wa, r), [1, 0])));
  return parts.length === 1 ? parts[0]! : op.Concat(parts, 1);
}

/** dlogits [n, V] · W → [n, C] (a 16-bit W cast block by block after `d` exists). */
function timesW(g: Graph, d: Value, w: Value): Value {
  if (w.dtype === 'float32') return op.MatMul(d, w);
  const [V, C] = w.shape as [number, number];
  const rs = ranges(V, Math.max(1, Math.floor(W_CHUNK_BYTES / (4 * C))));
  // Block k's cast waits for the sum of blocks < k (ordering.ts): one [n, C] product alive at a time.
  return sumInOrder(g, w, d, rs.length, (k, wa) => op.MatMul(op.Slice(d, [rs[k]![0]], [rs[k]![1]], [1]), wRows(wa, rs[k]!))); // [n, C]
}

/**
 * Σ −log p(target), valid rows, argmax hits of log-probabilities [n, V] (src/nn/loss.ts tokenScores'
 * formulation, restated: kernels/ may not import nn): GatherElements at the target, ReduceMax for argmax.
 */
function chunkLoss(logp: Value, targets: Value): { loss: Value; count: Value; correct: Value } {
  const validB = op.Not(op.Equal(targets, -100)); // [n]
  const valid = op.Cast(validB, 'float32');
  const idx = op.Unsqueeze(op.Where(validB, targets, 0), [1]); // [n, 1]; ignored rows read index 0, masked below
  const picked = op.Squeeze(op.GatherElements(logp, idx, 1), [1]); // [n]
  const best = op.Squeeze(op.ReduceMax(logp, [1]), [1]); // [n]
  const correct = op.Mul(op.Cast(op.GreaterOrEqual(picked, best), 'float32'), valid);
  return {
    loss: op.Neg(op.ReduceSum(op.Mul(picked, valid), undefined, false)),
    count: op.ReduceSum(valid, undefined, false),
    correct: op.ReduceSum(correct, undefined, false),
  };
}

interface Shapes {
  N: number;
  C: number;
  V: number;
  wDtype: Value['dtype'];
  per: number;
}

const fns = new Map<string, DefinedFunction>();

function key(s: Shapes): string {
  return `${s.wDtype}_${s.N}x${s.C}_V${s.V}_r${s.per}`;
}

/**
 * One chunk's d lossSum / dh: (softmax − onehot(target))·W, rows of ignored targets zero. The validity
 * scales the [n, C] product, not the [n, V] probabilities: one pass over the chunk's logits fewer.
 */
function chunkDh(g: Graph, logp: Value, targets: Value, w: Value): Value {
  const n = targets.shape[0]!;
  const ignored = op.Equal(targets, -100); // [n]
  const idx = op.Unsqueeze(op.Where(ignored, 0, targets), [1]); // [n, 1]
  const minusOne = op.Expand(g.scalar(-1), [n, 1]);
  const dl = op.ScatterElements(op.Exp(logp), idx, minusOne, 1, 'add'); // [n, V]
  return op.Mul(timesW(g, dl, w), op.Unsqueeze(op.Cast(op.Not(ignored), 'float32'), [1])); // [n, C]
}

function lossFunction(s: Shapes): DefinedFunction {
  const name = `LmHeadLoss_${key(s)}`;
  let f = fns.get(name);
  if (f) return f;
  f = defineFunction(
    {
      name,
      inputs: [
        { name: 'h', dtype: 'float32', shape: [s.N, s.C] },
        { name: 'w', dtype: s.wDtype, shape: [s.V, s.C] },
        { name: 'targets', dtype: 'int64', shape: [s.N] },
      ],
      docString: `causal-LM head + loss and its dh over ${s.N} rows, ${s.per} at a time (kernels/lm-head-loss.ts)`,
    },
    (g, [h, w, targets]) => {
      let lossSum: Value | undefined;
      let count: Value | undefined;
      let correct: Value | undefined;
      const dh: Value[] = [];
      for (const r of ranges(s.N, s.per)) {
        // After the previous chunk's dh, loss and argmax hits: all its reads of its [n, V] buffers are done.
        const prev = dh[dh.length - 1];
        const hc = rows(prev ? aliasAfter(g, aliasAfter(g, aliasAfter(g, h!, prev), lossSum!), correct!) : h!, r);
        const tc = rows(targets!, r);
        const logp = op.LogSoftmax(logitsOf(g, hc, w!), 1); // [n, V]
        const { loss: l, count: c, correct: k } = chunkLoss(logp, tc);
        lossSum = lossSum ? op.Add(lossSum, l) : l;
        count = count ? op.Add(count, c) : c;
        correct = correct ? op.Add(correct, k) : k;
        dh.push(chunkDh(g, logp, tc, w!));
      }
      return [lossSum!, count!, correct!, dh.length === 1 ? dh[0]! : op.Concat(dh, 0)];
    },
  );
  fns.set(name, f);
  registerFunctionGradient(KERNEL_DOMAIN, name, (c) => {
    const gy = c.dy(0);
    if (!c.needs(0) || gy === null) return [null, null, null];
    if (c.needs(1)) throw new TsFinetuneError('GRAPH_ERROR', 'LmHeadLoss: the head weight is trainable; this kernel differentiates h only');
    return [op.Mul(c.y(3), gy), null, null];
  });
  return f;
}

/**
 * The causal-LM loss of hidden states `h` [N, C] through a frozen head `w` [V, C] (float32, float16 or
 * bfloat16), over `targets` [N] (−100 = ignored), computed `chunkBytes` of logits at a time.
 * @example
 * const { lossSum, count, correct } = lmHeadLoss(g, op.Reshape(hidden, [B * T, C]), lmHeadWeight, op.Reshape(targets, [B * T]));
 */
export function lmHeadLoss(g: Graph, h: Value, w: Value, targets: Value, opts: LmHeadLossOptions = {}): LmHeadLoss {
  const [N, C] = h.shape as [number, number];
  const [V, Cw] = w.shape as [number, number];
  if (h.rank !== 2 || w.rank !== 2 || Cw !== C || targets.rank !== 1 || targets.shape[0] !== N) {
    throw new TsFinetuneError('SHAPE_MISMATCH', `lmHeadLoss: h [${h.shape.join(', ')}], W [${w.shape.join(', ')}], targets [${targets.shape.join(', ')}] do not fit [N, C], [V, C], [N]`);
  }
  if (h.dtype !== 'float32' || targets.dtype !== 'int64' || !['float32', 'float16', 'bfloat16'].includes(w.dtype)) {
    throw new TsFinetuneError('GRAPH_ERROR', `lmHeadLoss: h must be float32 (${h.dtype}), targets int64 (${targets.dtype}), W float32/float16/bfloat16 (${w.dtype})`);
  }
  const per = Math.max(1, Math.min(N, Math.floor((opts.chunkBytes ?? DEFAULT_LOGITS_CHUNK_BYTES) / (4 * V))));
  const [lossSum, count, correct] = lossFunction({ N, C, V, wDtype: w.dtype, per }).call(g, [h, w, targets]);
  return { lossSum: lossSum!, count: count!, correct: correct! };
}
