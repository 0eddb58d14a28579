// The backward's schedule over the segments the model builder marked (g.markSegment, one per decoder
// layer): gradient checkpointing and weight-gradient chaining. ORT orders nodes by its own topological
// sort, which defers weight-gradient GEMMs to the end and is free to run an unanchored recompute during
// the forward (in DESIGN.md's prototype CSE even merged it back), so checkpointing saves nothing unless
// the graph's data edges force the order. Walking the segments last to first, at each segment's entry:
//   1. chain: the gradients flowing into the segment are re-issued `after` every parameter gradient
//      finished since the previous entry, so ORT must finish segment k+1's weight-gradient GEMMs (and free
//      the activations they read) before segment k's backward starts;
//   2. recompute (checkpointed segments): the segment's forward is re-emitted lazily, node by node, as the
//      rules ask for values (ctx.x / ctx.y), every recomputed chain anchored to those incoming gradients,
//      so it cannot run before the backward reaches the segment. The forward's own intermediates of the
//      segment then have no consumer after the forward and die there; only segment inputs stay alive.
// The session must run with ConstantFolding disabled (it folds the ordering edges away) and, as
// DESIGN.md measured, CommonSubexpressionElimination too: trainingSessionOptions.
// Recomputation assumes the segment is deterministic: random ops (Dropout, Random*) are refused; dropout
// written as a pure function of a seed input recomputes exactly.

import { TsFinetuneError } from '../core/errors.js';
import type { Graph, Node, Segment, Value } from '../graph/index.js';
import { after } from './schedule.js';

export interface CheckpointPlan {
  /** Which marked segments to recompute in the backward (default 'all'); the others keep their activations. */
  recompute?: 'all' | 'none' | readonly string[] | ((s: Segment) => boolean);
  /**
   * Make each segment's backward wait for the parameter gradients of the segment after it (default true).
   * Without it ORT runs the weight-gradient GEMMs last, keeping every activation they read alive.
   */
  chainParameterGradients?: boolean;
}

const RANDOM_OPS = new Set(['Dropout', 'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli']);

/** Lazily re-emits one segment's forward, anchored to the gradients entering the segment. */
class Recompute {
  private readonly map = new Map<Value, Value>();
  /** Recomputed values that already wait for the anchor. */
  private readonly anchoredSet = new Set<Value>();
  private readonly anchoredInputs = new Map<Value, Value>();

  constructor(
    private readonly g: Graph,
    private readonly seg: Segment,
    private readonly anchor: Value,
  ) {}

  get(v: Value): Value {
    const hit = this.map.get(v);
    if (hit) return hit;
    const p = v.producer;
    if (!p || p.index < this.seg.start || p.index >= this.seg.end) return v; // segment input: kept alive anyway
    // A weight's transpose (x·Wᵀ, W an initializer or a graph input) is read as it is: ORT folds it into
    // every GEMM that reads it (FusedMatMul), so no buffer holds it. A recomputed copy read W through an
    // anchor, which made ORT keep an initializer's memory-mapped file pages besides its packed copies
    // (fp32 LoRA at 2 × 1024 tokens, checkpointed: 1.25 GB of file pages, bench/lora-memory.ts --detail).
    const w = p.opType === 'Transpose' ? p.inputs[0] : undefined;
    if (w && (w.kind === 'initializer' || w.kind === 'input') && w.rank === 2 && w.dtype === 'float32') return v;
    this.clone(p);
    return this.map.get(v)!;
  }

  private anchored(v: Value): Value {
    let a = this.anchoredInputs.get(v);
    if (!a) {
      a = after(this.g, v, [this.anchor]);
      this.anchoredInputs.set(v, a);
    }
    return a;
  }

  private clone(n: Node): void {
    if (RANDOM_OPS.has(n.opType)) {
      throw new TsFinetuneError('GRAPH_ERROR', `Segment '${this.seg.name}' cannot be recomputed: node ${n.name} (${n.opType}) is random`, {
        segment: this.seg.name,
        node: n.name,
      });
    }
    const ins = n.inputs.map((x) => (x ? this.get(x) : null));
    if (!ins.some((x) => x && this.anchoredSet.has(x))) {
      // No input waits for the backward yet (a segment input, or weights only): anchor the first one.
      const k = ins.findIndex((x) => x !== null);
      if (k >= 0) ins[k] = this.anchored(ins[k]!);
    }
    const scope = n.name.includes('/') ? n.name.slice(0, n.name.lastIndexOf('/')) : '';
    const outs = this.g.scope(scope ? `recompute.${scope}` : 'recompute', () =>
      this.g.node(
        n.opType,
        ins,
        n.attrs,
        n.outputs.map((o) => ({ dtype: o.dtype, shape: o.shape })),
        { domain: n.domain },
      ),
    );
    outs.forEach((o, k) => {
      this.map.set(n.outputs[k]!, o);
      this.anchoredSet.add(o);
    });
  }
}

/** What the scheduler needs from backward's gradient map. */
export interface SchedulerHooks {
  /** The (dense) gradients of the segment's values that have one: its outputs, at entry. */
  outputGrads(seg: Segment): Value[];
  /** Replace each of those gradients by after(gradient, deps). */
  reissue(seg: Segment, deps: readonly Value[]): void;
}

/** Drives the plan during backward's reverse walk (backward.ts calls enter / paramGrad / value). */
export class SegmentScheduler {
  private readonly segOf: Int32Array;
  private readonly segments: Segment[];
  private readonly recomputeSet: Set<number>;
  private readonly chain: boolean;
  private current = -1;
  private rc: Recompute | undefined;
  private readonly pending = new Map<Value, Value>();

  constructor(
    private readonly g: Graph,
    plan: CheckpointPlan,
    forwardEnd: number,
  ) {
    // Segments past the loss (or holding it) are not part of this backward.
    this.segments = g.segments.filter((s) => s.end < forwardEnd);
    this.segOf = new Int32Array(forwardEnd).fill(-1);
    this.segments.forEach((s, k) => this.segOf.fill(k, s.start, s.end));
    const r = plan.recompute ?? 'all';
    const names = new Set(g.segments.map((s) => s.name));
    if (Array.isArray(r)) {
      for (const n of r as readonly string[]) {
        if (!names.has(n)) throw new TsFinetuneError('INVALID_ARGUMENT', `CheckpointPlan.recompute names segment '${n}', which the graph does not mark`);
      }
    }
    const pick = (s: Segment): boolean =>
      r === 'all' ? true : r === 'none' ? false : typeof r === 'function' ? r(s) : (r as readonly string[]).includes(s.name);
    this.recomputeSet = new Set(this.segments.flatMap((s, k) => (pick(s) ? [k] : [])));
    this.chain = plan.chainParameterGradients ?? true;
  }

  /**
   * Called before the rule of node `index` runs. On entering a segment, re-issues the gradients of its
   * outputs after the pending parameter gradients (`reissue`) and starts its recompute.
   */
  enter(index: number, hooks: SchedulerHooks): void {
    const s = this.segOf[index] ?? -1;
    if (s === this.current) return;
    this.current = s;
    this.rc = undefined;
    if (s < 0) return;
    const seg = this.segments[s]!;
    if (this.chain && this.pending.size > 0) {
      hooks.reissue(seg, [...this.pending.values()]);
      this.pending.clear();
    }
    if (this.recomputeSet.has(s)) {
      const grads = hooks.outputGrads(seg);
      if (grads.length === 0) return;
      // One value that exists only once every incoming gradient does: the anchor of the recompute.
      const anchor = after(this.g, grads[0]!, grads.slice(1));
      this.rc = new Recompute(this.g, seg, anchor);
    }
  }

  /** A parameter's accumulated gradient changed: the next segment entry waits for it. */
  paramGrad(param: Value, grad: Value): void {
    this.pending.set(param, grad);
  }

  /** The value a rule should read for forward value `v` (its recomputed copy inside a checkpointed segment). */
  value(v: Value): Value {
    return this.rc ? this.rc.get(v) : v;
  }

  /** The forward nodes of recomputed segments (tests: nothing in the backward may read their outputs). */
  recomputedRanges(): Segment[] {
    return [...this.recomputeSet].map((k) => this.segments[k]!);
  }
}
