// The op namespace: `op.MatMul(a, b)`, `op.Add(x, 1)`, … Every function infers its output dtype and static
// shape at build time and emits one ONNX node into the graph its Value operands belong to.
import * as elementwise from './ops-elementwise.js';
import * as shape from './ops-shape.js';
import * as nn from './ops-nn.js';

const { graphOf: _g, assertSameShape: _a, onnxDtypeCode: _c, ...elementwiseOps } = elementwise;

export const op = { ...elementwiseOps, ...shape, ...nn };
export type { Operand } from './ops-elementwise.js';
