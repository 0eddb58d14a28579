// Hide a graph's activation shapes from onnxruntime's allocation planner, so that the CPU arena, not the
// planner, decides which buffers are reused.
//
// Why: ORT 1.30 plans buffer reuse at load by exact static shape (allocation_planner.cc `SameSize`: same
// element size and same dims). A freed buffer waits, still allocated, for the next tensor of its exact
// shape, however far away that is. In a checkpointed training step every decoder layer's forward, its
// recompute and its backward repeat the same shapes with long gaps between them, so these per-shape pools
// hold buffers idle across the step. In a QLoRA step of a 1.17B model (B 4 × T 256) the arena had 721 MB
// requested at its peak while 432 MB of tensors were alive; the extra ~300 MB made the arena grow a 512 MB
// region (bench/step-liveness.ts shows the arena's counters). The planner does not pool a value whose
// inferred shape it does not know (`FindReusableTensor`): its buffer goes back to the arena when it dies,
// and the arena hands it to the next request of any shape. Python users would set
// `SessionOptions.enable_mem_reuse = False`; onnxruntime-node exposes no such option, hence this pass.
//
// How: the shapes ORT infers come from the graph inputs' declared shapes and from constant shape operands
// (Reshape, Expand, ConstantOfShape). The pass feeds the batch inputs, and every input of a function call,
// to their consumers through a Reshape to the same dims, and replaces every constant shape operand by the
// same values with a length shape inference cannot know (OpaqueVectors), so the values downstream have no
// rank at all for the planner: a rank-known shape with unknown dims is not pooled either, but the planner
// compares each such value with every freed buffer, which cost 10 s at load for 22 layers. The unknown
// comes from a run-time zero, `x[0, …, 0] · 0` for an int64 batch input x. A function's constant shape
// vectors become extra inputs its call sites feed with the graph's copies, which are made once per
// distinct value. Values are unchanged (Reshape is a view in ORT, no copy); the added nodes work on
// scalars and int64 vectors of a few elements.
// Not here: which programs use it (src/models/program.ts).

import { TsFinetuneError } from '../core/errors.js';
import { AttrType, type FunctionProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from '../onnx/proto.js';

/** Ops whose output dims are read from a shape operand: the operand's index. */
const SHAPE_OPERAND: Readonly<Record<string, number>> = { Reshape: 1, Expand: 1, ConstantOfShape: 0 };

export interface OpaqueShapesOptions {
  /** Graph inputs that consumers should see with unknown dims (the batch: input_ids, attention_mask, …). */
  dataInputs: readonly string[];
  /** Static shape of a value of the graph by name (call sites of functions get their inputs re-shaped). */
  shapeOf(name: string): readonly number[] | undefined;
}

const int64Bytes = (xs: readonly number[]): Uint8Array => new Uint8Array(new BigInt64Array(xs.map((x) => BigInt(x))).buffer);

function node(name: string, opType: string, input: string[], attribute: NodeProto['attribute'] = []): NodeProto {
  return { name, opType, domain: '', input, output: [name], attribute };
}

function constantNode(name: string, xs: readonly number[], scalar = false): NodeProto {
  return node(name, 'Constant', [], [{ name: 'value', type: AttrType.TENSOR, t: { name: '', dims: scalar ? [] : [xs.length], dataType: 7, rawData: int64Bytes(xs) } }]);
}

/** A constant int64 vector, keyed by its values (equal vectors share one run-time copy). */
interface ConstantVector {
  key: string;
  values: number[];
}

function vector(values: readonly number[]): ConstantVector {
  return { key: values.join(','), values: [...values] };
}

function vectorOf(t: TensorProto | undefined): ConstantVector | undefined {
  if (!t?.rawData || t.dataType !== 7 || t.dims.length !== 1) return undefined;
  const r = t.rawData;
  return vector(Array.from(new BigInt64Array(r.buffer.slice(r.byteOffset, r.byteOffset + r.byteLength)), (x) => Number(x)));
}

/** The constant int64 vectors among `nodes` (Constant nodes) and `initializers`, by name. */
function constantVectors(nodes: readonly NodeProto[], initializers: readonly TensorProto[] = []): Map<string, ConstantVector> {
  const m = new Map<string, ConstantVector>();
  for (const t of initializers) {
    const v = vectorOf(t);
    if (v) m.set(t.name, v);
  }
  for (const n of nodes) {
    const v = n.opType === 'Constant' ? vectorOf(n.attribute.find((a) => a.name === 'value')?.t) : undefined;
    if (v) m.set(n.output[0]!, v);
  }
  return m;
}

/**
 * Emits, once per distinct value, `vector[Range(0, length + zero)]`: the same values, of a length shape
 * inference cannot know, so a Reshape (or Expand) fed with it has an output of unknown rank. Such a value
 * has no shape for ORT's planner at all, which it skips at once (a value with a shape of unknown dims would
 * still be compared against every freed buffer: quadratic in the graph's size, 10 s at load for 22 layers).
 */
class OpaqueVectors {
  private readonly made = new Map<string, string>();
  private readonly lengths = new Map<number, string>();

  constructor(
    private readonly out: NodeProto[],
    private readonly zero: string,
  ) {}

  /** The opaque copy of `values`, emitting its nodes into `out` on first use. */
  of(values: readonly number[]): string {
    const v = vector(values);
    let d = this.made.get(v.key);
    if (d === undefined) {
      d = `opaque.v${this.made.size}`;
      this.out.push(constantNode(`${d}_c`, v.values), node(d, 'Gather', [`${d}_c`, this.range(v.values.length)]));
      this.made.set(v.key, d);
    }
    return d;
  }

  private range(length: number): string {
    let r = this.lengths.get(length);
    if (r === undefined) {
      r = `opaque.range${length}`;
      this.out.push(
        constantNode(`${r}_n`, [length], true),
        constantNode(`${r}_0`, [0], true),
        constantNode(`${r}_1`, [1], true),
        node(`${r}_end`, 'Add', [`${r}_n`, this.zero]),
        node(r, 'Range', [`${r}_0`, `${r}_end`, `${r}_1`]),
      );
      this.lengths.set(length, r);
    }
    return r;
  }
}

/** `nodes` with every constant shape operand replaced by its opaque copy (`opaqueOf`). */
function opaqueShapeOperands(nodes: readonly NodeProto[], constants: ReadonlyMap<string, ConstantVector>, opaqueOf: (v: ConstantVector) => string): NodeProto[] {
  return nodes.map((n) => {
    const at = n.domain === '' ? SHAPE_OPERAND[n.opType] : undefined;
    const v = at === undefined ? undefined : constants.get(n.input[at] ?? '');
    if (at === undefined || !v) return n;
    const opaque = opaqueOf(v);
    return { ...n, input: n.input.map((x, i) => (i === at ? opaque : x)) };
  });
}

/** A function's constant shape vectors, moved to extra inputs its call sites feed. */
interface OpaqueFunction {
  proto: FunctionProto;
  /** The values of the inputs added, in order. */
  added: ConstantVector[];
}

/**
 * `f` with each distinct constant shape operand replaced by a new input (`__opaque_shape_<i>`), which its
 * call sites feed with the graph's opaque copy: the opaque vectors are made once for the whole graph, not
 * once per inlined call (each is a small tensor with a shape, which the planner compares with every freed
 * buffer). Constant nodes left unused are dropped (ORT would warn about them).
 */
function opaqueFunction(f: FunctionProto): OpaqueFunction | undefined {
  const inputs = new Map<string, string>(); // vector key → new input name
  const added: ConstantVector[] = [];
  const body = opaqueShapeOperands(f.node, constantVectors(f.node), (v) => {
    let name = inputs.get(v.key);
    if (name === undefined) {
      name = `__opaque_shape_${inputs.size}`;
      inputs.set(v.key, name);
      added.push(v);
    }
    return name;
  });
  if (added.length === 0) return undefined;
  const used = new Set([...body.flatMap((n) => n.input), ...f.output]);
  return {
    proto: { ...f, input: [...f.input, ...inputs.values()], node: body.filter((n) => n.opType !== 'Constant' || used.has(n.output[0]!)) },
    added,
  };
}

/**
 * `model` with its activation shapes unknown to ORT's shape inference (see the file comment). The graph
 * must have an int64 data input of rank ≥ 1 among `dataInputs`.
 */
export function opaqueShapes(model: ModelProto, opts: OpaqueShapesOptions): ModelProto {
  const g = model.graph;
  const data = g.input.filter((v) => opts.dataInputs.includes(v.name));
  const seed = data.find((v) => v.elemType === 7 && (v.shape?.length ?? 0) >= 1);
  if (!seed) throw new TsFinetuneError('GRAPH_ERROR', `opaqueShapes: none of the inputs ${opts.dataInputs.join(', ')} is an int64 tensor of rank ≥ 1`);
  const zero = 'opaque.zero';
  // x[0, …, 0] · 0, a scalar (the planner neither pools nor compares scalars).
  const head: NodeProto[] = [constantNode('opaque.c0', [0], true)];
  let first = seed.name;
  for (let axis = 0; axis < seed.shape!.length; axis++) {
    head.push(node(`opaque.first${axis}`, 'Gather', [first, 'opaque.c0']));
    first = `opaque.first${axis}`;
  }
  head.push(node(zero, 'Mul', [first, 'opaque.c0']));
  // One run-time shape vector per distinct value, for the whole graph (the head holds their nodes).
  const vectors = new OpaqueVectors(head, zero);
  const renamed = new Map<string, string>();
  for (const v of data) {
    const dims = (v.shape ?? []).map((d) => d.dimValue);
    if (dims.length === 0 || dims.some((d) => d === undefined)) continue; // a scalar, or already unknown
    const name = `opaque.${v.name}`;
    head.push(node(name, 'Reshape', [v.name, vectors.of(dims as number[])]));
    renamed.set(v.name, name);
  }
  // Functions called only from the graph get their shape vectors as inputs (one called from another
  // function's body keeps its constants: its callers could not feed them).
  const functions = new Set((model.functions ?? []).map((f) => `${f.domain}:${f.name}`));
  const nested = new Set((model.functions ?? []).flatMap((f) => f.node.map((n) => `${n.domain}:${n.opType}`)));
  const rewritten = new Map<string, OpaqueFunction>();
  for (const f of model.functions ?? []) {
    const key = `${f.domain}:${f.name}`;
    const r = nested.has(key) ? undefined : opaqueFunction(f);
    if (r) rewritten.set(key, r);
  }
  const body: NodeProto[] = [];
  let k = 0;
  for (const n0 of g.node) {
    const n = { ...n0, input: n0.input.map((x) => renamed.get(x) ?? x) };
    const key = `${n.domain}:${n.opType}`;
    if (functions.has(key)) {
      // A call: each input of known rank ≥ 1 goes through a run-time Reshape, so the inlined body sees no shapes.
      n.input = n.input.map((x) => {
        const dims = x ? opts.shapeOf(x) : undefined;
        if (!x || !dims || dims.length === 0) return x;
        const r = `opaque.call.${k++}`;
        body.push(node(r, 'Reshape', [x, vectors.of(dims)]));
        return r;
      });
      for (const a of rewritten.get(key)?.added ?? []) n.input.push(vectors.of(a.values));
    }
    body.push(n);
  }
  // The operands first: their opaque copies go into the head.
  const operands = opaqueShapeOperands(body, constantVectors(g.node, g.initializer), (v) => vectors.of(v.values));
  const nodes = [...head, ...operands];
  // Constants only shape operands used are gone now (ORT would warn about each).
  const used = new Set([...nodes.flatMap((n) => n.input), ...g.output.map((v) => v.name)]);
  const graph: GraphProto = {
    ...g,
    node: nodes.filter((n) => n.opType !== 'Constant' || used.has(n.output[0]!)),
    initializer: g.initializer.filter((t) => used.has(t.name)),
  };
  return {
    ...model,
    graph,
    functions: (model.functions ?? []).map((f) => rewritten.get(`${f.domain}:${f.name}`)?.proto ?? f),
  };
}
