// Encodes the ONNX messages of proto.ts to protobuf bytes, field numbers exactly as onnx/onnx.proto
// (listed beside each field in proto.ts). Fields go in ascending field-number order, as protoc writes
// them; a field that is set is written even when it is 0 or '' (proto2 presence, as onnx.proto: ONNX's
// checker wants exactly one value field per attribute); repeated numbers are packed (as onnx.proto3).
// test/onnx checks the bytes against protobufjs, byte for byte, and that onnxruntime-node runs them.
// Not here: moving initializers to external data (external-data.ts), reading bytes back (decode.ts).

import { TsFinetuneError } from '../core/errors.js';
import { ProtoWriter } from './proto-writer.js';
import {
  AttrType,
  type AttributeProto,
  type FunctionProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type OperatorSetId,
  type StringStringEntry,
  type TensorProto,
  type ValueInfo,
} from './proto.js';

/** TensorProto.DataLocation.EXTERNAL */
const DATA_LOCATION_EXTERNAL = 1;

function writeOpset(w: ProtoWriter, o: OperatorSetId): void {
  if (o.domain !== '') w.string(1, o.domain);
  w.int64(2, o.version);
}

function writeEntry(w: ProtoWriter, e: StringStringEntry): void {
  w.string(1, e.key);
  w.string(2, e.value);
}

function writeTensor(w: ProtoWriter, t: TensorProto): void {
  if (t.rawData !== undefined && t.externalData !== undefined) {
    throw new TsFinetuneError('GRAPH_ERROR', `Tensor '${t.name}' has both rawData and externalData; give one`, {
      tensor: t.name,
    });
  }
  w.packedInt64(1, t.dims);
  w.uint(2, t.dataType);
  w.string(8, t.name);
  if (t.rawData !== undefined) w.bytes(9, t.rawData);
  if (t.externalData !== undefined) {
    for (const e of t.externalData) w.message(13, () => writeEntry(w, e));
    w.uint(14, DATA_LOCATION_EXTERNAL);
  }
}

/** Room for a tensor's length prefix: its raw data dominates, so we know the size class in advance. */
function tensorReserve(t: TensorProto): number {
  return reserveFor((t.rawData?.length ?? 0) + t.name.length + 16 + t.dims.length * 10);
}

function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(1, v.name);
  // TypeProto (2) → tensor_type (1) → elem_type (1), shape (2) → dim (1) → dim_value (1) | dim_param (2)
  const type = w.begin(2);
  const tensorType = w.begin(1);
  w.uint(1, v.elemType);
  if (v.shape !== undefined) {
    const shape = w.begin(2);
    for (const d of v.shape) {
      const dim = w.begin(1);
      if (d.dimValue !== undefined) w.int64(1, d.dimValue);
      else if (d.dimParam !== undefined) w.string(2, d.dimParam);
      w.end(dim);
    }
    w.end(shape);
  }
  w.end(tensorType);
  w.end(type);
}

function writeAttribute(w: ProtoWriter, a: AttributeProto): void {
  w.string(1, a.name);
  if (a.refAttrName !== undefined) {
    // A reference attribute (inside a function body) names the caller's attribute and carries no value.
    w.uint(20, a.type);
    w.string(21, a.refAttrName);
    return;
  }
  switch (a.type) {
    case AttrType.FLOAT:
      w.float(2, need(a, a.f));
      break;
    case AttrType.INT:
      w.int64(3, need(a, a.i));
      break;
    case AttrType.STRING:
      w.bytes(4, need(a, a.s));
      break;
    case AttrType.TENSOR: {
      const t = need(a, a.t);
      w.message(5, () => writeTensor(w, t), tensorReserve(t));
      break;
    }
    case AttrType.GRAPH: {
      const g = need(a, a.g);
      w.message(6, () => writeGraph(w, g), 3);
      break;
    }
    case AttrType.FLOATS:
      w.packedFloat(7, need(a, a.floats));
      break;
    case AttrType.INTS:
      w.packedInt64(8, need(a, a.ints));
      break;
    case AttrType.STRINGS:
      for (const s of need(a, a.strings)) w.bytes(9, s);
      break;
    case AttrType.TENSORS:
      for (const t of need(a, a.tensors)) w.message(10, () => writeTensor(w, t), tensorReserve(t));
      break;
    case AttrType.GRAPHS:
      for (const g of need(a, a.graphs)) w.message(11, () => writeGraph(w, g), 3);
      break;
    default:
      throw new TsFinetuneError('GRAPH_ERROR', `Attribute '${a.name}' has unknown type ${String(a.type)}`, {
        attribute: a.name,
      });
  }
  w.uint(20, a.type);
}

function need<T>(a: AttributeProto, v: T | undefined): T {
  if (v !== undefined) return v;
  throw new TsFinetuneError('GRAPH_ERROR', `Attribute '${a.name}' of type ${a.type} has no value`, { attribute: a.name });
}

function attrReserve(a: AttributeProto): number {
  if (a.t !== undefined) return tensorReserve(a.t);
  return a.g !== undefined || a.graphs !== undefined || a.tensors !== undefined ? 3 : 1;
}

function writeNode(w: ProtoWriter, n: NodeProto): void {
  for (const s of n.input) w.string(1, s);
  for (const s of n.output) w.string(2, s);
  if (n.name !== '') w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attribute) {
    const mark = w.begin(5, attrReserve(a));
    writeAttribute(w, a);
    w.end(mark);
  }
  if (n.docString !== undefined) w.string(6, n.docString);
  if (n.domain !== '') w.string(7, n.domain);
}

function writeGraph(w: ProtoWriter, g: GraphProto): void {
  for (const n of g.node) {
    const mark = w.begin(1, 2);
    writeNode(w, n);
    w.end(mark);
  }
  w.string(2, g.name);
  for (const t of g.initializer) {
    const mark = w.begin(5, tensorReserve(t));
    writeTensor(w, t);
    w.end(mark);
  }
  if (g.docString !== undefined) w.string(10, g.docString);
  const infos = (field: number, list: readonly ValueInfo[]): void => {
    for (const v of list) {
      const mark = w.begin(field);
      writeValueInfo(w, v);
      w.end(mark);
    }
  };
  infos(11, g.input);
  infos(12, g.output);
  infos(13, g.valueInfo);
}

function writeFunction(w: ProtoWriter, f: FunctionProto): void {
  w.string(1, f.name);
  for (const s of f.input) w.string(4, s);
  for (const s of f.output) w.string(5, s);
  for (const s of f.attribute) w.string(6, s);
  for (const n of f.node) {
    const mark = w.begin(7, 2);
    writeNode(w, n);
    w.end(mark);
  }
  if (f.docString !== undefined) w.string(8, f.docString);
  for (const o of f.opsetImport) w.message(9, () => writeOpset(w, o));
  w.string(10, f.domain);
  for (const a of f.attributeProto) w.message(11, () => writeAttribute(w, a), attrReserve(a));
}

/** Length-prefix bytes for a message of about `n` bytes (a wrong guess only costs one memmove). */
function reserveFor(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

function writeModel(w: ProtoWriter, m: ModelProto): void {
  w.int64(1, m.irVersion);
  w.string(2, m.producerName);
  w.string(3, m.producerVersion);
  if (m.domain !== undefined) w.string(4, m.domain);
  if (m.modelVersion !== undefined) w.int64(5, m.modelVersion);
  if (m.docString !== undefined) w.string(6, m.docString);
  w.message(7, () => writeGraph(w, m.graph), reserveFor(estimateSize(m)));
  for (const o of m.opsetImport) w.message(8, () => writeOpset(w, o));
  for (const e of m.metadataProps ?? []) w.message(14, () => writeEntry(w, e));
  for (const f of m.functions ?? []) w.message(25, () => writeFunction(w, f), 4);
}

/** About the bytes a model encodes to (initializer data dominates), to size the writer once. */
function estimateSize(m: ModelProto): number {
  let n = 4096;
  for (const t of m.graph.initializer) n += t.rawData?.length ?? 0;
  for (const node of m.graph.node) {
    n += 32 + node.name.length + node.opType.length + node.attribute.length * 24;
    for (const s of node.input) n += s.length + 2;
    for (const s of node.output) n += s.length + 2;
  }
  return n;
}

/** Protobuf's hard limit: a message over 2 GiB cannot be parsed (move big initializers to external data). */
const MAX_PROTO_BYTES = 2 ** 31 - 1;

/** Encode a ModelProto to bytes that onnxruntime (or onnx.load) reads. */
export function encodeModel(model: ModelProto): Uint8Array {
  const w = new ProtoWriter(estimateSize(model) + (1 << 16));
  writeModel(w, model);
  if (w.pos > MAX_PROTO_BYTES) {
    throw new TsFinetuneError(
      'GRAPH_ERROR',
      `Encoded model is ${w.pos} bytes, over protobuf's 2 GiB limit: move large initializers to external data ` +
        `(externalizeInitializers in src/onnx/external-data.ts)`,
      { bytes: w.pos },
    );
  }
  return w.finish();
}

/** Encode one TensorProto on its own (tests, and tools that ship tensors as .pb files). */
export function encodeTensor(t: TensorProto): Uint8Array {
  const w = new ProtoWriter((t.rawData?.length ?? 0) + 256);
  writeTensor(w, t);
  return w.finish();
}

/** Encode one FunctionProto on its own (kernels/ snapshots). */
export function encodeFunction(f: FunctionProto): Uint8Array {
  const w = new ProtoWriter();
  writeFunction(w, f);
  return w.finish();
}
