// Plain TypeScript shapes of the ONNX protobuf messages we emit (onnx/onnx.proto3, IR ≤ 13).
// Field numbers are listed beside each field because `encode.ts` / `decode.ts` write them by hand:
// we do not depend on a protobuf runtime for the hot path of building training graphs.
// Not here: shape inference or op semantics (src/graph), running (src/runtime).

import type { DType } from '../core/dtype.js';

/** TensorProto.DataType enum values. */
export const ONNX_DTYPE: Readonly<Record<DType, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int16: 5,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
  bfloat16: 16,
};

export function dtypeFromOnnx(code: number): DType {
  for (const [k, v] of Object.entries(ONNX_DTYPE)) if (v === code) return k as DType;
  throw new Error(`Unsupported ONNX data type ${code}`);
}

/** AttributeProto.AttributeType enum values. */
export const enum AttrType {
  FLOAT = 1,
  INT = 2,
  STRING = 3,
  TENSOR = 4,
  GRAPH = 5,
  FLOATS = 6,
  INTS = 7,
  STRINGS = 8,
  TENSORS = 9,
  GRAPHS = 10,
}

export interface OperatorSetId {
  domain: string; // 1 ('' = ai.onnx)
  version: number; // 2
}

export interface StringStringEntry {
  key: string; // 1
  value: string; // 2
}

export interface TensorProto {
  name: string; // 8
  dims: number[]; // 1
  dataType: number; // 2 (ONNX_DTYPE)
  /** Little-endian raw bytes (field 9). Absent when the data is external. */
  rawData?: Uint8Array;
  /** external_data (13) with data_location = EXTERNAL (14 = 1): location, offset, length. */
  externalData?: StringStringEntry[];
}

export interface TensorShapeDim {
  dimValue?: number; // 1
  dimParam?: string; // 2
}

export interface ValueInfo {
  name: string; // 1
  /** TypeProto.tensor_type (1): elem_type (1), shape (2). Shape undefined = unknown rank. */
  elemType: number;
  shape?: TensorShapeDim[];
}

export interface AttributeProto {
  name: string; // 1
  type: AttrType; // 20
  refAttrName?: string; // 21 (inside FunctionProto bodies)
  f?: number; // 2
  i?: number | bigint; // 3
  s?: Uint8Array; // 4
  t?: TensorProto; // 5
  g?: GraphProto; // 6
  floats?: number[]; // 7
  ints?: (number | bigint)[]; // 8
  strings?: Uint8Array[]; // 9
  tensors?: TensorProto[]; // 10
  graphs?: GraphProto[]; // 11
}

export interface NodeProto {
  input: string[]; // 1 ('' = omitted optional input)
  output: string[]; // 2
  name: string; // 3
  opType: string; // 4
  domain: string; // 7
  attribute: AttributeProto[]; // 5
  docString?: string; // 6
}

export interface GraphProto {
  name: string; // 2
  node: NodeProto[]; // 1
  initializer: TensorProto[]; // 5
  input: ValueInfo[]; // 11
  output: ValueInfo[]; // 12
  valueInfo: ValueInfo[]; // 13
  docString?: string; // 10
}

export interface FunctionProto {
  name: string; // 1
  domain: string; // 10
  input: string[]; // 4
  output: string[]; // 5
  /** Attribute names without defaults (6). */
  attribute: string[];
  /** Attributes with defaults (11). */
  attributeProto: AttributeProto[];
  node: NodeProto[]; // 7
  opsetImport: OperatorSetId[]; // 9
  docString?: string; // 8
}

export interface ModelProto {
  irVersion: number; // 1
  opsetImport: OperatorSetId[]; // 8
  producerName: string; // 2
  producerVersion: string; // 3
  domain?: string; // 4
  modelVersion?: number; // 5
  docString?: string; // 6
  graph: GraphProto; // 7
  metadataProps?: StringStringEntry[]; // 14
  functions?: FunctionProto[]; // 25
}

/** The IR version and opsets we target: accepted by onnxruntime-node 1.30 (see DESIGN.md). */
export const IR_VERSION = 10;
export const DEFAULT_OPSETS: readonly OperatorSetId[] = [
  { domain: '', version: 21 },
  { domain: 'com.microsoft', version: 1 },
];
