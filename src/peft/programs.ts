// The compiled graphs a PeftModel runs by itself: the eval forward (logits, loss) and the training graph
// without the optimizer (`lossAndGradients`), one StepProgram per (batch shape, adapters on/off, mode),
// compiled on first use. The trainers in src/train build their own programs (with the optimizer) from the
// same TrainableModel; these are for users and tests.
// Loss: transformers' causal-LM loss, Σ −log p over label tokens × loss_scale with loss_scale = 1 / (label
// tokens), i.e. the mean (REFERENCE.md).

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { makeFeeds, type IdsInput } from '../models/batch.js';
import type { ForwardInputs, ForwardOutput } from '../models/causal-lm.js';
import { StepProgram } from '../models/program.js';
import { causalLmObjective, type TrainableModel } from '../models/step-graph.js';
import type { ParamLayout } from '../models/param-layout.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { SessionOptions } from '../runtime/index.js';

export interface LossAndGradientsInputs {
  inputIds: IdsInput;
  attentionMask?: IdsInput;
  labels: IdsInput;
  positionIds?: IdsInput;
}

export interface LossAndGradients {
  /** Mean causal-LM loss over the label tokens. */
  loss: number;
  /** d loss / d tensor for every trainable tensor, by peft name, shaped like the tensor. */
  grads: Map<string, Tensor<'float32'>>;
  /** Label tokens counted (after the shift). */
  numTokens: number;
}

/** What GraphPrograms needs from its PeftModel. */
export interface ProgramHost extends TrainableModel {
  readonly baseModel: CausalLM;
  readonly sessionOptions: SessionOptions;
  trainableValues(layout: ParamLayout): Float32Array;
}

export class GraphPrograms {
  private readonly cache = new Map<string, Promise<StepProgram>>();

  constructor(private readonly host: ProgramHost) {}

  private program(key: string, model: TrainableModel, opts: Parameters<typeof StepProgram.compile>[1]): Promise<StepProgram> {
    let p = this.cache.get(key);
    if (!p) {
      p = StepProgram.compile(model, opts, { device: this.host.baseModel.device, ...this.host.sessionOptions });
      this.cache.set(key, p);
      p.catch(() => this.cache.delete(key));
    }
    return p;
  }

  async forward(inputs: ForwardInputs, adaptersEnabled: boolean): Promise<ForwardOutput> {
    const { feeds, B, T } = makeFeeds(inputs);
    // The adapter tensors are fed (not baked in), so the graph stays valid while they train.
    const prog = await this.program(`fwd:${B}x${T}:${adaptersEnabled}`, this.host, {
      B,
      T,
      objective: causalLmObjective,
      withGrad: false,
      withLogits: true,
      training: false,
      adaptersEnabled,
    });
    const layout = prog.step.layout;
    const count = countTargets(feeds.targets);
    const extras = { loss_scale: Tensor.fromNumbers([count ? 1 / count : 0], []) };
    const res = await prog.run({ ...feeds, extras }, layout.size > 0 ? this.host.trainableValues(layout) : undefined);
    const out: ForwardOutput = { logits: res.logits! };
    if (inputs.labels !== undefined) out.loss = res.loss;
    return out;
  }

  async lossAndGradients(inputs: LossAndGradientsInputs, adaptersEnabled: boolean, opts: { stepSeed?: number; training?: boolean }): Promise<LossAndGradients> {
    if (inputs.labels === undefined) throw new TsFinetuneError('INVALID_ARGUMENT', 'lossAndGradients needs labels (use -100 for positions that do not count)');
    const { feeds, B, T } = makeFeeds(inputs);
    const training = opts.training ?? true;
    const prog = await this.program(`grad:${B}x${T}:${adaptersEnabled}:${training}`, this.host, {
      B,
      T,
      objective: causalLmObjective,
      withGrad: true,
      training,
      adaptersEnabled,
    });
    const count = countTargets(feeds.targets);
    if (count === 0) throw new TsFinetuneError('INVALID_ARGUMENT', 'lossAndGradients: no label tokens (every label is -100 after the shift)');
    const layout = prog.step.layout;
    const batch = { ...feeds, extras: { loss_scale: Tensor.fromNumbers([1 / count], []) }, stepSeed: opts.stepSeed ?? 0 };
    const res = await prog.run(batch, this.host.trainableValues(layout));
    const grads = new Map<string, Tensor<'float32'>>();
    for (const s of layout.specs) {
      grads.set(s.name, new Tensor('float32', s.shape, Float32Array.from(layout.view(res.grads!, s.name))));
    }
    return { loss: res.loss, grads, numTokens: count };
  }

  async release(): Promise<void> {
    const all = [...this.cache.values()];
    this.cache.clear();
    for (const p of all) await (await p.catch(() => undefined))?.release();
  }
}

function countTargets(targets: BigInt64Array): number {
  let n = 0;
  for (const t of targets) if (t !== -100n) n++;
  return n;
}
