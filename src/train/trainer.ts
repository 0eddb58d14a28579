// The training loop shared by SFT, DPO and ORPO (transformers' Trainer._inner_training_loop, as a plain
// loop): epochs or maxSteps, a per-epoch shuffle from the data seed, gradient accumulation with the loss
// normalised over the whole accumulated batch, global-norm clipping (grad_norm logged before clipping),
// the optimizer and LR schedule, logging, evaluation, checkpoints with rotation, resume, Ctrl-C.
// Subclasses supply the examples, the batches and the objective (what the graph computes as the loss).
// Not here: checkpoint file layout (trainer-checkpoint.ts), log sinks (trainer-logging.ts).

import * as path from 'node:path';
import { TsFinetuneError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import type { Tensor } from '../core/tensor.js';
import { ParamLayout, StepProgram, type Objective } from '../models/index.js';
import { clipCoefficient, globalL2Norm } from '../optim/grad-clip.js';
import { createOptimizer } from '../optim/create.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { LrScheduler } from '../optim/schedules.js';
import type { SessionOptions } from '../runtime/index.js';
import { checkpointDirName } from './checkpoint-dir.js';
import type { CollatedBatch } from './collator.js';
import { installInterruptHandler, type InterruptHandle, type InterruptOptions, type SignalSource } from './interrupt.js';
import { TrainerState } from './trainer-state.js';
import type { TrainerModel } from './trainer-model.js';
import { TrainerLogger } from './trainer-logging.js';
import {
  loadTrainingCheckpoint,
  loadTrainingParams,
  prepareOutputDir,
  saveTrainingCheckpoint,
  type DataPosition,
} from './trainer-checkpoint.js';
import { epochEndActions, planTraining, stepActions, type TrainingPlan } from './training-plan.js';
import type { TrainingArguments } from './training-args.js';
import { pathExists } from '../core/fs-atomic.js';

export interface MicroBatch {
  batch: CollatedBatch;
  /** Objective inputs beyond the batch (reference log-probs …). */
  extras?: Record<string, Tensor>;
  /** Rows of the dataset in this batch (for messages and sample counts). */
  rows: number[];
}

export interface TrainOutput {
  globalStep: number;
  trainingLoss: number;
  metrics: Record<string, number>;
  /** True when Ctrl-C stopped the run (a checkpoint was saved). */
  interrupted: boolean;
}

export abstract class Trainer<E> {
  readonly args: TrainingArguments;
  readonly model: TrainerModel;
  state: TrainerState;
  protected trainExamples: E[] = [];
  protected evalExamples: E[] = [];
  protected layout!: ParamLayout;
  protected params!: Float32Array;
  protected optimizer?: Optimizer;
  protected scheduler?: LrScheduler;
  /** Where Ctrl-C comes from (default: `process`); an EventEmitter lets a caller or a test send it. */
  interruptSource?: SignalSource;
  private readonly programs = new Map<string, Promise<StepProgram>>();
  /**
   * Gradient buffers the step programs write into, reused every step: [0] the first micro-batch's (the
   * accumulator), [1] the later ones'. A fresh vector per step, as ORT's output copied out of a worker,
   * cost 50–58 MB more peak RSS at 13M LoRA values (bench/lora-memory.ts, docs/models.md "Memory").
   */
  private readonly gradBuffers: Float32Array[] = [];
  private prepared = false;

  constructor(model: TrainerModel, args: TrainingArguments) {
    this.model = model;
    this.args = args;
    this.state = new TrainerState();
  }

  /** Turn the datasets into examples (tokenized …); called once before the first train/evaluate. */
  protected abstract prepareData(): Promise<{ train: E[]; eval: E[] }>;
  /** The loss the graph computes. */
  protected abstract objective(): Objective;
  /** Collate examples into a micro-batch of exactly `B` rows (padding rows allowed). */
  protected abstract makeBatch(examples: E[], rows: number[], B: number, training: boolean): Promise<MicroBatch>;
  /** Map summed metrics of `steps` optimizer steps (or eval batches) to logged values. */
  protected abstract summarize(sums: Record<string, number>, count: number, group: MicroBatch[][]): Record<string, number>;
  /** Inputs that depend on the whole accumulation group (e.g. loss_scale = 1 / label tokens). */
  protected abstract groupExtras(group: MicroBatch[]): Record<string, Tensor>;

  protected async ensurePrepared(): Promise<void> {
    if (this.prepared) return;
    const { train, eval: ev } = await this.prepareData();
    this.trainExamples = train;
    this.evalExamples = ev;
    this.layout = new ParamLayout(this.model.trainableParams());
    this.params = this.model.trainableValues(this.layout);
    this.prepared = true;
  }

  protected async program(B: number, T: number, withGrad: boolean, packed: boolean, adaptersEnabled = true): Promise<StepProgram> {
    const key = `${B}x${T}|${withGrad}|${packed}|${adaptersEnabled}`;
    let p = this.programs.get(key);
    if (!p) {
      p = StepProgram.compile(
        this.model,
        { B, T, objective: this.objective(), withGrad, packed, adaptersEnabled, training: withGrad },
        this.stepSessionOptions(),
      );
      this.programs.set(key, p);
    }
    return p;
  }

  /** Session options of the step programs (a subclass may add e.g. graphOptimizationLevel for faster compiles). */
  protected stepSessionOptions(): SessionOptions {
    return { device: this.args.useCpu ? 'cpu' : this.args.device };
  }

  /** Micro-batch row indices of one epoch, shuffled from the data seed (the same on every run). */
  protected epochOrder(epoch: number): number[][] {
    const n = this.trainExamples.length;
    const rng = new Rng(this.args.dataSeed ?? this.args.seed).fork(`epoch-${epoch}`);
    const perm = Array.from(rng.permutation(n));
    const bs = this.args.perDeviceTrainBatchSize;
    const out: number[][] = [];
    for (let i = 0; i < n; i += bs) {
      const rows = perm.slice(i, i + bs);
      if (rows.length < bs && this.args.dataloaderDropLast) break;
      out.push(rows);
    }
    return out;
  }

  async train(opts: { resumeFromCheckpoint?: boolean | string | null } = {}): Promise<TrainOutput> {
    await this.ensurePrepared();
    const args = this.args;
    if (this.trainExamples.length === 0) throw new TsFinetuneError('DATASET_ERROR', 'Trainer: the training set is empty');
    const plan = planTraining(args, this.trainExamples.length);
    const resume = await prepareOutputDir(args.outputDir, opts.resumeFromCheckpoint ?? args.resumeFromCheckpoint);
    this.state = TrainerState.forRun(args, plan);
    this.scheduler = args.createScheduler(plan.maxSteps);
    const decayMask = this.decayMask();
    this.optimizer = await createOptimizer(args.optim, this.layout.size, {
      beta1: args.adamBeta1,
      beta2: args.adamBeta2,
      eps: args.adamEpsilon,
      weightDecay: args.weightDecay,
      decayMask,
      paramRanges: this.layout.specs.map((s) => {
        const off = this.layout.offsets.get(s.name)!;
        return [off, off + s.shape.reduce((a, b) => a * b, 1)] as [number, number];
      }),
      device: args.useCpu ? 'cpu' : args.device,
    });
    let pos: DataPosition = { epoch: 0, batchesDone: 0 };
    if (resume) {
      const ck = await loadTrainingCheckpoint(resume, this.layout, this.optimizer!);
      this.params = ck.params;
      this.state = ck.state;
      this.scheduler = ck.scheduler;
      pos = ck.position;
    }
    const logger = await TrainerLogger.open(args, plan, this.state, resume !== undefined);
    const interruptOpts: InterruptOptions = {
      onFirst: () => logger.message('Interrupt: finishing this step and saving a checkpoint (Ctrl-C again to quit now)'),
    };
    if (this.interruptSource) interruptOpts.source = this.interruptSource;
    const interrupt: InterruptHandle = installInterruptHandler(interruptOpts);
    const started = Date.now();
    let interrupted = false;
    let trainingLossSum = 0;
    let trainingSteps = 0;
    try {
      outer: for (let epoch = pos.epoch; epoch < plan.numTrainEpochs; epoch++) {
        const batches = this.epochOrder(epoch);
        const start = epoch === pos.epoch ? pos.batchesDone : 0;
        for (let b = start; b < batches.length; ) {
          const groupRows = batches.slice(b, b + args.gradientAccumulationSteps);
          b += groupRows.length;
          const r = await this.optimizerStep(groupRows);
          trainingLossSum += r.loss;
          trainingSteps++;
          this.state.globalStep += 1;
          this.state.epoch = epoch + b / batches.length;
          this.state.numInputTokensSeen += r.tokens;
          logger.recordStep(r.loss, r.gradNorm, r.metricSums, r.group, this.state);
          const act = stepActions(args, plan, this.state.globalStep);
          const atEpochEnd = b >= batches.length;
          const endAct = atEpochEnd ? epochEndActions(args) : { log: false, evaluate: false, save: false };
          if (act.log || endAct.log) logger.flush<MicroBatch[]>(this.state, this.scheduler!.lr, (s, c, g) => this.summarize(s, c, g));
          if ((act.evaluate || endAct.evaluate) && this.evalExamples.length) await this.evaluateInto(logger);
          if (act.save || endAct.save || interrupt.requested) {
            await this.saveCheckpoint({ epoch: atEpochEnd ? epoch + 1 : epoch, batchesDone: atEpochEnd ? 0 : b }, plan);
          }
          if (interrupt.requested) {
            interrupted = true;
            break outer;
          }
          if (act.stop) break outer;
        }
      }
    } finally {
      interrupt.dispose();
    }
    // HF's load_best_model_at_end: the best checkpoint's trained values replace the last ones.
    if (args.loadBestModelAtEnd && !interrupted && this.state.bestModelCheckpoint !== null) {
      this.params = await loadTrainingParams(this.state.bestModelCheckpoint, this.layout);
      logger.message(`Loaded the best checkpoint ${this.state.bestModelCheckpoint} (${args.metricForBestModel} ${this.state.bestMetric})`);
    }
    this.model.loadTrainableValues(this.layout, this.params);
    const runtime = (Date.now() - started) / 1000;
    const trainingLoss = trainingSteps ? trainingLossSum / trainingSteps : 0;
    const metrics: Record<string, number> = {
      train_runtime: runtime,
      train_samples_per_second: (trainingSteps * plan.totalTrainBatchSize) / Math.max(runtime, 1e-9),
      train_steps_per_second: trainingSteps / Math.max(runtime, 1e-9),
      total_flos: 0,
      train_loss: trainingLoss,
    };
    await logger.close(this.state, interrupted ? undefined : metrics);
    return { globalStep: this.state.globalStep, trainingLoss, metrics, interrupted };
  }

  /** One optimizer step over a group of micro-batches (gradient accumulation). */
  private async optimizerStep(groupRows: number[][]): Promise<{
    loss: number;
    gradNorm: number;
    tokens: number;
    metricSums: Record<string, number>;
    group: MicroBatch[];
  }> {
    const bs = this.args.perDeviceTrainBatchSize;
    const group: MicroBatch[] = [];
    for (const rows of groupRows) group.push(await this.makeBatch(rows.map((i) => this.trainExamples[i]!), rows, bs, true));
    const shared = this.groupExtras(group);
    let grads: Float32Array | undefined;
    let loss = 0;
    let tokens = 0;
    const metricSums: Record<string, number> = {};
    for (const [k, mb] of group.entries()) {
      const prog = await this.program(mb.batch.B, mb.batch.T, true, mb.batch.packed);
      const seed = (this.args.seed * 1_000_003 + this.state.globalStep * 64 + k) % 2 ** 31;
      const slot = k === 0 ? 0 : 1;
      // A buffer a worker kept (it died mid-run) comes back detached, with length 0: start a new one.
      const into = this.gradBuffers[slot]?.length === this.layout.size ? this.gradBuffers[slot] : new Float32Array(this.layout.size);
      // The trainable values are lent to the session worker, not copied (−50 MB peak RSS for LoRA on 1.17B;
      // a whole model's worth for full fine-tuning): they come back before the run settles.
      const res = await prog.run({ ...mb.batch.feeds, extras: { ...mb.extras, ...shared }, stepSeed: seed }, this.params, {
        gradsInto: into,
        lendParams: (p) => (this.params = p),
      });
      this.gradBuffers[slot] = res.grads!;
      if (!Number.isFinite(res.loss)) {
        throw new TsFinetuneError(
          'NON_FINITE_LOSS',
          `Loss became ${res.loss} at step ${this.state.globalStep + 1} (micro-batch ${k}, dataset rows ${mb.rows.join(', ')}); ` +
            'training stopped; the last checkpoint is intact. Lower the learning rate or check these rows.',
          { step: this.state.globalStep + 1, rows: mb.rows },
        );
      }
      loss += res.loss;
      tokens += mb.batch.numTokens;
      for (const [name, t] of Object.entries(res.metrics)) metricSums[name] = (metricSums[name] ?? 0) + sumOf(t);
      const g = res.grads!;
      if (!grads) grads = g;
      else for (let i = 0; i < g.length; i++) grads[i]! += g[i]!;
    }
    const gradNorm = globalL2Norm([grads!]);
    if (this.args.maxGradNorm > 0) {
      const coef = clipCoefficient(gradNorm, this.args.maxGradNorm);
      if (coef < 1) for (let i = 0; i < grads!.length; i++) grads![i]! *= coef;
    }
    await this.optimizer!.step(this.params, grads!, this.scheduler!.lr);
    this.scheduler!.step();
    return { loss, gradNorm, tokens, metricSums, group };
  }

  /** HF's default: no weight decay on biases and norm weights. */
  private decayMask(): Float32Array | undefined {
    if (this.args.weightDecay === 0) return undefined;
    const mask = new Float32Array(this.layout.size).fill(1);
    for (const s of this.layout.specs) {
      if (/(^|\.)bias$|norm\.weight$|layernorm\.weight$/.test(s.name)) this.layout.view(mask, s.name).fill(0);
    }
    return mask;
  }

  private async saveCheckpoint(position: DataPosition, plan: TrainingPlan): Promise<void> {
    this.model.loadTrainableValues(this.layout, this.params);
    // HF's _save_checkpoint: the best checkpoint is the one of the step with the best metric, once saved
    // (rotation then keeps it).
    const best = this.state.bestGlobalStep;
    if (best !== null) {
      const dir = path.join(this.args.outputDir, checkpointDirName(best));
      if (best === this.state.globalStep || (await pathExists(dir))) this.state.bestModelCheckpoint = dir;
    }
    await saveTrainingCheckpoint({
      args: this.args,
      plan,
      state: this.state,
      model: this.model,
      layout: this.layout,
      params: this.params,
      optimizer: this.optimizer!,
      scheduler: this.scheduler!,
      position,
    });
  }

  /** Evaluation over the eval set: summed metrics through `summarize`, with HF's eval_ prefix and timings. */
  async evaluate(): Promise<Record<string, number>> {
    await this.ensurePrepared();
    const started = Date.now();
    const bs = this.args.perDeviceEvalBatchSize;
    const sums: Record<string, number> = {};
    const groups: MicroBatch[][] = [];
    let steps = 0;
    for (let i = 0; i < this.evalExamples.length; i += bs) {
      const rows = Array.from({ length: Math.min(bs, this.evalExamples.length - i) }, (_, k) => i + k);
      const mb = await this.makeBatch(rows.map((r) => this.evalExamples[r]!), rows, bs, false);
      const prog = await this.program(mb.batch.B, mb.batch.T, false, mb.batch.packed);
      const res = await prog.run({ ...mb.batch.feeds, extras: { ...mb.extras, ...this.groupExtras([mb]) } }, this.params);
      sums.__loss = (sums.__loss ?? 0) + res.loss;
      for (const [name, t] of Object.entries(res.metrics)) sums[name] = (sums[name] ?? 0) + sumOf(t);
      groups.push([mb]);
      steps++;
    }
    const runtime = (Date.now() - started) / 1000;
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.summarize(sums, steps, groups))) out[`eval_${k}`] = v;
    out.eval_runtime = runtime;
    out.eval_samples_per_second = this.evalExamples.length / Math.max(runtime, 1e-9);
    out.eval_steps_per_second = steps / Math.max(runtime, 1e-9);
    return out;
  }

  private async evaluateInto(logger: TrainerLogger): Promise<void> {
    const m = await this.evaluate();
    logger.logEval(this.state, m);
    const metric = this.args.metricForBestModel;
    if (metric !== null) this.state.updateBest(m, metric, this.args.greaterIsBetter ?? !metric.endsWith('loss'));
  }

  /** Write the trained adapter (or model) to `dir` (default: outputDir). */
  async saveModel(dir?: string): Promise<void> {
    if (this.prepared) this.model.loadTrainableValues(this.layout, this.params);
    await this.model.savePretrained(dir ?? this.args.outputDir);
  }

  async release(): Promise<void> {
    for (const p of this.programs.values()) await (await p).release();
    this.programs.clear();
    await this.optimizer?.release();
  }
}

function sumOf(t: Tensor): number {
  let s = 0;
  const d = t.data as ArrayLike<number | bigint>;
  for (let i = 0; i < d.length; i++) s += Number(d[i]);
  return s;
}

