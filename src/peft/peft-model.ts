// PeftModel: a CausalLM wrapped with LoRA / rsLoRA / DoRA adapters, as PEFT's get_peft_model builds it.
// It is a TrainableModel: its trainable parameters are the adapter tensors (plus trained biases and
// modules_to_save copies), named by PEFT's save keys (`base_model.model.<module>.lora_A.weight` …), and its
// logits are the base decoder built with a LinearAdapter per adapted module (lora-layer.ts) — one base,
// never copied, so disabling the adapters gives the base model (the DPO reference).
// Follows peft `peft_model.py` (PeftModel, print_trainable_parameters, disable_adapter), `tuners/lora/model.py`
// (LoraModel: _create_and_replace, _mark_only_adapters_as_trainable, merge_and_unload / unload).
// Not here: the config (lora-config.ts), module selection (target-modules.ts), biases and modules_to_save
// (extra-params.ts), the layer graph (lora-layer.ts), files (adapter-io.ts), merging (merge.ts), compiled
// programs (programs.ts), training loops (src/train).

import * as path from 'node:path';
import { TsFinetuneError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import type { Graph, Value } from '../graph/index.js';
import type { LinearAdapter } from '../nn/context.js';
import type { CausalLM, ForwardInputs, ForwardOutput } from '../models/causal-lm.js';
import type { IdsInput } from '../models/batch.js';
import type { CausalLMConfig } from '../models/config.js';
import { generate as generateTokens, type GenerateOptions } from '../models/generate.js';
import { releaseGenerationPrograms } from '../models/kv-cache.js';
import type { DecoderInputs } from '../models/decoder.js';
import type { ParamLayout, ParamSpec } from '../models/param-layout.js';
import type { LogitsOptions, TrainableModel } from '../models/step-graph.js';
import type { HubOptions } from '../io/index.js';
import type { SessionOptions } from '../runtime/index.js';
import { ADAPTER_WEIGHTS_NAME, checkAdapterTensors, readAdapterFolder, writeAdapterFolder } from './adapter-io.js';
import { LoraConfig, type LoraConfigInit } from './lora-config.js';
import { loraKeys, LoraLinearAdapter, type LoraModuleSpec } from './lora-layer.js';
import { initLora, rowNorms, deltaWeight } from './lora-math.js';
import { hostLinearWeight, mergeAdapters } from './merge.js';
import { GraphPrograms, type LossAndGradients, type LossAndGradientsInputs } from './programs.js';
import { namedModules, patternValue, resolveTargetModules, selectTargetModules } from './target-modules.js';
import { copyModulesToSave, selectBiasParams, type BiasParam, type SavedModuleParam } from './extra-params.js';

export interface GetPeftModelOptions {
  /** Seed of the adapter initialisation (default 42, TrainingArguments' default seed). */
  seed?: number;
}

const frozenCache = new WeakMap<Graph, Map<string, Value>>();

export class PeftModel implements TrainableModel {
  readonly activeAdapter = 'default';
  /** The resolved config (target modules expanded as peft stores them). */
  readonly peftConfig: LoraConfig;
  readonly specs: readonly LoraModuleSpec[];
  /** Adapter tensors (lora_A / lora_B / lora_magnitude_vector) by peft key. */
  readonly adapterWeights = new Map<string, Tensor<'float32'>>();
  readonly biasParams: readonly BiasParam[];
  readonly savedModules: readonly SavedModuleParam[];
  /** Options for the sessions forward / lossAndGradients compile (e.g. { worker: false, threads: 2 }). */
  sessionOptions: SessionOptions = {};
  private disabled = 0;
  private unloaded = false;
  private readonly programs: GraphPrograms;

  /** Use getPeftModel(model, config) or PeftModel.fromPretrained(model, dir). */
  constructor(
    readonly baseModel: CausalLM,
    config: LoraConfig,
    opts: GetPeftModelOptions & { initialize?: boolean } = {},
  ) {
    const cfg = baseModel.config;
    if (config.taskType !== undefined && config.taskType !== 'CAUSAL_LM') {
      throw new TsFinetuneError('PEFT_ERROR', `LoraConfig.taskType '${config.taskType}' is not supported: ts-finetune builds causal LMs (CAUSAL_LM)`);
    }
    const targets = resolveTargetModules(config, cfg);
    const modules = selectTargetModules(config, cfg, targets);
    const resolved: LoraConfigInit = { baseModelNameOrPath: config.baseModelNameOrPath ?? baseModel.nameOrPath };
    if (config.targetModules === undefined || targets !== config.targetModules) resolved.targetModules = targets;
    this.peftConfig = config.with(resolved);
    this.specs = modules.map((m) => {
      const [outF, inF] = this.linearDims(m);
      const r = patternValue(config.rankPattern, m, config.r);
      const alpha = patternValue(config.alphaPattern, m, config.loraAlpha);
      return { module: m, inFeatures: inF, outFeatures: outF, r, alpha, scaling: config.scaling(r, alpha), dora: config.useDora, dropout: config.loraDropout };
    });
    this.biasParams = selectBiasParams(config, cfg, baseModel.dense.keys(), modules);
    this.savedModules = copyModulesToSave(config, cfg, baseModel);
    const rng = new Rng(opts.seed ?? 42);
    for (const s of this.specs) {
      const keys = loraKeys(s.module);
      const { A, B } = opts.initialize === false ? { A: new Float32Array(s.r * s.inFeatures), B: new Float32Array(s.outFeatures * s.r) } : initLora(rng.fork(s.module), config.initLoraWeights, s.r, s.inFeatures, s.outFeatures);
      this.adapterWeights.set(keys.A, new Tensor('float32', [s.r, s.inFeatures], A));
      this.adapterWeights.set(keys.B, new Tensor('float32', [s.outFeatures, s.r], B));
      if (s.dora) {
        // peft dora_init: m = ||W + s·B@A|| per output row (= ||W|| with the default zero B).
        const m = opts.initialize === false ? new Float32Array(s.outFeatures) : rowNorms(this.hostWeight(s.module), deltaWeight(A, B, s.r, s.inFeatures, s.outFeatures, s.scaling), s.outFeatures, s.inFeatures);
        this.adapterWeights.set(keys.magnitude, new Tensor('float32', [s.outFeatures], m));
      }
    }
    // peft freezes every base parameter (_mark_only_adapters_as_trainable); trained biases and
    // modules_to_save copies are listed by this wrapper instead.
    baseModel.requiresGrad = false;
    this.programs = new GraphPrograms(this);
  }

  // ---- TrainableModel --------------------------------------------------------------------------------

  get config(): CausalLMConfig {
    return this.baseModel.config;
  }

  get gradientCheckpointing(): boolean {
    return this.baseModel.gradientCheckpointing;
  }

  /** Whether the adapter trains (false after fromPretrained without isTrainable: peft's inference mode). */
  get isTrainable(): boolean {
    return !this.peftConfig.inferenceMode;
  }

  trainableParams(): ParamSpec[] {
    this.assertLive();
    if (!this.isTrainable) return [];
    const out: ParamSpec[] = [];
    for (const [name, t] of this.adapterWeights) out.push({ name, shape: [...t.dims] });
    for (const b of this.biasParams) out.push({ name: b.name, shape: [...this.baseModel.dense.get(b.hfName)!.dims] });
    for (const s of this.savedModules) out.push({ name: s.name, shape: [...s.tensor.dims] });
    return out;
  }

  /** Current values of `layout`'s parameters, packed. */
  trainableValues(layout: ParamLayout): Float32Array {
    return layout.pack((name) => this.tensor(name).data);
  }

  /** Copy trained values back (after optimizer steps). */
  loadTrainableValues(layout: ParamLayout, flat: Float32Array): void {
    for (const s of layout.specs) this.tensor(s.name).data.set(layout.view(flat, s.name));
  }

  /** A trainable tensor by peft key (adapter, bias or modules_to_save copy). */
  tensor(name: string): Tensor<'float32'> {
    const a = this.adapterWeights.get(name);
    if (a) return a;
    const b = this.biasParams.find((p) => p.name === name);
    if (b) return this.baseModel.dense.get(b.hfName)!;
    const s = this.savedModules.find((p) => p.name === name);
    if (s) return s.tensor;
    throw new TsFinetuneError('MISSING_TENSOR', `PeftModel has no parameter '${name}'`, { tensor: name });
  }

  buildLogits(g: Graph, inputs: DecoderInputs, opts: LogitsOptions): Value {
    this.assertLive();
    const enabled = opts.adaptersEnabled && this.disabled === 0;
    const value = (name: string, t: Tensor): Value => opts.params.get(name) ?? frozenValue(g, name, t);
    const hfParams = new Map<string, Value>();
    // Trained biases are the base's own (peft trains base_layer.bias in place): used with or without adapters.
    for (const b of this.biasParams) {
      const v = opts.params.get(b.name);
      if (v) hfParams.set(b.hfName, v);
    }
    const adapters = new Map<string, LinearAdapter>();
    if (enabled) {
      const run = opts.stepSeed ? { training: opts.training, stepSeed: opts.stepSeed } : { training: opts.training };
      for (const s of this.specs) {
        const k = loraKeys(s.module);
        const magnitude = s.dora ? value(k.magnitude, this.adapterWeights.get(k.magnitude)!) : undefined;
        const values = { A: value(k.A, this.adapterWeights.get(k.A)!), B: value(k.B, this.adapterWeights.get(k.B)!), ...(magnitude ? { magnitude } : {}) };
        adapters.set(s.module, new LoraLinearAdapter(s, values, run));
      }
      for (const s of this.savedModules) hfParams.set(s.hfName, value(s.name, s.tensor));
    }
    return this.baseModel.buildLogits(g, inputs, { ...opts, params: hfParams, adaptersEnabled: enabled }, { adapters });
  }

  // ---- what users call -------------------------------------------------------------------------------

  /** [trainable, all] parameter counts as peft's get_nb_trainable_parameters (4-bit weights count ×2). */
  getNbTrainableParameters(): [number, number] {
    let all = 0;
    for (const [, t] of this.baseModel.dense.storedEntries()) all += t.size; // as stored: no float32 copies of 16-bit weights
    for (const q of this.baseModel.quantized.values()) all += 2 * Math.ceil((q.outFeatures * q.inFeatures) / 2);
    let trainable = 0;
    for (const t of this.adapterWeights.values()) trainable += t.size;
    for (const s of this.savedModules) trainable += s.tensor.size;
    all += trainable; // base biases are already in the base count
    for (const b of this.biasParams) trainable += this.baseModel.dense.get(b.hfName)!.size;
    return [this.isTrainable ? trainable : 0, all];
  }

  /**
   * Prints (and returns) peft's line, e.g. `trainable params: 1,234 || all params: 5,678 || trainable%: 21.7330`.
   * @example
   * peft.printTrainableParameters();
   */
  printTrainableParameters(): string {
    const [t, a] = this.getNbTrainableParameters();
    const line = `trainable params: ${thousands(t)} || all params: ${thousands(a)} || trainable%: ${((100 * t) / a).toFixed(4)}`;
    console.log(line);
    return line;
  }

  /** Whether the adapters are active (false inside disableAdapter). */
  get adaptersEnabled(): boolean {
    return this.disabled === 0;
  }

  /**
   * peft's `with model.disable_adapter():` — the base model without LoRA (the DPO reference), same weights,
   * no copy. With a callback, runs it (awaiting a promise) and restores; without, returns a handle to restore.
   * @example
   * const ref = await peft.disableAdapter(() => peft.forward({ inputIds }));
   */
  disableAdapter(): { restore(): void };
  disableAdapter<T>(fn: () => T): T;
  disableAdapter<T>(fn?: () => T): T | { restore(): void } {
    if (this.peftConfig.bias !== 'none') {
      console.warn(
        `[ts-finetune] Careful, disabling adapter layers with bias configured to be '${this.peftConfig.bias}' does not produce the same output as the base model would without adaption.`,
      );
    }
    this.disabled++;
    let done = false;
    const restore = (): void => {
      if (!done) this.disabled--;
      done = true;
    };
    if (!fn) return { restore };
    try {
      const out = fn();
      if (out instanceof Promise) return out.finally(restore) as T;
      restore();
      return out;
    } catch (e) {
      restore();
      throw e;
    }
  }

  /** Logits (and the mean loss with labels) with the adapters applied, eval mode (no dropout). */
  async forward(inputs: ForwardInputs): Promise<ForwardOutput> {
    this.assertLive();
    return this.programs.forward(inputs, this.disabled === 0);
  }

  /**
   * The training graph without the optimizer: causal-LM loss (mean over label tokens) and its gradient
   * with respect to every trainable tensor, keyed by peft name. Dropout is active (training mode) with
   * masks from `stepSeed` (default 0).
   * @example
   * const { loss, grads } = await peft.lossAndGradients({ inputIds, attentionMask, labels });
   * grads.get('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight');
   */
  async lossAndGradients(inputs: LossAndGradientsInputs, opts: { stepSeed?: number; training?: boolean } = {}): Promise<LossAndGradients> {
    this.assertLive();
    if (!this.isTrainable) {
      throw new TsFinetuneError('PEFT_ERROR', 'This adapter was loaded for inference (isTrainable: false): load it with PeftModel.fromPretrained(model, dir, { isTrainable: true }) to train it');
    }
    return this.programs.lossAndGradients(inputs, this.disabled === 0, opts);
  }

  /** The tensors peft's save_pretrained writes, by save key (get_peft_model_state_dict). */
  adapterStateDict(): Map<string, Tensor<'float32'>> {
    const out = new Map<string, Tensor<'float32'>>(this.adapterWeights);
    for (const b of this.biasParams) out.set(b.name, this.baseModel.dense.get(b.hfName)!);
    for (const s of this.savedModules) out.set(s.name, s.tensor);
    return out;
  }

  /**
   * Write `adapter_config.json` + `adapter_model.safetensors` into `dir` (created if needed; other files
   * there are kept). Loadable by peft's PeftModel.from_pretrained and by ours.
   * @example
   * await peft.savePretrained('out/adapter');
   */
  async savePretrained(dir: string): Promise<void> {
    this.assertLive();
    // peft writes inference_mode: true into saved configs.
    await writeAdapterFolder(dir, this.peftConfig.with({ inferenceMode: true }), this.adapterStateDict());
  }

  /**
   * Load a PEFT LoRA adapter folder (local or Hub) onto `model` (peft PeftModel.from_pretrained).
   * Every tensor is checked against the model; an adapter for another architecture or with shapes that do
   * not fit fails naming the tensor. Without `isTrainable` the adapter is frozen (peft's inference mode).
   * @example
   * const peft = await PeftModel.fromPretrained(model, 'out/adapter', { isTrainable: true });
   */
  static async fromPretrained(model: CausalLM, dirOrId: string, opts: { isTrainable?: boolean } & HubOptions = {}): Promise<PeftModel> {
    const { isTrainable, ...hub } = opts;
    const folder = await readAdapterFolder(dirOrId, hub);
    const file = path.join(folder.dir, ADAPTER_WEIGHTS_NAME);
    let peft: PeftModel;
    try {
      peft = new PeftModel(model, folder.config.with({ inferenceMode: !(isTrainable ?? false) }), { initialize: false });
    } catch (e) {
      if (e instanceof TsFinetuneError) {
        const base = folder.config.baseModelNameOrPath ? ` (made for '${folder.config.baseModelNameOrPath}')` : '';
        throw new TsFinetuneError(e.code, `${folder.dir}: the adapter does not fit this model${base}: ${e.message}`, { ...e.details, dir: folder.dir }, { cause: e });
      }
      throw e;
    }
    const expected = peft.adapterStateDict();
    const shapes = new Map([...expected].map(([k, t]) => [k, t.dims]));
    const cfg = model.config;
    const expect = {
      shapes,
      modules: new Set(namedModules(cfg).map((m) => m.name)),
      describe: `${cfg.modelType}, ${cfg.numHiddenLayers} layers, hidden ${cfg.hiddenSize}`,
    };
    const loaded = checkAdapterTensors(file, folder.tensors, expect, folder.config.baseModelNameOrPath);
    for (const [k, t] of loaded) expected.get(k)!.data.set(t.data);
    return peft;
  }

  /**
   * transformers' generate with the adapters applied (or not, inside disableAdapter), KV-cached
   * (src/models/generate.ts). The adapter tensors are fed, so training between calls needs no recompile.
   * @example
   * const ids = await peft.generate([[1, 15, 27]], { maxNewTokens: 8 });
   */
  generate(inputIds: IdsInput, opts: GenerateOptions = {}): Promise<number[][]> {
    this.assertLive();
    return generateTokens(this, inputIds, opts);
  }

  getBaseModel(): CausalLM {
    return this.baseModel;
  }

  /** The base model with trained biases and modules_to_save copies written back, adapters dropped. */
  async unload(): Promise<CausalLM> {
    return this.finish(false, false);
  }

  /**
   * Merge every adapter into its base weight (W += s·B@A; DoRA rescales rows to m) and return the base
   * model. A 4-bit base weight is dequantised, merged and kept in fp32 (peft re-quantises it and warns
   * about rounding; we warn and keep the exact merge). The PeftModel is unusable afterwards.
   * @example
   * const merged = await peft.mergeAndUnload();
   * await merged.savePretrained('out/merged');
   */
  async mergeAndUnload(opts: { safeMerge?: boolean } = {}): Promise<CausalLM> {
    return this.finish(true, opts.safeMerge ?? false);
  }

  /** Free the compiled sessions. */
  async release(): Promise<void> {
    await this.programs.release();
    await releaseGenerationPrograms(this);
  }

  // ---- internals -------------------------------------------------------------------------------------

  private async finish(merge: boolean, safeMerge: boolean): Promise<CausalLM> {
    this.assertLive();
    const base = this.baseModel;
    if (merge) mergeAdapters(base, this.specs, this.adapterWeights, safeMerge);
    for (const s of this.savedModules) base.dense.set(s.hfName, s.tensor);
    await this.release();
    await base.release(); // its compiled forwards hold the old weights as initializers
    this.unloaded = true;
    return base;
  }

  private assertLive(): void {
    if (this.unloaded) throw new TsFinetuneError('PEFT_ERROR', 'This PeftModel was unloaded (unload / mergeAndUnload): use the returned base model');
  }

  private linearDims(module: string): [number, number] {
    const name = `${module}.weight`;
    const d = this.baseModel.dense.get(name);
    if (d) return [d.dims[0]!, d.dims[1]!];
    const q = this.baseModel.quantized.get(name);
    if (q) return [q.outFeatures, q.inFeatures];
    throw new TsFinetuneError('MISSING_TENSOR', `Model has no weight '${name}' for LoRA module ${module}`, { tensor: name });
  }

  /** The fp32 weight [out, in] of a linear (dequantised when 4-bit). */
  hostWeight(module: string): Float32Array {
    return hostLinearWeight(this.baseModel, module);
  }
}

function frozenValue(g: Graph, name: string, t: Tensor): Value {
  let m = frozenCache.get(g);
  if (!m) frozenCache.set(g, (m = new Map()));
  let v = m.get(name);
  if (!v) {
    v = g.initializer(name, t, { qualified: true, external: t.byteLength >= 1 << 20 });
    m.set(name, v);
  }
  return v;
}

/** Python's `{:,d}`. */
function thousands(n: number): string {
  return String(Math.trunc(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * Wrap `model` with LoRA adapters as `config` describes (peft get_peft_model). The base model's own
 * weights are frozen; the adapters start as peft initialises them, from `seed`.
 * @example
 * const peft = getPeftModel(model, new LoraConfig({ r: 16, loraAlpha: 32, targetModules: 'all-linear', taskType: 'CAUSAL_LM' }));
 * peft.printTrainableParameters();
 */
export function getPeftModel(model: CausalLM, config: LoraConfig, opts: GetPeftModelOptions = {}): PeftModel {
  if (!(config instanceof LoraConfig)) throw new TsFinetuneError('INVALID_ARGUMENT', 'getPeftModel: config must be a LoraConfig');
  return new PeftModel(model, config, opts);
}
