// The KV cache of generation: the two graphs it runs, their compiled sessions, and the host-side cache.
// ORT needs static shapes, so there is one session per shape:
// - prefill [B, Tp]: the prompt → last position's logits [B, 1, V] and every layer's keys/values
//   `present.{i}.key|value` [B, K, Tp, D];
// - decode [B, 1] over a cache of S slots: `past_key_values.{i}.key|value` [B, K, S, D] come in as inputs
//   (kept on the host, fed zero-copy: the sessions run in-process), attention_mask [B, S+1] masks padding
//   and unfilled slots, and only the new token's keys/values [B, K, 1, D] come out, which the host writes
//   into its cache (HostKvCache).
//   Returning the whole updated cache instead would copy it out on every step (DESIGN.md: every output
//   is copied, ~3–4 ms/MB); bench/generate.ts measures both.
// Both graphs are the model's own `buildLogits` (the same decoder code, weights and RoPE tables as
// training; a PeftModel adds its adapters there) with `kvCache` in the decoder inputs.
// Follows transformers' DynamicCache / StaticCache semantics (keys cached after RoPE, [B, K, S, D]).
// Not here: the decode loop (generate.ts), token choice (sampling.ts).

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { Graph } from '../graph/index.js';
import type { KvPair } from '../nn/attention.js';
import type { DeviceRequest, Session, SessionOptions } from '../runtime/index.js';
import { createGraphSession } from './program.js';
import type { DecoderInputs, KvCacheIO } from './decoder.js';
import { ParamLayout } from './param-layout.js';
import type { TrainableModel } from './step-graph.js';

/**
 * What generation needs from a model: a way to build its logits (CausalLM, or a PeftModel that passes
 * its adapters to the base model's `buildLogits`). Its `trainableParams()` are fed as one flat input
 * (adapters that may still train); everything else is baked in as initializers.
 */
export interface GenerationModel extends TrainableModel {
  readonly device?: DeviceRequest;
  /** A wrapper's base model (a PeftModel's): its device is used when the wrapper has none. */
  readonly baseModel?: { readonly device: DeviceRequest };
  /** Extra session options (e.g. { worker: false, threads: 2 }). */
  readonly sessionOptions?: SessionOptions;
  /** Whether adapters are active (PeftModel.disableAdapter): part of the compiled-graph key. */
  readonly adaptersEnabled?: boolean;
}

export interface KvGraphShape {
  B: number;
  /** New tokens per row: the prompt length for prefill, 1 for decode. */
  T: number;
  /** Cached slots read (0 = prefill). */
  S: number;
}

export interface KvGraph {
  graph: Graph;
  layout: ParamLayout;
}

/** Graph input / output names (transformers' ONNX export names). */
export const pastKey = (i: number): string => `past_key_values.${i}.key`;
export const pastValue = (i: number): string => `past_key_values.${i}.value`;
export const presentKey = (i: number): string => `present.${i}.key`;
export const presentValue = (i: number): string => `present.${i}.value`;

export function buildKvGraph(model: TrainableModel, shape: KvGraphShape): KvGraph {
  const { B, T, S } = shape;
  const cfg = model.config;
  const L = cfg.numHiddenLayers;
  const K = cfg.numKeyValueHeads;
  const D = cfg.headDim;
  const g = new Graph(S === 0 ? 'prefill' : 'decode');
  const layout = new ParamLayout(model.trainableParams());
  const params = layout.inputs(g);
  const kvCache: KvCacheIO = { present: [], lastOnly: true };
  if (S > 0) {
    const past: KvPair[] = [];
    for (let i = 0; i < L; i++) {
      past.push({ key: g.input(pastKey(i), 'float32', [B, K, S, D]), value: g.input(pastValue(i), 'float32', [B, K, S, D]) });
    }
    kvCache.past = past;
  }
  const inputs: DecoderInputs = {
    inputIds: g.input('input_ids', 'int64', [B, T]),
    attentionMask: g.input('attention_mask', 'int64', [B, S + T]),
    positionIds: g.input('position_ids', 'int64', [B, T]),
    kvCache,
  };
  // Positions never exceed the slot index (they count real tokens only), so S + T rows of RoPE suffice.
  const logits = model.buildLogits(g, inputs, { params, adaptersEnabled: true, training: false, maxPosition: S + T }); // [B, 1, V]
  if (kvCache.present.length !== L) {
    throw new TsFinetuneError('GRAPH_ERROR', `generate: the model's buildLogits filled ${kvCache.present.length} of ${L} layers' KV outputs (it must pass inputs.kvCache to decoderHidden)`);
  }
  g.output(logits, 'logits');
  kvCache.present.forEach((p, i) => {
    g.output(p.key, presentKey(i)); // [B, K, T, D]
    g.output(p.value, presentValue(i));
  });
  return { graph: g, layout };
}

/** One compiled prefill or decode graph. */
export class KvProgram {
  private constructor(
    readonly shape: KvGraphShape,
    readonly layout: ParamLayout,
    private readonly session: Session,
  ) {}

  static async compile(model: GenerationModel, shape: KvGraphShape): Promise<KvProgram> {
    const { graph, layout } = buildKvGraph(model, shape);
    const device = model.device ?? model.baseModel?.device ?? 'cpu';
    // ConstantFolding off: it would unpack 4-bit initializers to fp32 at load (DESIGN.md). In-process
    // (worker: false): ORT reads the host cache in place, where a worker would get a copy of every
    // layer's cache on every step; the event loop still runs between steps. No spinning: between the
    // short decode runs the JS thread picks tokens and writes the cache, and ORT's idle threads spinning
    // beside it made a step several times slower on 2 cores (bench/generate.ts). Sessions are cached
    // here per shape, so the runtime's hash-keyed reuse (a pass over every weight) is skipped.
    const extra = model.sessionOptions ?? {};
    // Weights travel as memory-mapped external data (program.ts createGraphSession).
    const session = await createGraphSession(graph, {
      device,
      disableOptimizers: ['ConstantFolding'],
      worker: false,
      ...extra,
      sessionConfig: { 'session.intra_op.allow_spinning': '0', ...extra.sessionConfig },
    });
    return new KvProgram(shape, layout, session);
  }

  get device(): string {
    return this.session.device;
  }

  /** Run with the given feeds; returns logits [B, 1, V] and each layer's new keys / values. */
  async run(feeds: Record<string, Tensor>): Promise<{ logits: Float32Array; present: { key: Float32Array; value: Float32Array }[] }> {
    const out = await this.session.run(feeds);
    const present: { key: Float32Array; value: Float32Array }[] = [];
    for (let i = 0; out[presentKey(i)] !== undefined; i++) {
      present.push({ key: out[presentKey(i)]!.data as Float32Array, value: out[presentValue(i)]!.data as Float32Array });
    }
    return { logits: out.logits!.data as Float32Array, present };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

const programs = new WeakMap<object, Map<string, Promise<KvProgram>>>();

/** The compiled program for `shape`, compiled on first use and kept until `releaseGenerationPrograms`. */
export function kvProgram(model: GenerationModel, shape: KvGraphShape): Promise<KvProgram> {
  let m = programs.get(model);
  if (!m) {
    m = new Map();
    programs.set(model, m);
  }
  const specs = model.trainableParams();
  const params = specs.map((s) => `${s.name}[${s.shape.join('x')}]`).join(',');
  const key = `${shape.B}x${shape.T}+${shape.S}|adapters:${model.adaptersEnabled ?? true}|params:${params}`;
  let p = m.get(key);
  if (!p) {
    p = KvProgram.compile(model, shape);
    m.set(key, p);
    const mm = m;
    p.catch(() => mm.delete(key));
  }
  return p;
}

/** Free every generation session compiled for `model` (CausalLM.release calls it). */
export async function releaseGenerationPrograms(model: object): Promise<void> {
  const m = programs.get(model);
  if (!m) return;
  programs.delete(model);
  for (const p of m.values()) {
    try {
      await (await p).release();
    } catch {
      // a failed compile has nothing to release
    }
  }
}

/** Feeds for the trainable parameters, packed once per generate call and fed to every step. */
export function paramsFeed(model: TrainableModel, layout: ParamLayout): Record<string, Tensor> {
  return layout.feeds(model.trainableValues(layout));
}

/**
 * The host side: per layer a key and a value buffer [B, K, S, D] of S fixed slots, and the attention mask
 * over them ([B, S+1]: slots that are padding or not yet filled are 0; the last column is the token being
 * decoded). Generation sessions run in-process, where ORT reads inputs in place, so feeding the cache each
 * step copies nothing. Plain ArrayBuffers, not SharedArrayBuffers: onnxruntime-node 1.30 rejects tensors
 * backed by SharedArrayBuffers ('Invalid argument', measured).
 */
export class HostKvCache {
  readonly keys: Float32Array[] = [];
  readonly values: Float32Array[] = [];
  /** [B, S+1]: 1 for filled, non-padding slots; the last column is the token being decoded (always 1). */
  readonly mask: BigInt64Array;
  private readonly feeds_: Record<string, Tensor> = {};

  constructor(
    readonly layers: number,
    readonly B: number,
    readonly K: number,
    readonly S: number,
    readonly D: number,
  ) {
    const n = B * K * S * D;
    for (let i = 0; i < layers; i++) {
      const k = new Float32Array(n);
      const v = new Float32Array(n);
      this.keys.push(k);
      this.values.push(v);
      this.feeds_[pastKey(i)] = new Tensor('float32', [B, K, S, D], k);
      this.feeds_[pastValue(i)] = new Tensor('float32', [B, K, S, D], v);
    }
    this.mask = new BigInt64Array(B * (S + 1));
    for (let b = 0; b < B; b++) this.mask[b * (S + 1) + S] = 1n;
    this.feeds_['attention_mask'] = new Tensor('int64', [B, S + 1], this.mask);
  }

  /** The cache inputs of the decode graph (the same tensors every step: their buffers change in place). */
  get feeds(): Readonly<Record<string, Tensor>> {
    return this.feeds_;
  }

  /** Write `T` new positions (keys/values [B, K, T, D] as the graph returned them) into slots `start … start+T−1`. */
  write(layer: number, start: number, T: number, key: Float32Array, value: Float32Array): void {
    const { B, K, S, D } = this;
    const kc = this.keys[layer]!;
    const vc = this.values[layer]!;
    for (let bk = 0; bk < B * K; bk++) {
      const src = bk * T * D;
      const dst = (bk * S + start) * D;
      kc.set(key.subarray(src, src + T * D), dst);
      vc.set(value.subarray(src, src + T * D), dst);
    }
  }

  /** Mark slots `start … start+T−1` of every row with `mask` ([B, T]) or 1. */
  fill(start: number, T: number, mask?: ArrayLike<bigint>): void {
    const { B, S } = this;
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) this.mask[b * (S + 1) + start + t] = mask ? mask[b * T + t]! : 1n;
  }
}
