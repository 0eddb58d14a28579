// Where a run's numbers go: the progress bar (tokens/s, ETA), logs/metrics.jsonl, TensorBoard event files
// (reportTo 'tensorboard'), trainer_state.json's log_history, and a loss curve (logs/loss.svg) at the end.
// Logged values follow HF: `loss` is the mean step loss since the last log, `grad_norm` the last step's
// pre-clip norm, `learning_rate` the scheduler's rate after the step.

import * as path from 'node:path';
import { writeLossPlot } from './loss-plot.js';
import { MetricsLog, metricsLogPath } from './metrics-log.js';
import { ProgressReporter } from './progress.js';
import { TensorBoardWriter } from './tensorboard.js';
import type { TrainerState } from './trainer-state.js';
import type { TrainingPlan } from './training-plan.js';
import type { TrainingArguments } from './training-args.js';

type Summarize<G> = (sums: Record<string, number>, count: number, groups: G[]) => Record<string, number>;

export class TrainerLogger {
  private windowLoss = 0;
  private windowSteps = 0;
  private windowSums: Record<string, number> = {};
  private windowGroups: unknown[] = [];
  private windowTokens = 0;
  private windowStart = Date.now();
  private lastGradNorm = 0;

  private constructor(
    private readonly args: TrainingArguments,
    private readonly progress: ProgressReporter,
    private readonly metrics: MetricsLog | undefined,
    private readonly tb: TensorBoardWriter | undefined,
  ) {}

  static async open(args: TrainingArguments, plan: TrainingPlan, state: TrainerState, resumed: boolean): Promise<TrainerLogger> {
    const logDir = path.join(args.outputDir, 'logs');
    const metrics = args.reportsTo('jsonl')
      ? MetricsLog.open(metricsLogPath(args.outputDir), resumed ? { resumeStep: state.globalStep } : {})
      : undefined;
    const tb = args.reportsTo('tensorboard') ? TensorBoardWriter.open(logDir) : undefined;
    const progress = new ProgressReporter({
      total: plan.maxSteps,
      initialStep: state.globalStep,
      initialTokens: state.numInputTokensSeen,
      desc: 'train',
      disable: args.disableTqdm,
    });
    const logger = new TrainerLogger(args, progress, metrics, tb);
    // tokens/s of the first window after a resume counts only this run's tokens.
    logger.windowTokensAtStart = state.numInputTokensSeen;
    logger.windowTokens = state.numInputTokensSeen;
    return logger;
  }

  message(text: string): void {
    this.progress.write(text);
  }

  recordStep<G>(loss: number, gradNorm: number, sums: Record<string, number>, group: G, state: TrainerState): void {
    this.windowLoss += loss;
    this.windowSteps += 1;
    this.lastGradNorm = gradNorm;
    for (const [k, v] of Object.entries(sums)) this.windowSums[k] = (this.windowSums[k] ?? 0) + v;
    this.windowGroups.push(group);
    this.windowTokens = state.numInputTokensSeen;
    this.progress.update(state.globalStep, { loss, tokens: state.numInputTokensSeen, epoch: state.epoch });
  }

  flush<G>(state: TrainerState, learningRate: number, summarize: Summarize<G>): void {
    if (this.windowSteps === 0) return;
    const seconds = Math.max((Date.now() - this.windowStart) / 1000, 1e-9);
    const entry: Record<string, number> = {
      loss: round(this.windowLoss / this.windowSteps),
      grad_norm: this.lastGradNorm,
      learning_rate: learningRate,
      ...summarize(this.windowSums, this.windowSteps, this.windowGroups as G[]),
      num_tokens: this.windowTokens,
    };
    const tokensBefore = this.windowTokensAtStart;
    entry.tokens_per_second = (this.windowTokens - tokensBefore) / seconds;
    const logged = state.log(entry);
    this.metrics?.append(logged);
    this.tb?.addScalars(prefixed('train/', entry), state.globalStep);
    if (this.args.disableTqdm || !process.stderr.isTTY) this.progress.write(formatEntry(logged));
    this.windowLoss = 0;
    this.windowSteps = 0;
    this.windowSums = {};
    this.windowGroups = [];
    this.windowStart = Date.now();
    this.windowTokensAtStart = this.windowTokens;
  }

  private windowTokensAtStart = 0;

  logEval(state: TrainerState, metrics: Record<string, number>): void {
    const logged = state.log(metrics);
    this.metrics?.append(logged);
    this.tb?.addScalars(prefixed('eval/', Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k.replace(/^eval_/, ''), v]))), state.globalStep);
    this.progress.write(formatEntry(logged));
  }

  async close(state: TrainerState, trainMetrics?: Record<string, number>): Promise<void> {
    if (trainMetrics) {
      const logged = state.log(trainMetrics);
      this.metrics?.append(logged);
    }
    this.progress.close();
    this.tb?.close();
    await state.save(path.join(this.args.outputDir, 'trainer_state.json'));
    if (state.logHistory.some((e) => typeof e.loss === 'number' || typeof e.eval_loss === 'number')) {
      await writeLossPlot(path.join(this.args.outputDir, 'logs', 'loss.svg'), state.logHistory);
    }
  }
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4; // HF rounds the logged loss to 4 decimals
}

function prefixed(p: string, m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [`${p}${k}`, v]));
}

function formatEntry(e: Record<string, unknown>): string {
  return JSON.stringify(e, (_k, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(5)) : v));
}
