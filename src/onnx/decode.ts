// Decodes ONNX protobuf bytes back into the proto.ts shapes: for tests (round trips), for reading the
// optimized model ORT writes, and for debugging a graph. Fields proto.ts does not model are skipped.
// Tensors written by other producers in the typed fields (float_data, int32_data, int64_data,
// double_data) are turned into rawData, so callers see one representation.
// Not here: encoding (encode.ts). Layouts follow onnx/onnx.proto3.

import { TsFinetuneError } from '../core/errors.js';
import { ProtoReader } from './proto-reader.js';
import type {
  AttrType,
  AttributeProto,
  FunctionProto,
  GraphProto,
  ModelProto,
  NodeProto,
  OperatorSetId,
  StringStringEntry,
  TensorProto,
  TensorShapeDim,
  ValueInfo,
} from './proto.js';

function readOpset(r: ProtoReader): OperatorSetId {
  const o: OperatorSetId = { domain: '', version: 0 };
  while (r.pos < r.end) {
    const [f, w] = r.tag();
    if (f === 1 && w === 2) o.domain = r.string();
    else if (f === 2 && w === 0) o.version = Number(r.int64());
    else r.skip(w);
  }
  return o;
}

function readEntry(r: ProtoReader): StringStringEntry {
  const e: StringStringEntry = { key: '', value: '' };
  while (r.pos < r.end) {
    const [f, w] = r.tag();
    if (f === 1 && w === 2) e.key = r.string();
    else if (f === 2 && w === 2) e.value = r.string();
    else r.skip(w);
  }
  return e;
}

/** Element byte size per ONNX data type, for turning typed fields into raw bytes. */
const ELEM_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 };

function readTensor(r: ProtoReader): TensorProto {
  const t: TensorProto = { name: '', dims: [], dataType: 0 };
  const ints: (number | bigint)[] = []; // int32_data (5) or int64_data (7) / uint64_data (11)
  const floats: number[] = []; // float_data (4) or double_data (10)
  let external: StringStringEntry[] | undefined;
  let location = 0;
  while (r.pos < r.end) {
    const [f, w] = r.tag();
    if (f === 1) {
      const dims: (number | bigint)[] = [];
      r.repeatedInt64(w, dims);
      for (const d of dims) t.dims.push(Number(d));
    } else if (f === 2 && w === 0) t.dataType = r.uint();
    else if (f === 8 && w === 2) t.name = r.string();
    else if (f === 9 && w === 2) t.rawData = r.bytes();
    else if (f === 4) r.repeatedFloat(w, floats);
    else if (f === 10) r.repeatedDouble(w, floats);
    else if (f === 5 || f === 7 || f === 11) r.repeatedInt64(w, ints);
    else if (f === 13 && w === 2) (external ??= []).push(readEntry(r.sub()));
    else if (f === 14 && w === 0) location = r.uint();
    else r.skip(w);
  }
  if (location === 1) t.externalData = external ?? [];
  if (t.rawData === undefined && t.externalData === undefined && (ints.length > 0 || floats.length > 0)) {
    t.rawData = typedFieldsToRaw(t, ints, floats);
  }
  return t;
}

function typedFieldsToRaw(t: TensorProto, ints: (number | bigint)[], floats: number[]): Uint8Array {
  const size = ELEM_BYTES[t.dataType];
  if (size === undefined) {
    throw new TsFinetuneError('UNSUPPORTED_DTYPE', `Tensor '${t.name}' has ONNX data type ${t.dataType}, which we do not read`, {
      tensor: t.name,
      dataType: t.dataType,
    });
  }
  const n = ints.length + floats.length;
  const out = new Uint8Array(n * size);
  const v = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const x = i < floats.length ? floats[i]! : ints[i - floats.length]!;
    const o = i * size;
    if (t.dataType === 1) v.setFloat32(o, Number(x), true);
    else if (t.dataType === 11) v.setFloat64(o, Number(x), true);
    else if (size === 8) v.setBigInt64(o, BigInt(x), true);
    else if (size === 4) v.setInt32(o, Number(x), true);
    else if (size === 2) v.setUint16(o, Number(x) & 0xffff, true); // float16 / bfloat16 bits, int16
    else v.setUint8(o, Number(x) & 0xff);
  }
  return out;
}

function readDim(r: ProtoReader): TensorShapeDim {
  const d: TensorShapeDim = {};
  while (r.pos < r.end) {
    const [f, w] = r.tag();
    if (f === 1 && w === 0) d.dimValue = Number(r.int64());
    else if (f === 2 && w === 2) d.dimParam = r.string();
    else r.skip(w);
  }
  return d;
}

function readTensorType(r: ProtoReader, v: ValueInfo): void {
  while (r.pos < r.end) {
    const [f, w] = r.tag();
    if (f === 1 && w === 0) v.elemType = r.uint();
    else if (f === 2 && w === 2) {
      const shape: TensorShapeDim[] = [];
      const s = r.sub();
      while (s.pos < s.end) {
        const [g, gw] = s.tag();
        if (g === 1 && gw === 2) shape.push(readDim(s.sub()));
        else s.skip(gw);
      }
      v.shape = shape;
    } else r.skip(w);
  }
}

function readValueInfo(r: ProtoReader): ValueInfo {
  const v: ValueInfo = { name: '', elemType: 0 };
  while (r.pos < r.end) {
    const [f, w] = r.tag();
    if (f === 1 && w === 2) v.name = r.string();
    else if (f === 2 && w === 2) {
      const tp = r.sub();
      while (tp.pos < tp.end) {
        const [g, gw] = tp.tag();
        if (g === 1 && gw === 2) readTensorType(tp.sub(), v);
        else tp.skip(gw);
      }
    } else r.skip(w);
  }
  return v;
}

function readAttribute(r: ProtoReader): AttributeProto {
  const a: AttributeProto = { name: '', type: 0 as AttrType };
  while (r.pos < r.end) {
    const [f, w] = r.tag();
    switch (f) {
      case 1:
        a.name = r.string();
        break;
      case 2:
        a.f = r.float();
        break;
      case 3:
        a.i = r.int64();
        break;
      case 4:
        a.s = r.bytes();
        break;
      case 5:
        a.t = readTensor(r.sub());
        break;
      case 6:
        a.g = readGraph(r.sub());
        break;
      case 7:
        r.repeatedFloat(w, (a.floats ??= []));
        break;
      case 8:
        r.repeatedInt64(w, (a.ints ??= []));
        break;
      case 9:
        (a.strings ??= []).push(r.bytes());
        break;
      case 10:
        (a.tensors ??= []).push(readTensor(r.sub()));
        break;
      case 11:
        (a.graphs ??= []).push(readGraph(r.sub()));
        break;
      case 20:
        a.type = r.uint() as AttrType;
        break;
      case 21:
        a.refAttrName = r.string();
        break;
      default:
        r.skip(w);
    }
  }
  // Packed-empty lists are not written at all: restore them from the declared type.
  if (a.type === 6) a.floats ??= [];
  if (a.type === 7) a.ints ??= [];
  if (a.type === 8) a.strings ??= [];
  return a;
}

function readNode(r: ProtoReader): NodeProto {
  const n: NodeProto = { input: [], output: [], name: '', opType: '', domain: '', attribute: [] };
  while (r.pos < r.end) {
    const [f, w] = r.tag();
    if (f === 1 && w === 2) n.input.push(r.string());
    else if (f === 2 && w === 2) n.output.push(r.string());
    else if (f === 3 && w === 2) n.name = r.string();
    else if (f === 4 && w === 2) n.opType = r.string();
    else if (f === 5 && w === 2) n.attribute.push(readAttribute(r.sub()));
    else if (f === 6 && w === 2) n.docString = r.string();
    else if (f === 7 && w === 2) n.domain = r.string();
    else r.skip(w);
  }
  return n;
}

function readGraph(r: ProtoReader): GraphProto {
  const g: GraphProto = { name: '', node: [], initializer: [], input: [], output: [], valueInfo: [] };
  while (r.pos < r.end) {
    const [f, w] = r.tag();
    if (f === 1 && w === 2) g.node.push(readNode(r.sub()));
    else if (f === 2 && w === 2) g.name = r.string();
    else if (f === 5 && w === 2) g.initializer.push(readTensor(r.sub()));
    else if (f === 10 && w === 2) g.docString = r.string();
    else if (f === 11 && w === 2) g.input.push(readValueInfo(r.sub()));
    else if (f === 12 && w === 2) g.output.push(readValueInfo(r.sub()));
    else if (f === 13 && w === 2) g.valueInfo.push(readValueInfo(r.sub()));
    else r.skip(w);
  }
  return g;
}

function readFunction(r: ProtoReader): FunctionProto {
  const fn: FunctionProto = { name: '', domain: '', input: [], output: [], attribute: [], attributeProto: [], node: [], opsetImport: [] };
  while (r.pos < r.end) {
    const [f, w] = r.tag();
    if (f === 1 && w === 2) fn.name = r.string();
    else if (f === 4 && w === 2) fn.input.push(r.string());
    else if (f === 5 && w === 2) fn.output.push(r.string());
    else if (f === 6 && w === 2) fn.attribute.push(r.string());
    else if (f === 7 && w === 2) fn.node.push(readNode(r.sub()));
    else if (f === 8 && w === 2) fn.docString = r.string();
    else if (f === 9 && w === 2) fn.opsetImport.push(readOpset(r.sub()));
    else if (f === 10 && w === 2) fn.domain = r.string();
    else if (f === 11 && w === 2) fn.attributeProto.push(readAttribute(r.sub()));
    else r.skip(w);
  }
  return fn;
}

/** Decode ModelProto bytes (ours, ORT's optimized-model dumps, or other exporters' small models). */
export function decodeModel(bytes: Uint8Array): ModelProto {
  const r = new ProtoReader(bytes);
  const m: ModelProto = {
    irVersion: 0,
    opsetImport: [],
    producerName: '',
    producerVersion: '',
    graph: { name: '', node: [], initializer: [], input: [], output: [], valueInfo: [] },
  };
  while (r.pos < r.end) {
    const [f, w] = r.tag();
    if (f === 1 && w === 0) m.irVersion = Number(r.int64());
    else if (f === 2 && w === 2) m.producerName = r.string();
    else if (f === 3 && w === 2) m.producerVersion = r.string();
    else if (f === 4 && w === 2) m.domain = r.string();
    else if (f === 5 && w === 0) m.modelVersion = Number(r.int64());
    else if (f === 6 && w === 2) m.docString = r.string();
    else if (f === 7 && w === 2) m.graph = readGraph(r.sub());
    else if (f === 8 && w === 2) m.opsetImport.push(readOpset(r.sub()));
    else if (f === 14 && w === 2) (m.metadataProps ??= []).push(readEntry(r.sub()));
    else if (f === 25 && w === 2) (m.functions ??= []).push(readFunction(r.sub()));
    else r.skip(w);
  }
  return m;
}

export function decodeTensor(bytes: Uint8Array): TensorProto {
  return readTensor(new ProtoReader(bytes));
}

export function decodeFunction(bytes: Uint8Array): FunctionProto {
  return readFunction(new ProtoReader(bytes));
}
