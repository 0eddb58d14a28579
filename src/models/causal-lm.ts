// The loaded model users hold: config, host weights (fp32; a 4-bit model: 4-bit linears and 16-bit
// others, float-weights.ts), and the graph-building entry points the trainers and PEFT use. `forward`
// compiles (once per batch shape) and runs the forward graph; `generate` lives in generate.ts.
// Not here: loading from disk (auto-model.ts), LoRA (src/peft), the training loop (src/train).

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import type { Graph, Value } from '../graph/index.js';
import type { LinearAdapter } from '../nn/context.js';
import type { BitsAndBytesConfig } from '../quant/index.js';
import type { DeviceRequest, SessionOptions } from '../runtime/index.js';
import { createBuildContext, type ModelBuildContext, type QuantizedLinearSource } from './build-context.js';
import { FloatWeights, type StoredFloat } from './float-weights.js';
import type { CausalLMConfig } from './config.js';
import { decoderHidden, lmHead, type DecoderInputs } from './decoder.js';
import { makeFeeds, type IdsInput } from './batch.js';
import { generate as generateWithCache, type GenerateOptions } from './generate.js';
import { releaseGenerationPrograms, type GenerationModel } from './kv-cache.js';
import { ParamLayout, type ParamSpec } from './param-layout.js';
import { saveCausalLM, type SavePretrainedOptions } from './save.js';
import { StepProgram } from './program.js';
import { causalLmObjective, type LogitsOptions, type TrainableModel } from './step-graph.js';

export interface ForwardInputs {
  inputIds: IdsInput;
  attentionMask?: IdsInput;
  labels?: IdsInput;
  positionIds?: IdsInput;
}

export interface ForwardOutput {
  loss?: number;
  logits: Tensor<'float32'>;
}

/** Extra pieces a wrapper (PEFT) adds when building the same decoder. */
export interface BuildExtras {
  adapters?: ReadonlyMap<string, LinearAdapter>;
}

export class CausalLM implements TrainableModel {
  gradientCheckpointing = false;
  /** Full fine-tuning trains every fp parameter; PEFT and `prepareModelForKbitTraining` freeze them. */
  requiresGrad = true;
  /** Whether `enableInputRequireGrads` was called (PEFT semantics; no effect on our graphs). */
  inputRequireGrads = false;
  /** Set when loaded 4-bit (saved into config.json as `quantization_config`). */
  quantizationConfig?: BitsAndBytesConfig;
  /** ORT session options for the graphs `forward` compiles (as PeftModel.sessionOptions), e.g. `{ worker: false }`. */
  sessionOptions: SessionOptions = {};
  /**
   * The floating-point parameters by HF name. Read as a Map they are float32; a 4-bit model stores them in
   * 16 bits (float-weights.ts), and `dense.stored(name)` gives them as stored.
   */
  readonly dense: FloatWeights;
  private readonly programs = new Map<string, Promise<StepProgram>>();
  private generationView: GenerationModel | undefined;

  constructor(
    readonly config: CausalLMConfig,
    dense: ReadonlyMap<string, StoredFloat>,
    readonly quantized: Map<string, QuantizedLinearSource & { stateDict(prefix: string): Map<string, Tensor> }>,
    readonly nameOrPath: string,
    readonly device: DeviceRequest = 'cpu',
  ) {
    this.dense = FloatWeights.from(dense);
  }

  /** HF parameter names → tensors as stored (16-bit where so; 4-bit linears in bitsandbytes' serialised form). */
  stateDict(): Map<string, Tensor> {
    const m = new Map<string, Tensor>();
    for (const [k, v] of this.dense.storedEntries()) m.set(k, v);
    for (const [k, q] of this.quantized) for (const [k2, v] of q.stateDict(k)) m.set(k2, v);
    return new Map([...m].sort(([a], [b]) => compareStateDictNames(a, b)));
  }

  /**
   * transformers' `num_parameters()`: every weight element. A 4-bit weight is stored as ceil(n/2) packed
   * bytes and transformers counts that ×2 (so n, or n + 1 for an odd n); 4-bit weights are never trainable.
   */
  numParameters(opts: { onlyTrainable?: boolean } = {}): number {
    if (opts.onlyTrainable && !this.requiresGrad) return 0;
    let n = 0;
    for (const [, t] of this.dense.storedEntries()) n += t.size;
    if (!opts.onlyTrainable) for (const q of this.quantized.values()) n += 2 * Math.ceil((q.outFeatures * q.inFeatures) / 2);
    return n;
  }

  gradientCheckpointingEnable(): void {
    this.gradientCheckpointing = true;
  }

  gradientCheckpointingDisable(): void {
    this.gradientCheckpointing = false;
  }

  enableInputRequireGrads(): void {
    this.inputRequireGrads = true;
  }

  trainableParams(): ParamSpec[] {
    if (!this.requiresGrad) return [];
    return [...this.dense.storedEntries()].map(([name, t]) => ({ name, shape: [...t.dims] }));
  }

  trainableValues(layout: ParamLayout): Float32Array {
    return layout.pack((name) => this.dense.get(name)!.data);
  }

  /** Copy trained values back into the host weights (full fine-tuning); a 16-bit entry becomes float32. */
  loadTrainableValues(layout: ParamLayout, flat: Float32Array): void {
    for (const s of layout.specs) {
      const t = this.dense.stored(s.name);
      if (!t) throw new TsFinetuneError('MISSING_TENSOR', `Model has no parameter '${s.name}'`);
      if (t.dtype === 'float32') t.data.set(layout.view(flat, s.name));
      else this.dense.set(s.name, new Tensor('float32', t.dims, layout.view(flat, s.name).slice()));
    }
  }

  buildLogits(g: Graph, inputs: DecoderInputs, opts: LogitsOptions, extras: BuildExtras = {}): Value {
    const ctxOpts: Parameters<typeof createBuildContext>[2] = {
      trainable: opts.params,
      adaptersEnabled: opts.adaptersEnabled,
      training: opts.training,
    };
    if (extras.adapters) ctxOpts.adapters = extras.adapters;
    const ctx = createBuildContext(g, { dense: this.dense, quantized: this.quantized }, ctxOpts);
    const decOpts: Parameters<typeof decoderHidden>[3] = { maxPosition: opts.maxPosition };
    if (opts.block) decOpts.block = opts.block;
    const hidden = decoderHidden(ctx, this.config, inputs, decOpts);
    if (opts.head) return opts.head(hidden, (h) => lmHead(ctx, this.config, h), frozenHead(ctx, this.config));
    return lmHead(ctx, this.config, hidden);
  }

  /** transformers' forward: logits [B, T, V] and, with labels, the mean causal-LM loss. */
  async forward(inputs: ForwardInputs): Promise<ForwardOutput> {
    const { feeds, B, T } = makeFeeds(inputs);
    const key = `fwd:${B}x${T}`;
    let p = this.programs.get(key);
    if (!p) {
      // Inference only: freeze everything so parameters stay initializers (constant-foldable, no feed).
      const frozen: TrainableModel = { ...this.asFrozen() };
      p = StepProgram.compile(frozen, { B, T, objective: causalLmObjective, withGrad: false, withLogits: true }, { device: this.device, ...this.sessionOptions });
      const compiling = p;
      this.programs.set(key, compiling);
      // A failed compile (e.g. EP_UNAVAILABLE) is not cached: the next call tries again.
      compiling.catch(() => this.programs.get(key) === compiling && this.programs.delete(key));
    }
    const prog = await p;
    let count = 0;
    for (const t of feeds.targets) if (t !== -100n) count++;
    const res = await prog.run({ ...feeds, extras: { loss_scale: Tensor.fromNumbers([count ? 1 / count : 0], []) } });
    const out: ForwardOutput = { logits: res.logits! };
    if (inputs.labels !== undefined) out.loss = res.loss;
    return out;
  }

  /** A view of this model with no trainable parameters (for inference graphs). */
  asFrozen(): TrainableModel {
    return {
      config: this.config,
      gradientCheckpointing: false,
      trainableParams: () => [],
      trainableValues: () => new Float32Array(0),
      buildLogits: (g, inputs, opts) => this.buildLogits(g, inputs, opts),
    };
  }

  /**
   * transformers' generate with a KV cache (src/models/generate.ts): prompt + new tokens per row, greedy
   * unless `doSample`. The weights are baked into the generation graphs: after changing them (training),
   * call `release()` so the next call recompiles.
   * @example
   * const out = await model.generate([[1, 15, 27]], { maxNewTokens: 8 });
   */
  generate(inputIds: IdsInput, opts: GenerateOptions = {}): Promise<number[][]> {
    // One frozen view per model, so its compiled generation sessions are found again on the next call.
    this.generationView ??= { ...this.asFrozen(), device: this.device };
    return generateWithCache(this.generationView, inputIds, opts);
  }

  /**
   * transformers' save_pretrained: config.json, generation_config.json and the weights (src/models/save.ts).
   * @example
   * await merged.savePretrained('out/merged');
   */
  async savePretrained(dir: string, opts: SavePretrainedOptions = {}): Promise<void> {
    await saveCausalLM(this, dir, opts);
  }

  async release(): Promise<void> {
    for (const p of this.programs.values()) await (await p.catch(() => undefined))?.release();
    this.programs.clear();
    if (this.generationView) await releaseGenerationPrograms(this.generationView);
    this.generationView = undefined;
  }
}

/** The head weight's graph value when it is frozen, dense and not adapted (what kernels/lm-head-loss.ts can take). */
function frozenHead(ctx: ModelBuildContext, cfg: CausalLMConfig): Value | undefined {
  if (cfg.tieWordEmbeddings) return ctx.frozenWeight('model.embed_tokens.weight');
  if (ctx.adaptersEnabled && ctx.adapters.has('lm_head')) return undefined;
  return ctx.frozenWeight('lm_head.weight');
}

// torch's state_dict order: modules in the order transformers registers them (LlamaForCausalLM: model
// (embed_tokens, layers, norm), lm_head; a decoder layer: self_attn (q, k, v, o, then qwen3's q_norm, k_norm),
// mlp (gate, up, down), input_layernorm, post_attention_layernorm); in a module weight before bias, and a
// 4-bit weight's bitsandbytes entries right after it (absmax, quant_map, nested_*, quant_state).
const LAYER_MODULES = [
  'self_attn.q_proj',
  'self_attn.k_proj',
  'self_attn.v_proj',
  'self_attn.o_proj',
  'self_attn.q_norm',
  'self_attn.k_norm',
  'mlp.gate_proj',
  'mlp.up_proj',
  'mlp.down_proj',
  'input_layernorm',
  'post_attention_layernorm',
];
const PARAM_PARTS = ['weight', 'weight.absmax', 'weight.quant_map', 'weight.nested_absmax', 'weight.nested_quant_map'];

function stateDictRank(name: string): [number, number, number, number] {
  if (name.startsWith('model.embed_tokens.')) return [0, 0, 0, 0];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  if (m) {
    const rest = m[2]!;
    const mod = LAYER_MODULES.findIndex((x) => rest.startsWith(`${x}.`));
    if (mod < 0) return [1, Number(m[1]), LAYER_MODULES.length, 0];
    const part = rest.slice(LAYER_MODULES[mod]!.length + 1);
    const known = PARAM_PARTS.indexOf(part);
    // weight.quant_state.bitsandbytes__* after the other weight parts, then bias
    const partRank = known >= 0 ? known : part.startsWith('weight.') ? PARAM_PARTS.length : PARAM_PARTS.length + 1;
    return [1, Number(m[1]), mod, partRank];
  }
  if (name.startsWith('model.norm.')) return [2, 0, 0, 0];
  return [3, 0, 0, 0];
}

function compareStateDictNames(a: string, b: string): number {
  const ra = stateDictRank(a);
  const rb = stateDictRank(b);
  for (let i = 0; i < 4; i++) if (ra[i] !== rb[i]) return ra[i]! - rb[i]!;
  return a < b ? -1 : a > b ? 1 : 0;
}
