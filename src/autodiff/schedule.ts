// Ordering edges ORT cannot remove. ORT picks its own topological order (not ours, and not memory-aware:
// DESIGN.md), so the only way to make node B run after node A is a data edge from A to B.
// `after(x, deps)` returns a value equal to x that exists only once every dep does:
//   e   = Shape(dep₀, start=0, end=0) [, Concat with the other deps' …]   an empty int64 [0], whatever deps hold
//   float x:  x + Cast(Size(e)) = x + 0                  (−0 becomes +0; NaN/inf in x or deps pass unchanged)
//   other x:  Reshape(x, Concat([x.shape], e))            (zero-copy alias in ORT)
// The float form keeps x's static shape visible to ORT's shape inference (a Reshape with a computed shape
// hides it from everything downstream) and can run in place when x dies there; on the checkpointed
// 12-layer bench it lowered peak RSS from 543 to ~520 MB (LoRA) and from 767 to ~750 MB (all weights). Only ConstantFolding could fold the edge (it knows the static shapes):
// the training session must disable it (session-options.ts; test/autodiff/checkpoint.test.ts checks).
// Not here: which edges to add (checkpoint.ts decides per segment).

import { isFloatDType } from '../core/dtype.js';
import { attr, op, type Graph, type Value } from '../graph/index.js';

export function after(g: Graph, x: Value, deps: readonly Value[]): Value {
  const uniq = [...new Set(deps)].filter((d) => d !== x);
  if (uniq.length === 0) return x;
  const empties = uniq.map((d) => g.node('Shape', [d], { start: attr.int(0), end: attr.int(0) }, [{ dtype: 'int64', shape: [0] }])[0]!);
  // Add has no float16/bfloat16 kernel on ORT's CPU EP (16-bit stored weights, e.g. norms of a 4-bit load):
  // those take the Reshape form, which works for every dtype.
  if (isFloatDType(x.dtype) && x.dtype !== 'float16' && x.dtype !== 'bfloat16') {
    const e = empties.length === 1 ? empties[0]! : op.Concat(empties, 0); // int64 [0]
    const size = g.node('Size', [e], {}, [{ dtype: 'int64', shape: [] }])[0]!; // 0
    return op.Add(x, op.Cast(size, x.dtype));
  }
  const shape = op.Concat([g.ints(x.shape), ...empties], 0); // = x.shape
  return g.node('Reshape', [x, shape], {}, [{ dtype: x.dtype, shape: x.shape }])[0]!;
}
