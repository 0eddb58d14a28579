// DPOTrainer (trl `trainer/dpo_trainer.py`): direct preference optimisation on prompt / chosen / rejected
// rows, with the loop, optimizers, logging and checkpoints of trainer.ts. Where the reference comes from:
//   - referenceFree: nowhere (logπref = 0);
//   - precomputeRefLogProbs: one pass over the data before training (the refModel, or the policy with its
//     adapters disabled, or its initial weights), stored on the examples; rows may also bring them as
//     `ref_chosen_logps` / `ref_rejected_logps` columns, which skips the pass;
//   - refModel: a separate frozen model run forward-only each micro-batch, fed to the loss as `ref_logps`;
//   - LoRA without refModel: the same base with adapters disabled INSIDE the training graph — one copy of
//     the base weights, no gradient through it (PEFT's disable_adapter, TRL's default for PEFT models);
//   - full fine-tuning without refModel: the policy's own graph fed its initial weights (TRL loads a copy).
// Logged (means over pairs, TRL's names): rewards/{chosen,rejected,accuracies,margins}, logps/{chosen,rejected},
// logits/{chosen,rejected}, and eval_ versions from evaluate().

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import type { CausalLMConfig, Objective, TrainableModel } from '../models/index.js';
import { PeftModel } from '../peft/index.js';
import { PreferenceTrainer, preparePolicy, type PreferenceMicroBatch, type PreferenceTrainerInit } from './dpo-base-trainer.js';
import { DPOConfig } from './dpo-config.js';
import { dpoObjective, summarizeDpo } from './dpo-objective.js';
import { frozenReference, ReferenceRunner } from './dpo-reference.js';
import type { PreferenceExample } from './preference-data.js';
import type { MicroBatch } from './trainer.js';
import type { TrainingArguments } from './training-args.js';

export interface DPOTrainerInit extends PreferenceTrainerInit {
  /** A frozen reference (a model from AutoModelForCausalLM); null/undefined: see the file comment. */
  refModel?: unknown;
  args?: DPOConfig | TrainingArguments;
}

/** Where the reference log-probs come from (see the file comment). */
export type ReferenceMode = 'free' | 'precomputed' | 'ref-model' | 'adapters-disabled' | 'initial-weights';

export class DPOTrainer extends PreferenceTrainer<DPOConfig> {
  readonly refModel: TrainableModel | null;
  readonly referenceMode: ReferenceMode;
  private runner: ReferenceRunner | undefined;

  /**
   * @example
   * const trainer = new DPOTrainer({ model, refModel: null, args: new DPOConfig({ outputDir: 'out', beta: 0.1 }),
   *   trainDataset, tokenizer, peftConfig: new LoraConfig({ r: 16, targetModules: 'all-linear' }) });
   * await trainer.train();
   */
  constructor(init: DPOTrainerInit) {
    const cfg = toDpoConfig(init.args);
    const model = preparePolicy(init.model, init.peftConfig, cfg.gradientCheckpointing);
    super(model, cfg, init);
    this.refModel = checkRefModel(init.refModel, this.model.config, model);
    const peft = this.model instanceof PeftModel;
    if (cfg.referenceFree) this.referenceMode = 'free';
    else if (cfg.precomputeRefLogProbs) this.referenceMode = 'precomputed';
    else if (this.refModel) this.referenceMode = 'ref-model';
    else if (peft) this.referenceMode = 'adapters-disabled';
    else this.referenceMode = 'initial-weights';
  }

  /** The model the precompute pass (or the per-batch pass) runs, and with which adapters. */
  private makeRunner(): ReferenceRunner {
    const session = this.sessionOptions();
    if (this.refModel) return new ReferenceRunner(frozenReference(this.refModel), { adaptersEnabled: true, session });
    if (this.model instanceof PeftModel) return new ReferenceRunner(this.model, { adaptersEnabled: false, session });
    return new ReferenceRunner(this.model, { adaptersEnabled: true, session }); // initial weights, snapshot now
  }

  protected override async prepareData(): Promise<{ train: PreferenceExample[]; eval: PreferenceExample[] }> {
    const data = await super.prepareData();
    if (this.referenceMode === 'initial-weights' || this.referenceMode === 'ref-model') this.runner = this.makeRunner();
    if (this.referenceMode === 'precomputed') {
      const runner = this.makeRunner();
      const collate = { padTokenId: this.padTokenId, padToMultipleOf: this.padMultiple };
      const c = this.config;
      try {
        await runner.precompute(data.train, c.precomputeRefBatchSize ?? c.perDeviceTrainBatchSize, collate);
        await runner.precompute(data.eval, c.precomputeRefBatchSize ?? c.perDeviceEvalBatchSize, collate);
      } finally {
        await runner.release();
      }
    }
    return data;
  }

  /** The precomputed reference log-probs of a split, as TRL adds them: columns ref_chosen_logps / ref_rejected_logps. */
  async refLogpsColumns(split: 'train' | 'eval' = 'train'): Promise<{ ref_chosen_logps: number[]; ref_rejected_logps: number[]; rows: number[] }> {
    if (this.referenceMode !== 'precomputed') throw new TsFinetuneError('INVALID_ARGUMENT', 'refLogpsColumns: set precomputeRefLogProbs to compute them');
    await this.ensurePrepared();
    const ex = split === 'train' ? this.trainExamples : this.evalExamples;
    return { ref_chosen_logps: ex.map((e) => e.refChosenLogps!), ref_rejected_logps: ex.map((e) => e.refRejectedLogps!), rows: ex.map((e) => e.row) };
  }

  protected objective(): Objective {
    const c = this.config;
    const reference = this.referenceMode === 'free' ? 'free' : this.referenceMode === 'adapters-disabled' ? 'in-graph' : 'input';
    return dpoObjective({ beta: c.beta, lossType: c.lossType, labelSmoothing: c.labelSmoothing, reference });
  }

  protected async makeBatch(examples: PreferenceExample[], _indices: number[], B: number): Promise<MicroBatch> {
    const pb = this.collate(examples, B);
    const extras: Record<string, Tensor> = {};
    if (this.referenceMode === 'precomputed') {
      const ref = new Float32Array(2 * pb.P);
      examples.forEach((e, k) => {
        ref[k] = e.refChosenLogps!;
        ref[pb.P + k] = e.refRejectedLogps!;
      });
      extras.ref_logps = new Tensor('float32', [2 * pb.P], ref);
    } else if (this.runner) {
      extras.ref_logps = new Tensor('float32', [2 * pb.P], await this.runner.logps(pb.batch));
    }
    return this.toMicroBatch(pb, examples.map((e) => e.row), extras);
  }

  protected groupExtras(group: MicroBatch[]): Record<string, Tensor> {
    const pairs = (group as PreferenceMicroBatch[]).reduce((s, m) => s + m.numPairs, 0);
    return { loss_scale: Tensor.fromNumbers([pairs > 0 ? 1 / pairs : 0], []) };
  }

  protected summarize(sums: Record<string, number>): Record<string, number> {
    return summarizeDpo(sums, this.model.config.vocabSize);
  }

  override async release(): Promise<void> {
    await this.runner?.release();
    this.runner = undefined;
    await super.release();
  }
}

function checkRefModel(ref: unknown, policy: CausalLMConfig, policyModel: unknown): TrainableModel | null {
  if (ref === null || ref === undefined) return null;
  const r = ref as Partial<TrainableModel>;
  if (typeof r.buildLogits !== 'function' || !r.config) {
    throw new TsFinetuneError('INVALID_ARGUMENT', 'DPOTrainer: refModel must be a model from AutoModelForCausalLM (or a PeftModel), or null');
  }
  // (The base under a LoRA policy is a valid refModel: LoRA never changes it.)
  if (ref === policyModel) {
    throw new TsFinetuneError('INVALID_ARGUMENT', 'DPOTrainer: model and refModel must not be the same object (pass refModel: null for a reference with the initial weights)');
  }
  if (r.config.vocabSize !== policy.vocabSize) {
    throw new TsFinetuneError(
      'INVALID_ARGUMENT',
      `DPOTrainer: refModel's vocabulary (${r.config.vocabSize} tokens) differs from the model's (${policy.vocabSize}); the reference must score the same token ids`,
      { refVocabSize: r.config.vocabSize, vocabSize: policy.vocabSize },
    );
  }
  return ref as TrainableModel;
}

function toDpoConfig(args: DPOConfig | TrainingArguments | undefined): DPOConfig {
  if (args === undefined) return new DPOConfig({});
  if (args instanceof DPOConfig) return args;
  // A plain TrainingArguments: keep its values, take DPO's own fields at their defaults.
  return DPOConfig.fromJSON(args.toJSON(), { ignoreUnknown: true });
}
