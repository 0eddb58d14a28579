// Ordering helpers for kernels/ functions: ORT runs a graph's nodes in an order of its own choosing, and
// independent nodes may all run before the node that consumes them. These helpers add data edges that
// cost no copy, so a kernel's big temporaries exist one at a time.
// - aliasAfter: a zero-copy Reshape of x that exists only once `dep` does (x's shape ++ an empty shape
//   taken from dep). Used to cast 16-bit weight chunks only when their consumer is about to run.
// - sumInOrder: Σ of parts built one after the other: part k is built from an input anchored on the sum
//   of parts 0..k−1. Measured why (bench/step-liveness.ts, QLoRA head of a 2048-wide model): with a
//   plain Add chain ORT ran all 62 chunk GEMMs of dlogits·W first and kept their [n, C] products alive
//   together (115 MB at 1k tokens); summed in order, one product is alive at a time.
// Not here: the kernels themselves (half-linear.ts, lm-head-loss.ts).

import { TsFinetuneError } from '../src/core/index.js';
import { attr, op, type Graph, type Value } from '../src/graph/index.js';

/** `x` (same dtype and shape) that exists only once `dep` does: Reshape to its own shape ++ an empty dim list from dep. */
export function aliasAfter(g: Graph, x: Value, dep: Value): Value {
  const empty = g.node('Shape', [dep], { start: attr.int(0), end: attr.int(0) }, [{ dtype: 'int64', shape: [0] }])[0]!;
  const shape = op.Concat([g.ints(x.shape), empty], 0); // = x.shape
  return g.node('Reshape', [x, shape], {}, [{ dtype: x.dtype, shape: x.shape }])[0]!;
}

/**
 * Σₖ part(k, src) for k < count, where each part reads `src`, given as an alias of `x` that exists only
 * once the running sum does (after `first` for k = 0): the parts are computed and added one by one.
 */
export function sumInOrder(g: Graph, x: Value, first: Value, count: number, part: (k: number, src: Value) => Value): Value {
  let acc: Value | undefined;
  for (let k = 0; k < count; k++) {
    const p = part(k, aliasAfter(g, x, acc ?? first));
    acc = acc === undefined ? p : op.Add(acc, p);
  }
  if (acc === undefined) throw new TsFinetuneError('GRAPH_ERROR', `sumInOrder: count must be ≥ 1, got ${count}`);
  return acc;
}
