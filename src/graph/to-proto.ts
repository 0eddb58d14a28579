// Graph → ModelProto (plain objects from src/onnx/proto.ts), ready for src/onnx's encoder.
// Large initializers marked `external` go into one external-data blob (ORT takes it from memory through
// the session's externalData option), so the protobuf stays small and weights are not copied twice.
// Not here: the protobuf bytes (src/onnx/encode.ts) and sessions (src/runtime).

import { TsFinetuneError } from '../core/errors.js';
import {
  AttrType,
  IR_VERSION,
  ONNX_DTYPE,
  type AttributeProto,
  type FunctionProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfo,
} from '../onnx/proto.js';
import { tensorToProto } from '../onnx/tensor-proto.js';
import type { Graph } from './graph.js';
import type { AttrValue, Node, Value } from './value.js';

export interface ExternalDataFile {
  path: string;
  data: Uint8Array;
}

export interface BuiltModel {
  model: ModelProto;
  externalData: ExternalDataFile[];
}

const utf8 = new TextEncoder();
const EXTERNAL_ALIGN = 64;

/** An inline TensorProto (src/onnx owns the conversion; re-exported here for graph users). */
export const tensorProto = tensorToProto;

export function attributeProto(name: string, a: AttrValue): AttributeProto {
  switch (a.kind) {
    case 'int':
      return { name, type: AttrType.INT, i: a.value };
    case 'float':
      return { name, type: AttrType.FLOAT, f: a.value };
    case 'string':
      return { name, type: AttrType.STRING, s: utf8.encode(a.value) };
    case 'ints':
      return { name, type: AttrType.INTS, ints: a.value };
    case 'floats':
      return { name, type: AttrType.FLOATS, floats: a.value };
    case 'strings':
      return { name, type: AttrType.STRINGS, strings: a.value.map((s) => utf8.encode(s)) };
    case 'tensor':
      return { name, type: AttrType.TENSOR, t: tensorProto('', a.value) };
  }
}

export function nodeProto(n: Node): NodeProto {
  return {
    name: n.name,
    opType: n.opType,
    domain: n.domain,
    input: n.inputs.map((v) => (v ? v.name : '')),
    output: n.outputs.map((v) => v.name),
    attribute: Object.entries(n.attrs).map(([k, a]) => attributeProto(k, a)),
  };
}

export function valueInfo(v: Value, name = v.name): ValueInfo {
  return { name, elemType: ONNX_DTYPE[v.dtype], shape: v.shape.map((d) => ({ dimValue: d })) };
}

/** Build the ModelProto of `g`. External initializers are laid out in `externalDataPath`. */
export function toModelProto(g: Graph, opts: { externalDataPath?: string; docString?: string } = {}): BuiltModel {
  if (g.outputs.length === 0) throw new TsFinetuneError('GRAPH_ERROR', `Graph '${g.name}' has no outputs`);
  const path = opts.externalDataPath ?? `${g.name}.weights`;
  const nodes = liveNodes(g);
  // Initializers only dead nodes read are left out too: ORT would warn about each ("Removing initializer …
  // It is not used by any node") and an external one would still take its bytes in the blob.
  const used = new Set<string>(g.outputs.map((o) => o.value.name));
  for (const n of nodes) for (const v of n.inputs) if (v) used.add(v.name);
  const initializer: TensorProto[] = [];
  const chunks: { offset: number; bytes: Uint8Array }[] = [];
  let offset = 0;
  for (const [name, e] of g.initializers) {
    if (!used.has(name)) continue;
    if (!e.external) {
      initializer.push(tensorProto(name, e.tensor));
      continue;
    }
    const bytes = e.tensor.bytes();
    chunks.push({ offset, bytes });
    initializer.push({
      name,
      dims: [...e.tensor.dims],
      dataType: ONNX_DTYPE[e.tensor.dtype],
      externalData: [
        { key: 'location', value: path },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(bytes.byteLength) },
      ],
    });
    offset += Math.ceil(bytes.byteLength / EXTERNAL_ALIGN) * EXTERNAL_ALIGN;
  }
  const externalData: ExternalDataFile[] = [];
  if (chunks.length) {
    const data = new Uint8Array(offset);
    for (const c of chunks) data.set(c.bytes, c.offset);
    externalData.push({ path, data });
  }
  const graph: GraphProto = {
    name: g.name,
    node: nodes.map(nodeProto),
    initializer,
    input: g.inputs.map((v) => valueInfo(v)),
    output: g.outputs.map((o) => valueInfo(o.value, o.name)),
    valueInfo: [],
  };
  const functions: FunctionProto[] = [...g.functions.values()];
  const model: ModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [...g.opsets].map(([domain, version]) => ({ domain, version })),
    producerName: 'ts-finetune',
    producerVersion: '0.1.0',
    graph,
    functions,
  };
  if (opts.docString !== undefined) model.docString = opts.docString;
  return { model, externalData };
}

/**
 * The nodes that contribute to an output, in emission order. Builders may leave dead nodes behind (e.g. a
 * Transpose that the Transpose-of-Transpose peephole in ops-shape.ts bypassed); ORT would run them.
 */
export function liveNodes(g: Graph): Node[] {
  const live = new Set<Value>(g.outputs.map((o) => o.value));
  const keep: boolean[] = new Array<boolean>(g.nodes.length).fill(false);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (!n.outputs.some((v) => live.has(v))) continue;
    keep[i] = true;
    for (const v of n.inputs) if (v) live.add(v);
  }
  return g.nodes.filter((_, i) => keep[i]);
}
