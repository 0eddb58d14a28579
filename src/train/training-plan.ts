// The step arithmetic of a run, as transformers' Trainer does it: micro-batches per epoch, optimizer steps
// per epoch (ceil(batches / accumulation)), total steps (maxSteps wins over epochs), warmup, the
// log/eval/save intervals with HF's ratio form resolved, and HF's DefaultFlowCallback decisions of when
// to log, evaluate, save and stop. Pure arithmetic, so the training loop stays a plain loop.
// Follows transformers `trainer.py` (set_initial_training_values) and `trainer_callback.py` (DefaultFlowCallback).

import { TsFinetuneError } from '../core/errors.js';
import type { TrainingArguments } from './training-args.js';

export interface TrainingPlan {
  numExamples: number;
  /** Micro-batches per epoch (HF's len(train_dataloader)). */
  batchesPerEpoch: number;
  /** Optimizer steps per epoch: max(1, ceil(batchesPerEpoch / gradientAccumulationSteps)). */
  updateStepsPerEpoch: number;
  /** Total optimizer steps (HF's max_steps). */
  maxSteps: number;
  /** Epochs the loop iterates (the last may stop early). */
  numTrainEpochs: number;
  /** True when the length comes from numTrainEpochs (maxSteps = -1). */
  epochBased: boolean;
  /** Sequences per optimizer step. */
  totalTrainBatchSize: number;
  warmupSteps: number;
  /** Intervals in optimizer steps, ratios resolved: ceil(maxSteps · ratio). */
  loggingSteps: number;
  evalSteps: number;
  saveSteps: number;
}

/** The plan for `numExamples` training rows under `args`. */
export function planTraining(args: TrainingArguments, numExamples: number): TrainingPlan {
  if (!Number.isSafeInteger(numExamples) || numExamples < 1) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `planTraining: the training set must have at least one row, got ${numExamples}.`, {
      numExamples,
    });
  }
  const bs = args.perDeviceTrainBatchSize;
  const batchesPerEpoch = args.dataloaderDropLast ? Math.floor(numExamples / bs) : Math.ceil(numExamples / bs);
  if (batchesPerEpoch === 0) {
    throw new TsFinetuneError(
      'INVALID_CONFIG',
      `dataloaderDropLast with perDeviceTrainBatchSize ${bs} leaves no batch from ${numExamples} rows.`,
      { key: 'dataloaderDropLast' },
    );
  }
  const accum = args.gradientAccumulationSteps;
  const updateStepsPerEpoch = Math.max(1, Math.ceil(batchesPerEpoch / accum));
  const epochBased = args.maxSteps <= 0;
  const maxSteps = epochBased ? Math.ceil(args.numTrainEpochs * updateStepsPerEpoch) : args.maxSteps;
  const numTrainEpochs = epochBased ? Math.ceil(args.numTrainEpochs) : Math.ceil(maxSteps / updateStepsPerEpoch);
  const resolve = (v: number): number => (v < 1 ? Math.ceil(maxSteps * v) : v);
  return {
    numExamples,
    batchesPerEpoch,
    updateStepsPerEpoch,
    maxSteps,
    numTrainEpochs,
    epochBased,
    totalTrainBatchSize: bs * accum,
    warmupSteps: args.getWarmupSteps(maxSteps),
    loggingSteps: resolve(args.loggingSteps),
    evalSteps: resolve(args.evalSteps ?? args.loggingSteps),
    saveSteps: resolve(args.saveSteps),
  };
}

export interface StepActions {
  log: boolean;
  evaluate: boolean;
  save: boolean;
  /** globalStep reached maxSteps. */
  stop: boolean;
}

/** What HF does after optimizer step `globalStep` (1-based): DefaultFlowCallback.on_step_end. */
export function stepActions(args: TrainingArguments, plan: TrainingPlan, globalStep: number): StepActions {
  const every = (n: number): boolean => n > 0 && globalStep % n === 0;
  const stop = globalStep >= plan.maxSteps;
  return {
    log: (globalStep === 1 && args.loggingFirstStep) || (args.loggingStrategy === 'steps' && every(plan.loggingSteps)),
    evaluate: args.evalStrategy === 'steps' && every(plan.evalSteps),
    // The final step is always saved unless saving is off.
    save: (args.saveStrategy === 'steps' && every(plan.saveSteps)) || (stop && args.saveStrategy !== 'no'),
    stop,
  };
}

/** What HF does at the end of each epoch: DefaultFlowCallback.on_epoch_end. */
export function epochEndActions(args: TrainingArguments): Omit<StepActions, 'stop'> {
  return {
    log: args.loggingStrategy === 'epoch',
    evaluate: args.evalStrategy === 'epoch',
    save: args.saveStrategy === 'epoch',
  };
}

/**
 * The fractional epoch HF logs: epoch + (micro-batches done in this epoch) / batchesPerEpoch.
 * `epochIndex` is 0-based; `batchesDone` counts micro-batches finished in the current epoch.
 */
export function epochProgress(plan: TrainingPlan, epochIndex: number, batchesDone: number): number {
  return epochIndex + batchesDone / plan.batchesPerEpoch;
}
