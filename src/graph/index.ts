export { Graph, type ValueType, type InitializerEntry, type OutputEntry, type Segment } from './graph.js';
export { Value, Node, attr, type AttrValue, type Attrs } from './value.js';
export { op, type Operand } from './ops.js';
export { toModelProto, tensorProto, type BuiltModel, type ExternalDataFile } from './to-proto.js';
export { defineFunction, KERNEL_DOMAIN, type DefinedFunction, type FunctionSpec } from './function.js';
export { dumpGraph } from './dump.js';
export { opaqueShapes, type OpaqueShapesOptions } from './opaque-shapes.js';
export * as shapes from './shape-infer.js';
