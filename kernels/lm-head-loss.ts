// The causal-LM head and loss in token chunks, for a FROZEN head weight (LoRA / QLoRA): an ONNX function
//   (h [N, C], W [V, C], targets [N] int64) → (lossSum, count, correct)
// = Σ over valid rows of −log softmax(h·Wᵀ)[target], the number of valid rows (target ≠ −100), and how many
// of them the argmax predicts — src/nn/loss.ts causalLmLoss on the head's logits — with its own
// gradient dh that recomputes each chunk's logits instead of keeping any:
//   dlogits = gy·valid·(softmax(h·Wᵀ) − onehot(target))   (the Exp + ScatterElements(add) form, DESIGN.md)
//   dh      = dlogits · W
// Why: the plain head + loss keeps [N, V] float32 buffers alive from the forward into the backward (the
// log-probabilities, then probabilities and dlogits: 125 MB each per 1k tokens at V = 32000), the largest
// activations left once the decoder blocks are checkpointed. Here at most one chunk of rows is live: each
// chunk starts only after the previous one finished (a zero-copy Reshape alias on its result), in the
// forward and in the backward. W is float32 (an ordinary MatMul, pre-packed by ORT) or 16-bit, cast in row
// blocks as kernels/half-linear.ts does. The gradient reaches h only: W must not be trained (callers check).
// Not here: when to use it (src/models/step-graph.ts: with gradient checkpointing and the causal-LM objective).

import { TsFinetuneError } from '../src/core/index.js';
import { attr, defineFunction, KERNEL_DOMAIN, op, type DefinedFunction, type Graph, type Value } from '../src/graph/index.js';
import { registerFunctionGradient } from '../src/autodiff/index.js';

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

/** `x` (same dtype and shape) that exists only once `dep` does (a Reshape alias: no copy). */
function aliasAfter(g: Graph, x: Value, dep: Value): Value {
  const empty = g.node('Shape', [dep], { start: attr.int(0), end: attr.int(0) }, [{ dtype: 'int64', shape: [0] }])[0]!;
  const shape = op.Concat([g.ints(x.shape), empty], 0); // = x.shape
  return g.node('Reshape', [x, shape], {}, [{ dtype: x.dtype, shape: x.shape }])[0]!;
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
  const wa = aliasAfter(g, w, d);
  let acc: Value | undefined;
  for (const r of ranges(V, Math.max(1, Math.floor(W_CHUNK_BYTES / (4 * C))))) {
    const part = op.MatMul(op.Slice(d, [r[0]], [r[1]], [1]), wRows(wa, r)); // [n, C]
    acc = acc === undefined ? part : op.Add(acc, part);
  }
  return acc!;
}

/**
 * Σ −log p(target), valid rows, argmax hits of logits [n, V] (src/nn/loss.ts tokenScores' formulation,
 * restated: kernels/ may not import nn): LogSoftmax, GatherElements at the target, ReduceMax for argmax.
 */
function chunkLoss(logits: Value, targets: Value): { loss: Value; count: Value; correct: Value } {
  const logp = op.LogSoftmax(logits, 1); // [n, V]
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

function specInputs(s: Shapes): { name: string; dtype: Value['dtype']; shape: number[] }[] {
  return [
    { name: 'h', dtype: 'float32', shape: [s.N, s.C] },
    { name: 'w', dtype: s.wDtype, shape: [s.V, s.C] },
    { name: 'targets', dtype: 'int64', shape: [s.N] },
  ];
}

function backwardFunction(s: Shapes): DefinedFunction {
  const name = `LmHeadLossDh_${key(s)}`;
  let f = fns.get(name);
  if (f) return f;
  f = defineFunction(
    { name, inputs: [...specInputs(s), { name: 'gy', dtype: 'float32', shape: [] }], docString: `dh of LmHeadLoss, ${s.per} rows at a time (kernels/lm-head-loss.ts)` },
    (g, [h, w, targets, gy]) => {
      const parts: Value[] = [];
      let prev: Value = gy!;
      for (const r of ranges(s.N, s.per)) {
        const hc = rows(aliasAfter(g, h!, prev), r); // [n, C], after the previous chunk's dh
        const tc = rows(targets!, r); // [n]
        const valid = op.Cast(op.Not(op.Equal(tc, -100)), 'float32'); // [n]
        const idx = op.Unsqueeze(op.Where(op.Equal(tc, -100), 0, tc), [1]); // [n, 1]
        const p = op.Exp(op.LogSoftmax(logitsOf(g, hc, w!), 1)); // [n, V]
        const minusOne = op.Expand(g.scalar(-1), [r[1] - r[0], 1]);
        const dl = op.Mul(op.ScatterElements(p, idx, minusOne, 1, 'add'), op.Unsqueeze(op.Mul(valid, gy!), [1])); // [n, V]
        const dh = timesW(g, dl, w!); // [n, C]
        parts.push(dh);
        prev = dh;
      }
      return [parts.length === 1 ? parts[0]! : op.Concat(parts, 0)];
    },
  );
  fns.set(name, f);
  return f;
}

function forwardFunction(s: Shapes): DefinedFunction {
  const name = `LmHeadLoss_${key(s)}`;
  let f = fns.get(name);
  if (f) return f;
  f = defineFunction(
    { name, inputs: specInputs(s), docString: `causal-LM head + loss over ${s.N} rows, ${s.per} at a time (kernels/lm-head-loss.ts)` },
    (g, [h, w, targets]) => {
      let lossSum: Value | undefined;
      let count: Value | undefined;
      let correct: Value | undefined;
      for (const r of ranges(s.N, s.per)) {
        const hc = rows(lossSum && correct ? aliasAfter(g, aliasAfter(g, h!, lossSum), correct) : h!, r); // after the previous chunk
        const { loss: l, count: c, correct: k } = chunkLoss(logitsOf(g, hc, w!), rows(targets!, r));
        lossSum = lossSum ? op.Add(lossSum, l) : l;
        count = count ? op.Add(count, c) : c;
        correct = correct ? op.Add(correct, k) : k;
      }
      return [lossSum!, count!, correct!];
    },
  );
  fns.set(name, f);
  registerFunctionGradient(KERNEL_DOMAIN, name, (c) => {
    const gy = c.dy(0);
    if (!c.needs(0) || gy === null) return [null, null, null];
    if (c.needs(1)) throw new TsFinetuneError('GRAPH_ERROR', 'LmHeadLoss: the head weight is trainable; this kernel differentiates h only');
    return [backwardFunction(s).call(c.g, [c.x(0), c.x(1), c.x(2), gy])[0]!, null, null];
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
  const [lossSum, count, correct] = forwardFunction({ N, C, V, wDtype: w.dtype, per }).call(g, [h, w, targets]);
  return { lossSum: lossSum!, count: count!, correct: correct! };
}
