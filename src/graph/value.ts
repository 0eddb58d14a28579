// Values and nodes of a graph under construction. A Value has a dtype and a static shape, known when it is
// made (we emit static shapes only: ORT ignores free-dimension overrides, see DESIGN.md). A Node keeps its
// attributes with their ONNX types, so autodiff rules can read them back and the encoder can write them.
// Not here: building (graph.ts), op signatures (ops-*.ts), encoding (to-proto.ts).

import type { DType } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import type { Graph } from './graph.js';

export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'strings'; value: string[] }
  | { kind: 'tensor'; value: Tensor };

export type Attrs = Record<string, AttrValue>;

export type ValueKind = 'input' | 'initializer' | 'node';

export class Value {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly kind: ValueKind,
    /** The node that produces it (kind 'node'). */
    readonly producer?: Node,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  get size(): number {
    let n = 1;
    for (const d of this.shape) n *= d;
    return n;
  }

  toString(): string {
    return `%${this.name}: ${this.dtype}[${this.shape.join(',')}]`;
  }
}

export class Node {
  readonly outputs: Value[] = [];
  constructor(
    readonly opType: string,
    readonly domain: string,
    /** `null` is an omitted optional input (encoded as ''). */
    readonly inputs: readonly (Value | null)[],
    readonly attrs: Readonly<Attrs>,
    readonly name: string,
    /** Order of emission: the schedule (see graph.ts). */
    readonly index: number,
  ) {}

  attrInt(name: string, dflt?: number): number {
    const a = this.attrs[name];
    if (a === undefined) {
      if (dflt === undefined) throw new Error(`Node ${this.name} (${this.opType}) has no attribute '${name}'`);
      return dflt;
    }
    if (a.kind !== 'int') throw new Error(`Attribute '${name}' of ${this.opType} is ${a.kind}, not int`);
    return a.value;
  }

  attrFloat(name: string, dflt?: number): number {
    const a = this.attrs[name];
    if (a === undefined) {
      if (dflt === undefined) throw new Error(`Node ${this.name} (${this.opType}) has no attribute '${name}'`);
      return dflt;
    }
    if (a.kind !== 'float') throw new Error(`Attribute '${name}' of ${this.opType} is ${a.kind}, not float`);
    return a.value;
  }

  attrInts(name: string, dflt?: number[]): number[] {
    const a = this.attrs[name];
    if (a === undefined) {
      if (dflt === undefined) throw new Error(`Node ${this.name} (${this.opType}) has no attribute '${name}'`);
      return dflt;
    }
    if (a.kind !== 'ints') throw new Error(`Attribute '${name}' of ${this.opType} is ${a.kind}, not ints`);
    return a.value;
  }

  attrString(name: string, dflt?: string): string {
    const a = this.attrs[name];
    if (a === undefined) {
      if (dflt === undefined) throw new Error(`Node ${this.name} (${this.opType}) has no attribute '${name}'`);
      return dflt;
    }
    if (a.kind !== 'string') throw new Error(`Attribute '${name}' of ${this.opType} is ${a.kind}, not string`);
    return a.value;
  }

  /** The i-th input, which must be present. */
  in(i: number): Value {
    const v = this.inputs[i];
    if (!v) throw new Error(`Node ${this.name} (${this.opType}) has no input ${i}`);
    return v;
  }

  out(i = 0): Value {
    const v = this.outputs[i];
    if (!v) throw new Error(`Node ${this.name} (${this.opType}) has no output ${i}`);
    return v;
  }
}

/** Attribute constructors with the ONNX type explicit (JS numbers cannot tell int from float). */
export const attr = {
  int: (value: number): AttrValue => ({ kind: 'int', value }),
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  string: (value: string): AttrValue => ({ kind: 'string', value }),
  ints: (value: readonly number[]): AttrValue => ({ kind: 'ints', value: [...value] }),
  floats: (value: readonly number[]): AttrValue => ({ kind: 'floats', value: [...value] }),
  strings: (value: readonly string[]): AttrValue => ({ kind: 'strings', value: [...value] }),
  tensor: (value: Tensor): AttrValue => ({ kind: 'tensor', value }),
};
