// The graph under construction: inputs, initializers, nodes in emission order, outputs, and the ONNX
// functions (kernels/) it calls. Emission order is the schedule we hand to ORT (see DESIGN.md: the
// builder owns the execution order). Names: module-path scopes joined with '.', so an initializer made as
// `weight` inside scope `model.layers.0.self_attn.q_proj` is named exactly as the HF safetensors key.
// Intermediate values get `<scope>/<OpType>_<n>` names, which never collide with HF keys.
// Not here: op signatures (ops-*.ts), shape rules (shape-infer.ts), protobuf (to-proto.ts, src/onnx).

import type { DType } from '../core/dtype.js';
import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import type { FunctionProto } from '../onnx/proto.js';
import { Node, Value, type Attrs } from './value.js';

export interface ValueType {
  dtype: DType;
  shape: readonly number[];
}

export interface InitializerEntry {
  value: Value;
  tensor: Tensor;
  /** Stored as ONNX external data (large frozen weights): ORT maps it without a protobuf copy. */
  external: boolean;
}

export interface OutputEntry {
  name: string;
  value: Value;
}

/**
 * A contiguous run of forward nodes [start, end) marked by the model builder (one transformer block):
 * the unit that autodiff's schedule chains and, when asked, recomputes (gradient checkpointing).
 */
export interface Segment {
  name: string;
  start: number;
  end: number;
}

export class Graph {
  readonly inputs: Value[] = [];
  readonly initializers = new Map<string, InitializerEntry>();
  readonly nodes: Node[] = [];
  readonly outputs: OutputEntry[] = [];
  readonly functions = new Map<string, FunctionProto>();
  /** Segments marked with `markSegment`, in emission order (see src/autodiff/checkpoint.ts). */
  readonly segments: Segment[] = [];
  private openSegment: string | undefined;
  /** Opset per domain ('' = ai.onnx). Raised by ops that need a newer one. */
  readonly opsets = new Map<string, number>([['', 21]]);
  private readonly scopes: string[] = [];
  private readonly names = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly constCache = new Map<string, Value>();

  constructor(readonly name = 'main') {}

  // ---- naming -------------------------------------------------------------------------------------

  /** Run `fn` with `name` pushed on the module path (e.g. 'model', 'layers', '0'). */
  scope<T>(name: string | number, fn: () => T): T {
    this.scopes.push(String(name));
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  get scopePath(): string {
    return this.scopes.join('.');
  }

  /** Full dotted name of `leaf` in the current scope (HF parameter naming). */
  qualify(leaf: string): string {
    return this.scopes.length ? `${this.scopePath}.${leaf}` : leaf;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new TsFinetuneError('GRAPH_ERROR', `Graph '${this.name}': duplicate value name '${name}'`);
    this.names.add(name);
    return name;
  }

  /** A fresh unique name for an intermediate value. */
  freshName(base: string): string {
    const prefix = this.scopes.length ? `${this.scopePath}/${base}` : base;
    let n = this.counters.get(prefix) ?? 0;
    let name = `${prefix}_${n}`;
    while (this.names.has(name)) name = `${prefix}_${++n}`;
    this.counters.set(prefix, n + 1);
    return name;
  }

  hasName(name: string): boolean {
    return this.names.has(name);
  }

  /**
   * Mark the nodes `fn` emits as one segment (e.g. one decoder layer), for the backward's schedule and
   * gradient checkpointing. Segments do not nest.
   */
  markSegment<T>(name: string, fn: () => T): T {
    if (this.openSegment !== undefined) {
      throw new TsFinetuneError('GRAPH_ERROR', `Segment '${name}' opened inside segment '${this.openSegment}': segments do not nest`);
    }
    if (this.segments.some((s) => s.name === name)) throw new TsFinetuneError('GRAPH_ERROR', `Duplicate segment name '${name}'`);
    const start = this.nodes.length;
    this.openSegment = name;
    try {
      const out = fn();
      this.segments.push({ name, start, end: this.nodes.length });
      return out;
    } finally {
      this.openSegment = undefined;
    }
  }

  // ---- leaves -------------------------------------------------------------------------------------

  /** A graph input fed at run time (token ids, trainable parameters, optimizer state …). */
  input(name: string, dtype: DType, shape: readonly number[]): Value {
    const v = new Value(this, this.claim(name), dtype, [...shape], 'input');
    this.inputs.push(v);
    return v;
  }

  /** A constant tensor baked into the model under its (scoped) name, e.g. a frozen HF weight. */
  initializer(leafName: string, tensor: Tensor, opts: { external?: boolean; qualified?: boolean } = {}): Value {
    const name = this.claim(opts.qualified ? leafName : this.qualify(leafName));
    const v = new Value(this, name, tensor.dtype, tensor.dims, 'initializer');
    this.initializers.set(name, { value: v, tensor, external: opts.external ?? false });
    return v;
  }

  /** A small constant (deduplicated by dtype, shape and contents). */
  constant(tensor: Tensor): Value {
    const key = constKey(tensor);
    const hit = key === undefined ? undefined : this.constCache.get(key);
    if (hit) return hit;
    const v = this.initializer(`const_${this.initializers.size}`, tensor, { qualified: true });
    if (key !== undefined) this.constCache.set(key, v);
    return v;
  }

  scalar(value: number, dtype: DType = 'float32'): Value {
    return this.constant(dtype === 'int64' ? Tensor.int64([value], []) : Tensor.fromNumbers([value], [], dtype));
  }

  /** A 1-D int64 constant (shapes, axes, starts/ends). */
  ints(values: readonly number[]): Value {
    return this.constant(Tensor.int64(values, [values.length]));
  }

  // ---- nodes --------------------------------------------------------------------------------------

  /**
   * Emit a node. `outTypes` are the already-inferred output types (ops-*.ts compute them);
   * each output gets a fresh name unless `outNames` gives one.
   */
  node(
    opType: string,
    inputs: readonly (Value | null)[],
    attrs: Attrs,
    outTypes: readonly ValueType[],
    opts: { domain?: string; outNames?: readonly string[] } = {},
  ): Value[] {
    for (const v of inputs) {
      if (v && v.graph !== this) {
        throw new TsFinetuneError('GRAPH_ERROR', `${opType}: input ${v.name} belongs to graph '${v.graph.name}', not '${this.name}'`);
      }
    }
    const nodeName = `${this.scopes.length ? `${this.scopePath}/` : ''}${opType}#${this.nodes.length}`;
    const node = new Node(opType, opts.domain ?? '', inputs, attrs, nodeName, this.nodes.length);
    outTypes.forEach((t, i) => {
      const given = opts.outNames?.[i];
      const name = given !== undefined ? this.claim(given) : this.claim(this.freshName(opType));
      node.outputs.push(new Value(this, name, t.dtype, [...t.shape], 'node', node));
    });
    this.nodes.push(node);
    return node.outputs;
  }

  /**
   * Mark `v` as a graph output named `name`. An Identity is inserted when the name differs, when `v` is an
   * initializer (ONNX outputs must be computed), or when `v` is already an output under another name.
   */
  output(v: Value, name?: string): Value {
    let out = v;
    const renamed = name !== undefined && name !== v.name;
    if (renamed || v.kind === 'initializer' || this.outputs.some((o) => o.value === v)) {
      const outNames = name !== undefined ? [name] : [];
      out = this.node('Identity', [v], {}, [{ dtype: v.dtype, shape: v.shape }], { outNames })[0]!;
    }
    this.outputs.push({ name: out.name, value: out });
    return out;
  }

  useOpset(domain: string, version: number): void {
    const cur = this.opsets.get(domain) ?? 0;
    if (version > cur) this.opsets.set(domain, version);
  }

  /** Register an ONNX model-local function (kernels/); idempotent by domain + name. */
  addFunction(fn: FunctionProto): void {
    const key = `${fn.domain}::${fn.name}`;
    if (!this.functions.has(key)) this.functions.set(key, fn);
    this.useOpset(fn.domain, 1);
  }

  /** Nodes that consume each value, in emission order (for autodiff and liveness). */
  consumers(): Map<Value, Node[]> {
    const m = new Map<Value, Node[]>();
    for (const n of this.nodes) {
      for (const v of n.inputs) {
        if (!v) continue;
        const list = m.get(v);
        if (list) list.push(n);
        else m.set(v, [n]);
      }
    }
    return m;
  }
}

function constKey(t: Tensor): string | undefined {
  if (t.size > 64) return undefined;
  const vals = t.dtype === 'int64' ? Array.from(t.data as BigInt64Array, String) : Array.from(t.data as ArrayLike<number>, String);
  return `${t.dtype}|${t.dims.join('x')}|${vals.join(',')}`;
}
