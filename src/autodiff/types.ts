// The contract between backward() and the gradient rules: what a rule sees (GradContext) and returns.
// A rule gets the forward node (attributes, static shapes) and reads the node's values through ctx.x(i) /
// ctx.y(i), never through node.inputs directly: inside a checkpointed segment those calls return the
// recomputed copies, so a rule that read node.inputs would silently keep the forward activation alive.
// Not here: the walk (backward.ts), the tables (rules-*.ts, rules.ts), recompute (checkpoint.ts).

import type { Graph, Node, Value, op } from '../graph/index.js';

/** The op builder names (`op.MatMul` …): the keys of the rule table, so a missing rule is a type error. */
export type OpName = keyof typeof op;

/**
 * A gradient that is zero except at scattered positions: ScatterElements(zeros(shape), indices, updates,
 * axis, 'add'). GatherElements' rule returns this form so that LogSoftmax / Softmax rules downstream can
 * use it without materialising a [.., V] zero tensor first (DESIGN.md: the fast cross-entropy gradient is
 * p − onehot as Exp + one ScatterElements(add)). Materialised on first ordinary use.
 */
export interface ScatterGrad {
  readonly kind: 'scatter';
  readonly shape: readonly number[];
  readonly indices: Value;
  readonly updates: Value;
  readonly axis: number;
}

export interface GradContext {
  readonly g: Graph;
  /** The forward node: read attributes and static shapes/dtypes here, never values (see file header). */
  readonly node: Node;
  /** Input i as a graph value (the recomputed copy inside a checkpointed segment). */
  x(i: number): Value;
  /** Output i as a graph value (the recomputed copy inside a checkpointed segment). */
  y(i: number): Value;
  /** Gradient of output i, or null where that output does not reach the loss. */
  dy(i: number): Value | null;
  /** Gradient of output 0, which must exist (single-output ops). */
  readonly gy: Value;
  /** Output i's gradient in scattered form when it has one (see ScatterGrad), without materialising it. */
  scatterDy(i: number): ScatterGrad | null;
  /** Whether input i needs a gradient (depends on a `wrt` value). Rules skip work for the others. */
  needs(i: number): boolean;
  /** A constant int64 input (axes, shapes, pads …) read back as numbers; undefined when omitted. */
  ints(i: number): number[] | undefined;
}

/** Returns one entry per input: its gradient (dense, or scattered), or null/undefined for inputs that get none. */
export type GradRule = (ctx: GradContext) => readonly (Value | ScatterGrad | null | undefined)[];

/**
 * A table entry: a rule; 'nondiff' (outputs carry no gradient: comparisons, logic, Sign, Floor);
 * 'registry' (the gradient comes from registerFunctionGradient by domain and op type: model-local functions).
 */
export type RuleEntry = GradRule | 'nondiff' | 'registry';
