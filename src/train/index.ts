// src/train: the public training API (configs, trainers) and the pieces advanced users compose.
export {
  TrainingArguments,
  OPTIMIZERS,
  type TrainingArgumentsOptions,
  type TrainingArgumentsFields,
  type IntervalStrategy,
  type ReportTarget,
  type ReportTo,
  type ConfigOptions,
  type ParseFlags,
} from './training-args.js';
export { SFTConfig, type SFTConfigOptions, type SFTConfigFields, type PackingStrategy } from './sft-config.js';
export { DPOConfig, type DPOConfigOptions, type DPOConfigFields, type DPOLossType } from './dpo-config.js';
export { ORPOConfig, type ORPOConfigOptions, type ORPOConfigFields } from './orpo-config.js';
export { planTraining, stepActions, epochEndActions, epochProgress, type TrainingPlan, type StepActions } from './training-plan.js';
export { TensorBoardWriter, readTfRecords } from './tensorboard.js';
export { MetricsLog, metricsLogPath, readMetricsLog } from './metrics-log.js';
export { renderLossPlotSvg, writeLossPlot } from './loss-plot.js';
export { ProgressReporter, formatDuration } from './progress.js';
export { TrainerState, type TrainerStateJson, type LogEntry } from './trainer-state.js';
export { listCheckpoints, latestCheckpoint, type CheckpointInfo } from './checkpoint-dir.js';
export { installInterruptHandler, INTERRUPT_EXIT_CODE, type InterruptHandle } from './interrupt.js';
export { Trainer, type TrainOutput, type MicroBatch } from './trainer.js';
export { SFTTrainer, type SFTTrainerInit } from './sft-trainer.js';
export { collate, type TokenizedExample, type CollatedBatch } from './collator.js';
export { packBfd, type PackedExample } from './packing.js';
export { DPOTrainer, type DPOTrainerInit, type ReferenceMode } from './dpo-trainer.js';
export { ORPOTrainer, type ORPOTrainerInit } from './orpo-trainer.js';
export { dpoObjective, type DpoObjectiveOptions } from './dpo-objective.js';
export { orpoObjective, log1mexp, type OrpoObjectiveOptions } from './orpo-objective.js';
export { collatePreferences, type PreferenceBatch } from './dpo-batch.js';
export { tokenizePreferenceRows, extractPrompt, type PreferenceExample } from './preference-data.js';
