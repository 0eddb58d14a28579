// Model-local ONNX functions (FunctionProto) written with the same builder: this is how kernels/ ships
// "custom ops" with no native build (ORT inlines them at load, on every EP; see DESIGN.md).
// A function body is built on a scratch Graph with concrete input shapes (so shape inference checks it);
// its constants become Constant nodes, because function bodies cannot hold initializers. Functions whose
// body depends on shapes are instantiated per shape: callers put the shape in the function name.

import { TsFinetuneError } from '../core/errors.js';
import type { FunctionProto, NodeProto } from '../onnx/proto.js';
import { Graph, type ValueType } from './graph.js';
import { attributeProto, nodeProto } from './to-proto.js';
import { Call } from './ops-nn.js';
import type { Value } from './value.js';

export const KERNEL_DOMAIN = 'ts_finetune';

export interface FunctionSpec {
  name: string;
  domain?: string;
  inputs: readonly (ValueType & { name: string })[];
  docString?: string;
}

export interface DefinedFunction {
  proto: FunctionProto;
  outTypes: ValueType[];
  /** Emit a call of this function into `g` (registering it there on first use). */
  call(g: Graph, inputs: readonly Value[]): Value[];
}

export function defineFunction(spec: FunctionSpec, body: (g: Graph, inputs: Value[]) => Value[]): DefinedFunction {
  const domain = spec.domain ?? KERNEL_DOMAIN;
  const sub = new Graph(spec.name);
  const ins = spec.inputs.map((i) => sub.input(i.name, i.dtype, i.shape));
  const outs = body(sub, ins);
  const nodes: NodeProto[] = [];
  // Constants first: every use comes after them in the body.
  for (const [name, e] of sub.initializers) {
    nodes.push({
      name: `${name}_node`,
      opType: 'Constant',
      domain: '',
      input: [],
      output: [name],
      attribute: [attributeProto('value', { kind: 'tensor', value: e.tensor })],
    });
  }
  for (const n of sub.nodes) nodes.push(nodeProto(n));
  const inputNames = new Set(ins.map((v) => v.name));
  const outNames = outs.map((v, i) => {
    if (!inputNames.has(v.name)) return v.name;
    // A function output cannot be one of its inputs: pass it through an Identity.
    const id = `${spec.name}_out_${i}`;
    nodes.push({ name: `${id}_node`, opType: 'Identity', domain: '', input: [v.name], output: [id], attribute: [] });
    return id;
  });
  if (outs.length === 0) throw new TsFinetuneError('GRAPH_ERROR', `Function ${spec.name} has no outputs`);
  const proto: FunctionProto = {
    name: spec.name,
    domain,
    input: ins.map((v) => v.name),
    output: outNames,
    attribute: [],
    attributeProto: [],
    node: nodes,
    opsetImport: [...sub.opsets].map(([d, version]) => ({ domain: d, version })),
  };
  if (spec.docString !== undefined) proto.docString = spec.docString;
  const outTypes = outs.map((v) => ({ dtype: v.dtype, shape: [...v.shape] }));
  return {
    proto,
    outTypes,
    call(g, inputs) {
      inputs.forEach((v, i) => {
        const want = spec.inputs[i]!;
        if (v.dtype !== want.dtype || v.shape.length !== want.shape.length || v.shape.some((d, j) => d !== want.shape[j])) {
          throw new TsFinetuneError(
            'SHAPE_MISMATCH',
            `${spec.name}: input ${i} is ${v.dtype}[${v.shape.join(',')}], expected ${want.dtype}[${want.shape.join(',')}]`,
          );
        }
      });
      g.addFunction(proto);
      for (const o of proto.opsetImport) g.useOpset(o.domain, o.version);
      return Call(g, { domain, name: spec.name }, inputs, outTypes);
    },
  };
}
