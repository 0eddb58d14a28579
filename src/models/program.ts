// A compiled step graph: the ORT session plus the bookkeeping to feed it (flat parameters, the batch,
// the objective's extra inputs) and read back loss, metrics, gradients and (when asked) logits.
// Session options follow DESIGN.md's measurements for training graphs: CSE off (it merges recomputed
// nodes back into the forward), constant folding off (it would unpack 4-bit initializers to fp32),
// memory pattern off (−30% peak RSS at equal speed).
// Also how the weights of every model graph travel to ORT (createGraphSession, used by the generation
// graphs too): each initializer of at least EXTERNAL_MIN_BYTES leaves the protobuf as per-tensor external
// data whose bytes are views of the host tensors (src/onnx externalizeInitializers 'per-tensor': no copy in
// JS), which the runtime writes to a temporary folder that ORT memory-maps (externalDataVia 'mmap',
// src/runtime/session.ts): ORT holds one copy of each weight, as file pages, and no second one
// while the session is created. Before, the graph's single external-data blob (a JS copy of every weight)
// went to the session worker and ORT copied it again: 3× the weights at peak on the 348.7M-parameter fp32
// forward of bench/nf4-memory.ts (4,454 → 2,849 MB).

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { trainingSessionOptions } from '../autodiff/index.js';
import { opaqueShapes, toModelProto, type Graph } from '../graph/index.js';
import { encodeModel } from '../onnx/encode.js';
import { externalizeInitializers } from '../onnx/external-data.js';
import { AUTO_ORDER, createSession, quickCheckExecutionProvider, type Session, type SessionOptions } from '../runtime/index.js';
import { ParamLayout } from './param-layout.js';
import { buildStepGraph, type StepGraph, type StepGraphOptions, type TrainableModel } from './step-graph.js';

export const TRAINING_SESSION_OPTIONS: SessionOptions = trainingSessionOptions;

/** Initializers this large or larger travel as external data (smaller ones stay inline in the protobuf). */
export const EXTERNAL_MIN_BYTES = 64 * 1024;

/**
 * An unshared session for `g` (built for this session alone; `opts` may override externalDataVia,
 * e.g. `{ externalDataVia: 'memory' }` where no temporary folder should be written).
 * @example
 * const s = await createGraphSession(step.graph, { ...TRAINING_SESSION_OPTIONS, device: 'cpu' });
 */
export async function createGraphSession(g: Graph, opts: SessionOptions, build: { opaqueShapes?: readonly string[] } = {}): Promise<Session> {
  // The builders' `external` hints would make toModelProto copy those weights into one blob: every large
  // initializer is externalised per tensor below instead, as a view of its host tensor.
  for (const e of g.initializers.values()) e.external = false;
  let { model } = toModelProto(g);
  if (build.opaqueShapes) model = opaqueShapes(model, { dataInputs: build.opaqueShapes, shapeOf: valueShapes(g) });
  const { model: slim, files } = externalizeInitializers(model, { minBytes: EXTERNAL_MIN_BYTES, layout: 'per-tensor' });
  // `transfer` stays off: the buffers are the model's own weights, which must not be detached.
  return createSession(encodeModel(slim), { externalDataVia: 'mmap', ...opts, externalData: files, reuse: false, transfer: false });
}

/** Static shapes of `g`'s inputs, initializers and node outputs, by name. */
function valueShapes(g: Graph): (name: string) => readonly number[] | undefined {
  const m = new Map<string, readonly number[]>();
  for (const v of g.inputs) m.set(v.name, v.shape);
  for (const [name, e] of g.initializers) m.set(name, e.tensor.dims);
  for (const n of g.nodes) for (const o of n.outputs) m.set(o.name, o.shape);
  return (name) => m.get(name);
}

/** The batch inputs of a step graph: fed with opaque dims when `opaqueShapes` is on. */
const BATCH_INPUTS = ['input_ids', 'attention_mask', 'position_ids', 'targets', 'document_ids'] as const;

export interface BatchFeeds {
  inputIds: BigInt64Array; // [B·T]
  attentionMask: BigInt64Array;
  positionIds: BigInt64Array;
  targets: BigInt64Array; // shifted labels
  documentIds?: BigInt64Array;
  /** The objective's extra inputs by name (e.g. loss_scale, ref_logps). */
  extras?: Record<string, Tensor>;
  stepSeed?: number;
}

export interface StepRunOptions {
  /** Receives the gradients in place (the layout's size): see StepProgram.run. */
  gradsInto?: Float32Array;
  /**
   * Lend the trainable values to the session worker instead of copying them: the vector passed is detached
   * for the run, and this callback receives the one to use from then on, before the run settles (also when
   * ORT fails; a worker that dies keeps it). A vector that views part of a bigger buffer is copied once.
   */
  lendParams?: (params: Float32Array) => void;
}

/** Whether `a` spans its whole (non-shared) buffer, so the buffer can move to a worker and back. */
function ownsWholeBuffer(a: Float32Array): boolean {
  return !(a.buffer instanceof SharedArrayBuffer) && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
}

export interface StepResult {
  loss: number;
  metrics: Record<string, Tensor>;
  grads?: Float32Array;
  logits?: Tensor<'float32'>;
}

/**
 * The session options of a step program: the training options, and for a checkpointed step no pre-packing
 * of constant GEMM operands (the caller's `sessionConfig` wins). Why: ORT packs one copy of a weight per
 * GEMM node, and a checkpointed step has three per frozen weight (forward, recompute, dx). Without packing,
 * fp32 LoRA on the 348.7M model at 2 × 1024 tokens peaked at 3,755 instead of 5,103 MB, compiled in 9.5
 * instead of 36.4 s, and its steps took 16.0–16.2 instead of 17.1–17.8 s (bench/lora-memory.ts --steps 3
 * [--no-prepack]). Without checkpointing packing stays on: it was ~4% faster there (docs/performance.md).
 */
export function stepSessionOptions(model: TrainableModel, options: StepGraphOptions, session: SessionOptions = {}): SessionOptions {
  const checkpointed = options.withGrad && model.gradientCheckpointing;
  const sessionConfig = { ...(checkpointed ? { 'session.disable_prepacking': '1' } : {}), ...session.sessionConfig };
  return { ...TRAINING_SESSION_OPTIONS, ...session, ...(Object.keys(sessionConfig).length > 0 ? { sessionConfig } : {}) };
}

/**
 * Whether a session asked for `device` will run on the CPU: asked for, or 'auto' where no other execution
 * provider's files are installed (so 'auto' skips them: src/runtime/devices.ts epPrecheck). Lent weights
 * are for the CPU only; where a GPU might be picked the step keeps its weights as initializers.
 */
export function runsOnCpu(device: SessionOptions['device']): boolean {
  const d = device ?? 'cpu';
  if (d === 'cpu') return true;
  return d === 'auto' && AUTO_ORDER.every((x) => x === 'cpu' || !quickCheckExecutionProvider(x).possible);
}

/** What a compiled step keeps of its StepGraph: everything but the graph itself. */
export type CompiledStep = Omit<StepGraph, 'graph'>;

export class StepProgram {
  private constructor(
    readonly step: CompiledStep,
    /** How many nodes of each op type the step graph had (before ORT's optimisations). */
    readonly opCounts: ReadonlyMap<string, number>,
    private readonly hasStepSeed: boolean,
    private readonly session: Session,
    readonly options: StepGraphOptions,
  ) {}

  static async compile(model: TrainableModel, options: StepGraphOptions, session: SessionOptions = {}): Promise<StepProgram> {
    const sessionOptions = stepSessionOptions(model, options, session);
    // On the CPU the frozen weights ORT does not pre-pack are fed from the host's arrays (lent-weights.ts):
    // one copy, not two. The others travel as memory-mapped external data (createGraphSession).
    const lendWeights = options.lendWeights ?? runsOnCpu(session.device);
    const lendFloat32 = options.lendFloat32 ?? (lendWeights && sessionOptions.sessionConfig?.['session.disable_prepacking'] === '1');
    // A checkpointed step repeats every layer's shapes in its forward, recompute and backward: ORT's
    // per-shape buffer pools then hold ~300 MB idle at the peak of a 1.17B QLoRA step (src/graph/opaque-shapes.ts).
    const opaque = options.opaqueShapes ?? (options.withGrad && model.gradientCheckpointing && runsOnCpu(session.device));
    const { graph, ...step } = buildStepGraph(model, { ...options, lendWeights, lendFloat32 });
    const s = await createGraphSession(graph, sessionOptions, opaque ? { opaqueShapes: BATCH_INPUTS } : {});
    // The graph is not kept: once ORT has it, its nodes and constant tensors are garbage (36 MB of RSS for
    // a checkpointed QLoRA step of the 348.7M model, bench/lora-memory.ts).
    const opCounts = new Map<string, number>();
    for (const n of graph.nodes) opCounts.set(n.opType, (opCounts.get(n.opType) ?? 0) + 1);
    return new StepProgram(step, opCounts, graph.inputs.some((v) => v.name === 'step_seed'), s, options);
  }

  /** Nodes in the step graph (before ORT's optimisations). */
  get nodeCount(): number {
    let n = 0;
    for (const c of this.opCounts.values()) n += c;
    return n;
  }

  get device(): string {
    return this.session.device;
  }

  /**
   * One step. `opts.gradsInto` (the layout's size) receives the gradients in place: ORT writes them into
   * it, with no buffer of its own and no copy out. The result's `grads` then views that memory (after a
   * worker borrowed it, through a new array: the one passed is detached), so a trainer reuses one buffer
   * for every step instead of a fresh vector each time (bench/lora-memory.ts, 13M LoRA values on 1.17B:
   * −50 to −58 MB peak RSS, docs/models.md "Memory").
   */
  async run(batch: BatchFeeds, params?: Float32Array, opts: StepRunOptions = {}): Promise<StepResult> {
    const { B, T } = this.options;
    const shape = [B, T];
    const feeds: Record<string, Tensor> = {
      input_ids: new Tensor('int64', shape, batch.inputIds),
      attention_mask: new Tensor('int64', shape, batch.attentionMask),
      position_ids: new Tensor('int64', shape, batch.positionIds),
      targets: new Tensor('int64', shape, batch.targets),
    };
    if (this.options.packed) {
      if (!batch.documentIds) throw new TsFinetuneError('INVALID_ARGUMENT', 'This program was built for packed batches: pass documentIds');
      feeds.document_ids = new Tensor('int64', shape, batch.documentIds);
    }
    if (this.step.layout.size > 0) {
      if (!params || params.length !== this.step.layout.size) {
        throw new TsFinetuneError('INVALID_ARGUMENT', `Expected ${this.step.layout.size} trainable values, got ${params?.length ?? 0}`);
      }
      Object.assign(feeds, this.step.layout.feeds(params));
    }
    if (this.hasStepSeed) feeds.step_seed = Tensor.int64([batch.stepSeed ?? 0], []);
    for (const e of this.step.extraInputs) {
      const t = batch.extras?.[e.name];
      if (!t) throw new TsFinetuneError('INVALID_ARGUMENT', `The objective needs input '${e.name}' [${e.shape.join(', ')}]`);
      feeds[e.name] = t;
    }
    const into = opts.gradsInto;
    if (into !== undefined && (this.step.layout.size === 0 || into.length !== this.step.layout.size)) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `gradsInto: expected ${this.step.layout.size} values (the trainable parameters), got ${into.length}`);
    }
    const lend = opts.lendParams && this.step.layout.size > 0 ? { names: this.step.layout.specs.map((s) => ParamLayout.inputName(s.name)), back: opts.lendParams } : undefined;
    if (lend && !ownsWholeBuffer(params!)) {
      // The views must cover one buffer that moves whole: a vector viewing a bigger buffer is copied once.
      const own = Float32Array.from(params!);
      Object.assign(feeds, this.step.layout.feeds(own));
    }
    const out = await this.runSession(feeds, into && new Tensor('float32', [into.length], into), lend);
    const metrics: Record<string, Tensor> = {};
    for (const k of this.step.metricNames) metrics[k] = out[`metric.${k}`]!;
    const res: StepResult = { loss: (out.loss!.data as Float32Array)[0]!, metrics };
    if (out.grads) res.grads = out.grads.data as Float32Array;
    if (out.logits) res.logits = out.logits as Tensor<'float32'>;
    return res;
  }

  /**
   * Run with the lent weights added (handed back by the session even when the run fails), `grads` written
   * into `grads`, and with `params` the trainable values lent as views of their vector.
   */
  private async runSession(feeds: Record<string, Tensor>, grads?: Tensor, params?: { names: string[]; back(p: Float32Array): void }): Promise<Record<string, Tensor>> {
    const lent = this.step.lent;
    const into = grads ? { grads } : undefined;
    const views = params?.names ?? [];
    const returned = (back: Record<string, Tensor>): void => {
      if (lent) lent.returned(back);
      // Every view comes back over the one buffer: the whole vector again.
      if (params && views.length > 0) params.back(new Float32Array((back[views[0]!]!.data as Float32Array).buffer as ArrayBuffer));
    };
    if (!lent && !into && views.length === 0) return this.session.run(feeds);
    try {
      return await this.session.runLending({ ...feeds, ...lent?.feeds() }, { names: [...(lent?.names ?? []), ...views], views, into, returned });
    } catch (e) {
      lent?.settle(e as Error); // those that did not come back: never sent, or lost with a dead worker
      throw e;
    }
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
