// Gradient rules of the index ops: the backward of a gather is a scatter-add of dy to the gathered
// positions (repeated indices add up), and the backward of a scatter gathers dy back.
// Gather on axis 0 (the embedding lookup: weight [V, C], ids [B, T]) uses ScatterND with indices [N, 1],
// so the index tensor stays N int64s instead of N·C; other axes use ScatterElements on a [P, N, Q] view.
// GatherElements returns its gradient in scattered form (types.ts, ScatterGrad) so a LogSoftmax before it
// can fuse into p − onehot without a dense zero tensor (DESIGN.md's fast cross-entropy gradient).
// Indices are integers: they never get a gradient.

import { TsFinetuneError } from '../core/errors.js';
import { attr, op, type Value } from '../graph/index.js';
import type { OpName, RuleEntry, ScatterGrad } from './types.js';
import { zeros } from './unbroadcast.js';

const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

/** ScatterND(data, indices [N, 1], updates [N, …], reduction='add'), emitted directly: only backward uses it. */
function scatterNdAdd(data: Value, indices: Value, updates: Value): Value {
  const ind = indices.dtype === 'int64' ? indices : op.Cast(indices, 'int64');
  return data.graph.node('ScatterND', [data, ind, updates], { reduction: attr.string('add') }, [{ dtype: data.dtype, shape: data.shape }])[0]!;
}

export const indexRules = {
  // y[pre, idx…, post] = data[pre, idx[…], post]        d data = scatter-add of dy at idx along axis
  Gather: (c) => {
    const data = c.node.in(0);
    const axis = c.node.attrInt('axis', 0);
    const n = c.node.in(1).size;
    const post = data.shape.slice(axis + 1);
    if (axis === 0) {
      const upd = op.Reshape(c.gy, [n, ...post]); // [N, …]
      return [scatterNdAdd(zeros(c.g, data.dtype, data.shape), op.Reshape(c.x(1), [n, 1]), upd), null];
    }
    const P = prod(data.shape.slice(0, axis));
    const Q = prod(post);
    const upd = op.Reshape(c.gy, [P, n, Q]); // [P, N, Q]
    const ind = op.Expand(op.Reshape(c.x(1), [1, n, 1]), [P, n, Q]); // [P, N, Q]
    const dd = op.ScatterElements(zeros(c.g, data.dtype, [P, data.shape[axis]!, Q]), ind, upd, 1, 'add');
    return [op.Reshape(dd, data.shape), null];
  },
  // y = data[…, idx[…], …] along axis                  d data = scatter-add(zeros, idx, dy)  (kept scattered)
  GatherElements: (c) => {
    const grad: ScatterGrad = {
      kind: 'scatter',
      shape: c.node.in(0).shape,
      indices: c.x(1),
      updates: c.gy,
      axis: c.node.attrInt('axis', 0),
    };
    return [grad, null];
  },
  // y = data with updates written (reduction 'none') or added ('add') at idx along axis
  //   d data = dy with the written positions zeroed ('none') or dy ('add');   d updates = gather(dy, idx)
  ScatterElements: (c) => {
    const reduction = c.node.attrString('reduction', 'none');
    const axis = c.node.attrInt('axis', 0);
    if (reduction !== 'none' && reduction !== 'add') {
      throw new TsFinetuneError('MISSING_GRADIENT_RULE', `ScatterElements with reduction '${reduction}' (node ${c.node.name}) has no gradient rule`, {
        node: c.node.name,
        op: 'ScatterElements',
      });
    }
    const upd = c.node.in(2);
    let dData: Value | null = null;
    if (c.needs(0)) dData = reduction === 'add' ? c.gy : op.ScatterElements(c.gy, c.x(1), zeros(c.g, upd.dtype, upd.shape), axis);
    const dUpd = c.needs(2) ? op.GatherElements(c.gy, c.x(1), axis) : null;
    return [dData, null, dUpd];
  },
} satisfies Partial<Record<OpName, RuleEntry>>;
