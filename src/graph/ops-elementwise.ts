// Elementwise, comparison, cast and reduction ops with numpy broadcasting (ONNX opset 21 semantics).
// A plain number operand becomes a scalar constant of the other operand's dtype, so `op.Mul(x, 0.5)` works.

import type { DType } from '../core/dtype.js';
import { TsFinetuneError } from '../core/errors.js';
import { ONNX_DTYPE } from '../onnx/proto.js';
import type { Graph } from './graph.js';
import { broadcastShapes, reduceShape, sameShape } from './shape-infer.js';
import { attr, Value, type Attrs } from './value.js';

export type Operand = Value | number;

export function graphOf(op: string, ...xs: (Operand | null | undefined)[]): Graph {
  for (const x of xs) if (x instanceof Value) return x.graph;
  throw new TsFinetuneError('GRAPH_ERROR', `${op}: at least one operand must be a graph Value`);
}

function lift(g: Graph, x: Operand, dtype: DType): Value {
  return x instanceof Value ? x : g.scalar(x, dtype);
}

function dtypeOf(op: string, ...xs: Operand[]): DType {
  const vs = xs.filter((x): x is Value => x instanceof Value);
  const d = vs[0]!.dtype;
  for (const v of vs) {
    if (v.dtype !== d) throw new TsFinetuneError('GRAPH_ERROR', `${op}: dtypes differ (${vs.map((x) => `${x.name}: ${x.dtype}`).join(', ')})`);
  }
  return d;
}

function binary(opType: string, a: Operand, b: Operand, outDtype?: DType): Value {
  const g = graphOf(opType, a, b);
  const dt = dtypeOf(opType, a, b);
  const av = lift(g, a, dt);
  const bv = lift(g, b, dt);
  const shape = broadcastShapes(opType, av.shape, bv.shape);
  return g.node(opType, [av, bv], {}, [{ dtype: outDtype ?? dt, shape }])[0]!;
}

function unary(opType: string, x: Value, attrs: Attrs = {}): Value {
  return x.graph.node(opType, [x], attrs, [{ dtype: x.dtype, shape: x.shape }])[0]!;
}

export const Add = (a: Operand, b: Operand): Value => binary('Add', a, b);
export const Sub = (a: Operand, b: Operand): Value => binary('Sub', a, b);
export const Mul = (a: Operand, b: Operand): Value => binary('Mul', a, b);
export const Div = (a: Operand, b: Operand): Value => binary('Div', a, b);
export const Pow = (a: Operand, b: Operand): Value => binary('Pow', a, b);
export const Max = (a: Operand, b: Operand): Value => binary('Max', a, b);
export const Min = (a: Operand, b: Operand): Value => binary('Min', a, b);
export const Equal = (a: Operand, b: Operand): Value => binary('Equal', a, b, 'bool');
export const Less = (a: Operand, b: Operand): Value => binary('Less', a, b, 'bool');
export const Greater = (a: Operand, b: Operand): Value => binary('Greater', a, b, 'bool');
export const LessOrEqual = (a: Operand, b: Operand): Value => binary('LessOrEqual', a, b, 'bool');
export const GreaterOrEqual = (a: Operand, b: Operand): Value => binary('GreaterOrEqual', a, b, 'bool');
export const And = (a: Value, b: Value): Value => binary('And', a, b, 'bool');
export const Or = (a: Value, b: Value): Value => binary('Or', a, b, 'bool');

export const Neg = (x: Value): Value => unary('Neg', x);
export const Exp = (x: Value): Value => unary('Exp', x);
export const Log = (x: Value): Value => unary('Log', x);
export const Sqrt = (x: Value): Value => unary('Sqrt', x);
export const Reciprocal = (x: Value): Value => unary('Reciprocal', x);
export const Sigmoid = (x: Value): Value => unary('Sigmoid', x);
export const Tanh = (x: Value): Value => unary('Tanh', x);
export const Relu = (x: Value): Value => unary('Relu', x);
export const Abs = (x: Value): Value => unary('Abs', x);
export const Sin = (x: Value): Value => unary('Sin', x);
export const Cos = (x: Value): Value => unary('Cos', x);
export const Erf = (x: Value): Value => unary('Erf', x);
export const Sign = (x: Value): Value => unary('Sign', x);
export const Floor = (x: Value): Value => unary('Floor', x);
export const Softplus = (x: Value): Value => unary('Softplus', x);
export const Identity = (x: Value): Value => unary('Identity', x);
export const Not = (x: Value): Value => unary('Not', x);

export function Where(cond: Value, a: Operand, b: Operand): Value {
  const g = cond.graph;
  const dt = dtypeOf('Where', a, b);
  const av = lift(g, a, dt);
  const bv = lift(g, b, dt);
  const shape = broadcastShapes('Where', cond.shape, av.shape, bv.shape);
  return g.node('Where', [cond, av, bv], {}, [{ dtype: dt, shape }])[0]!;
}

export function Cast(x: Value, to: DType): Value {
  if (x.dtype === to) return x;
  return x.graph.node('Cast', [x], { to: attr.int(onnxDtypeCode(to)) }, [{ dtype: to, shape: x.shape }])[0]!;
}

export function Clip(x: Value, min?: number, max?: number): Value {
  const g = x.graph;
  const lo = min === undefined ? null : g.scalar(min, x.dtype);
  const hi = max === undefined ? null : g.scalar(max, x.dtype);
  return g.node('Clip', [x, lo, hi], {}, [{ dtype: x.dtype, shape: x.shape }])[0]!;
}

type ReduceOp = 'ReduceSum' | 'ReduceMean' | 'ReduceMax' | 'ReduceMin' | 'ReduceSumSquare' | 'ReduceLogSumExp';

function reduce(opType: ReduceOp, x: Value, axes?: readonly number[], keepdims = true): Value {
  const g = x.graph;
  const shape = reduceShape(opType, x.shape, axes, keepdims);
  const axesInput = axes === undefined ? null : g.ints(axes);
  return g.node(opType, [x, axesInput], { keepdims: attr.int(keepdims ? 1 : 0) }, [{ dtype: x.dtype, shape }])[0]!;
}

export const ReduceSum = (x: Value, axes?: readonly number[], keepdims = true): Value => reduce('ReduceSum', x, axes, keepdims);
export const ReduceMean = (x: Value, axes?: readonly number[], keepdims = true): Value => reduce('ReduceMean', x, axes, keepdims);
export const ReduceMax = (x: Value, axes?: readonly number[], keepdims = true): Value => reduce('ReduceMax', x, axes, keepdims);
export const ReduceMin = (x: Value, axes?: readonly number[], keepdims = true): Value => reduce('ReduceMin', x, axes, keepdims);
export const ReduceSumSquare = (x: Value, axes?: readonly number[], keepdims = true): Value =>
  reduce('ReduceSumSquare', x, axes, keepdims);
export const ReduceLogSumExp = (x: Value, axes?: readonly number[], keepdims = true): Value =>
  reduce('ReduceLogSumExp', x, axes, keepdims);

/** Same-shape check used by ops that do not broadcast. */
export function assertSameShape(op: string, a: Value, b: Value): void {
  sameShape(op, a.shape, b.shape);
}

export function onnxDtypeCode(d: DType): number {
  return ONNX_DTYPE[d];
}
