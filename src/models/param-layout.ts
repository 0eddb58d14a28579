// Trainable parameters travel as ONE flat float32 vector (and so do their gradients and optimizer state):
// DESIGN.md measured that many small inputs/outputs cost page faults and session set-up, and a flat vector
// lets the optimizer and gradient clipping run as a single fused graph over contiguous memory.
// Inside the graph each parameter is a Slice + Reshape of the flat input; gradients are concatenated back.

import { TsFinetuneError } from '../core/errors.js';
import { numel } from '../core/tensor.js';
import { op, type Graph, type Value } from '../graph/index.js';

export interface ParamSpec {
  name: string;
  shape: number[];
}

export class ParamLayout {
  readonly specs: readonly ParamSpec[];
  readonly offsets: ReadonlyMap<string, number>;
  readonly size: number;

  constructor(specs: readonly ParamSpec[]) {
    this.specs = specs;
    const offsets = new Map<string, number>();
    let off = 0;
    for (const s of specs) {
      if (offsets.has(s.name)) throw new TsFinetuneError('INVALID_ARGUMENT', `Parameter '${s.name}' listed twice`);
      offsets.set(s.name, off);
      off += numel(s.shape);
    }
    this.offsets = offsets;
    this.size = off;
  }

  spec(name: string): ParamSpec {
    const s = this.specs.find((p) => p.name === name);
    if (!s) throw new TsFinetuneError('MISSING_TENSOR', `No trainable parameter '${name}'`);
    return s;
  }

  /** A view of `name` inside the flat vector (shares memory). */
  view(flat: Float32Array, name: string): Float32Array {
    const off = this.offsets.get(name);
    if (off === undefined) throw new TsFinetuneError('MISSING_TENSOR', `No trainable parameter '${name}'`);
    return flat.subarray(off, off + numel(this.spec(name).shape));
  }

  /** Pack named arrays into a new flat vector. */
  pack(values: (name: string) => Float32Array): Float32Array {
    const flat = new Float32Array(this.size);
    for (const s of this.specs) {
      const v = values(s.name);
      if (v.length !== numel(s.shape)) {
        throw new TsFinetuneError('SHAPE_MISMATCH', `Parameter '${s.name}' has ${v.length} values, expected ${numel(s.shape)}`);
      }
      flat.set(v, this.offsets.get(s.name)!);
    }
    return flat;
  }

  /** Graph side: the flat input split into shaped parameter values. */
  unflatten(flat: Value): Map<string, Value> {
    const out = new Map<string, Value>();
    for (const s of this.specs) {
      const off = this.offsets.get(s.name)!;
      out.set(s.name, op.Reshape(op.Slice(flat, [off], [off + numel(s.shape)], [0]), s.shape));
    }
    return out;
  }

  /** Graph side: per-parameter gradients concatenated in layout order ([P]). */
  flatten(g: Graph, grads: ReadonlyMap<string, Value>): Value {
    const parts = this.specs.map((s) => {
      const gv = grads.get(s.name);
      if (!gv) throw new TsFinetuneError('GRAPH_ERROR', `No gradient for '${s.name}'`);
      return op.Reshape(gv, [numel(s.shape)]);
    });
    if (parts.length === 0) throw new TsFinetuneError('GRAPH_ERROR', `${g.name}: no trainable parameters`);
    return op.Concat(parts, 0);
  }
}
