// Reverse-mode autodiff over a built graph: backward(g, loss, wrt) appends the gradient computation to g
// (after the forward, in emission order) and returns dloss/dw for every w in wrt.
// Walk (micrograd's, on a static graph): the nodes on a path from some wrt to the loss, in reverse
// emission order; each node's rule (rules.ts) turns its outputs' gradients into its inputs' gradients;
// several contributions to one value are summed with Add in the order they are emitted.
// Not here: the rules (rules-*.ts), the segment schedule and recompute (checkpoint.ts).

import { isFloatDType } from '../core/dtype.js';
import { TsFinetuneError } from '../core/errors.js';
import { op, type Graph, type Node, type Segment, type Value } from '../graph/index.js';
import { SegmentScheduler, type CheckpointPlan } from './checkpoint.js';
import { ruleFor } from './rules.js';
import { after } from './schedule.js';
import type { GradContext, ScatterGrad } from './types.js';
import { materialize, zeros } from './unbroadcast.js';

export interface BackwardOptions {
  /** dloss/dloss, shaped like loss (default: ones). */
  seed?: Value;
  /** Schedule over g.segments: weight-gradient chaining and gradient checkpointing (checkpoint.ts). */
  checkpoint?: CheckpointPlan;
}

type Grad = Value | ScatterGrad;
const isScatter = (t: Grad): t is ScatterGrad => (t as ScatterGrad).kind === 'scatter';

function scopeOf(n: Node): string {
  const i = n.name.lastIndexOf('/');
  return i < 0 ? '' : n.name.slice(0, i);
}

function readInts(g: Graph, n: Node, i: number): number[] | undefined {
  const v = n.inputs[i];
  if (!v) return undefined;
  const t = v.kind === 'initializer' ? g.initializers.get(v.name)?.tensor : undefined;
  if (!t || (t.dtype !== 'int64' && t.dtype !== 'int32')) {
    throw new TsFinetuneError('GRAPH_ERROR', `Node ${n.name} (${n.opType}): input ${i} (${v.name}) must be a constant integer tensor for its gradient rule`);
  }
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

/**
 * Append the gradient of `loss` with respect to each `wrt` value to `g`. Returns a map wrt → gradient
 * (same dtype and shape); a wrt value the loss does not depend on gets zeros.
 * @example
 * const grads = backward(g, loss, [w1, w2]);
 * g.output(grads.get(w1)!, 'grad.w1');
 */
export function backward(g: Graph, loss: Value, wrt: readonly Value[], opts: BackwardOptions = {}): Map<Value, Value> {
  if (loss.graph !== g) throw new TsFinetuneError('GRAPH_ERROR', `backward: loss ${loss.name} belongs to graph '${loss.graph.name}', not '${g.name}'`);
  if (!isFloatDType(loss.dtype)) throw new TsFinetuneError('INVALID_ARGUMENT', `backward: loss ${loss.name} is ${loss.dtype}, not a float`);
  for (const w of wrt) {
    if (w.graph !== g) throw new TsFinetuneError('GRAPH_ERROR', `backward: ${w.name} belongs to graph '${w.graph.name}', not '${g.name}'`);
    if (!isFloatDType(w.dtype)) throw new TsFinetuneError('INVALID_ARGUMENT', `backward: cannot differentiate with respect to ${w.name} (${w.dtype})`);
  }
  const seed = opts.seed ?? (loss.rank === 0 ? g.scalar(1, loss.dtype) : op.Expand(g.scalar(1, loss.dtype), loss.shape));
  if (seed.dtype !== loss.dtype || seed.shape.length !== loss.rank || seed.shape.some((d, i) => d !== loss.shape[i])) {
    throw new TsFinetuneError('SHAPE_MISMATCH', `backward: seed ${seed} does not match loss ${loss}`);
  }
  const nodes = g.nodes;
  const forwardEnd = loss.producer ? loss.producer.index + 1 : 0;

  // Values that depend on some wrt (forward sweep; non-differentiable ops and integer outputs stop it).
  const dep = new Set<Value>(wrt);
  for (let i = 0; i < forwardEnd; i++) {
    const n = nodes[i]!;
    if (!n.inputs.some((v) => v && dep.has(v)) || ruleFor(n) === 'nondiff') continue;
    for (const o of n.outputs) if (isFloatDType(o.dtype)) dep.add(o);
  }
  // Of those, the values the loss depends on (reverse sweep): the nodes in between get rules.
  const live = new Set<Value>([loss]);
  const onPath = new Uint8Array(forwardEnd);
  for (let i = forwardEnd - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!n.outputs.some((o) => live.has(o) && dep.has(o))) continue;
    onPath[i] = 1;
    for (const v of n.inputs) if (v && dep.has(v)) live.add(v);
  }

  const wrtSet = new Set(wrt);
  const grads = new Map<Value, Grad>();
  const sched = opts.checkpoint ? new SegmentScheduler(g, opts.checkpoint, forwardEnd) : undefined;

  const dense = (v: Value): Value | null => {
    const t = grads.get(v);
    if (!t) return null;
    if (!isScatter(t)) return t;
    const d = materialize(g, t);
    grads.set(v, d);
    return d;
  };

  const segmentValues = (seg: Segment): Value[] => nodes.slice(seg.start, seg.end).flatMap((n) => n.outputs);

  const accumulate = (v: Value, t: Grad, from: Node): void => {
    const shape = t.shape;
    const dtype = isScatter(t) ? t.updates.dtype : t.dtype;
    if (dtype !== v.dtype || shape.length !== v.rank || shape.some((d, i) => d !== v.shape[i])) {
      throw new TsFinetuneError(
        'GRAPH_ERROR',
        `Gradient rule of ${from.opType} (node ${from.name}) gave ${dtype}[${shape.join(', ')}] for ${v.name}, which is ${v.dtype}[${v.shape.join(', ')}]`,
      );
    }
    const prev = grads.get(v);
    let next: Grad;
    if (!prev) next = t;
    else if (isScatter(prev) && isScatter(t) && prev.indices === t.indices && prev.axis === t.axis) {
      next = { ...prev, updates: op.Add(prev.updates, t.updates) };
    } else {
      next = op.Add(isScatter(prev) ? materialize(g, prev) : prev, isScatter(t) ? materialize(g, t) : t);
    }
    grads.set(v, next);
    if (sched && wrtSet.has(v)) sched.paramGrad(v, isScatter(next) ? next.updates : next);
  };

  grads.set(loss, seed);
  for (let i = forwardEnd - 1; i >= 0; i--) {
    if (!onPath[i]) continue;
    const node = nodes[i]!;
    const rule = ruleFor(node);
    if (rule === undefined) {
      throw new TsFinetuneError(
        'MISSING_GRADIENT_RULE',
        `No gradient rule for ${node.domain ? `${node.domain}.` : ''}${node.opType} (node '${node.name}'), which lies between the ` +
          `differentiated values and the loss: ` +
          (node.domain === '' || node.domain === 'ai.onnx'
            ? `add the op to src/graph's op namespace and its rule (or 'nondiff') to src/autodiff/rules-*.ts`
            : `registerFunctionGradient('${node.domain}', '${node.opType}', rule) (src/autodiff/function-gradients.ts)`),
        { op: node.opType, domain: node.domain, node: node.name },
      );
    }
    if (rule === 'nondiff' || node.outputs.every((o) => !grads.has(o))) continue;
    sched?.enter(i, {
      outputGrads: (seg) => segmentValues(seg).flatMap((o) => dense(o) ?? []),
      reissue: (seg, deps) => {
        for (const o of segmentValues(seg)) {
          const d = dense(o);
          if (d) grads.set(o, after(g, d, deps));
        }
      },
    });
    const needs = node.inputs.map((v) => v !== null && dep.has(v) && live.has(v));
    const value = (v: Value): Value => (sched ? sched.value(v) : v);
    const ctx: GradContext = {
      g,
      node,
      x: (k) => value(node.in(k)),
      y: (k) => value(node.out(k)),
      dy: (k) => dense(node.out(k)),
      get gy(): Value {
        const d = dense(node.out(0));
        if (!d) throw new TsFinetuneError('GRAPH_ERROR', `Gradient rule of ${node.opType} (node ${node.name}) read output 0's gradient, which does not exist`);
        return d;
      },
      scatterDy: (k) => {
        const t = grads.get(node.out(k));
        return t && isScatter(t) ? t : null;
      },
      needs: (k) => needs[k] ?? false,
      ints: (k) => readInts(g, node, k),
    };
    const scope = scopeOf(node);
    const res = g.scope(scope ? `grad.${scope}` : 'grad', () => rule(ctx));
    res.forEach((t, k) => {
      const v = node.inputs[k];
      if (t && v && needs[k]) accumulate(v, t, node);
    });
  }

  const out = new Map<Value, Value>();
  for (const w of wrt) out.set(w, dense(w) ?? zeros(g, w.dtype, w.shape));
  return out;
}
