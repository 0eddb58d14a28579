// DPOConfig: TrainingArguments plus TRL's DPO fields with TRL's defaults (β 0.1, sigmoid loss, learning
// rate 1e-6, max_length 1024, max_prompt_length 512, logging every 10 steps, gradient checkpointing on).
// Loss types are the three REFERENCE.md fixes: sigmoid (with cDPO label smoothing), ipo, hinge.
// Follows trl `trainer/dpo_config.py`. Not here: the losses (the DPO trainer).

import { bool, configError, field, int, nullable, num, oneOf, str, stepsOrRatio, type FieldCheck, type FieldTable } from './config-fields.js';
import {
  TRAINING_ARGS_FIELDS,
  TrainingArguments,
  type ConfigOptions,
  type ParseFlags,
  type TrainingArgumentsFields,
} from './training-args.js';

export const DPO_LOSS_TYPES = ['sigmoid', 'ipo', 'hinge'] as const;
export type DPOLossType = (typeof DPO_LOSS_TYPES)[number];
export const TRUNCATION_MODES = ['keep_end', 'keep_start'] as const;
export type TruncationMode = (typeof TRUNCATION_MODES)[number];

export interface DPOConfigFields extends TrainingArgumentsFields {
  /** Deviation from the reference model (IPO's τ). Default 0.1. */
  beta: number;
  /** 'sigmoid' (default), 'ipo' or 'hinge'. */
  lossType: DPOLossType;
  /** cDPO label smoothing ε in [0, 0.5]; sigmoid loss only. Default 0. */
  labelSmoothing: number;
  /** Prompt + completion tokens; null = no limit. Default 1024. */
  maxLength: number | null;
  /** Prompt tokens; null = no limit. Default 512. */
  maxPromptLength: number | null;
  /** Completion tokens; null = no limit. Default null. */
  maxCompletionLength: number | null;
  /** Which end of an over-long prompt is kept. Default 'keep_end'. */
  truncationMode: TruncationMode;
  /** Compute the reference log-probs once before training, then drop the reference pass. Default false. */
  precomputeRefLogProbs: boolean;
  /** Batch size of that pass; null = perDeviceTrainBatchSize. Default null. */
  precomputeRefBatchSize: number | null;
  /** Use a uniform reference (logπref = 0). Default false. */
  referenceFree: boolean;
  /** Turn dropout off in the policy and the reference. Default true. */
  disableDropout: boolean;
  /** Default null. */
  datasetNumProc: number | null;
  /** Default null (the tokenizer's pad_token, else eos_token). */
  padToken: string | null;
  /** Pad each batch's length to a multiple of this (each new length compiles a graph); null = 8 below 64 tokens of maxLength, else 64. Default null. */
  padToMultipleOf: number | null;
}

// Newer TRL writes loss_type as a list; a one-element list is the same setting.
function lossType(): FieldCheck<DPOLossType> {
  const one = oneOf(DPO_LOSS_TYPES);
  return (value, key) => one(Array.isArray(value) && value.length === 1 ? (value[0] as unknown) : value, key);
}

export const DPO_CONFIG_FIELDS: FieldTable<DPOConfigFields> = {
  ...TRAINING_ARGS_FIELDS,
  learningRate: field(1e-6, num({ min: 0 })),
  loggingSteps: field(10, stepsOrRatio(false)),
  gradientCheckpointing: field(true, bool()),
  beta: field(0.1, num({ gt: 0 })),
  lossType: field('sigmoid', lossType()),
  labelSmoothing: field(0, num({ min: 0, max: 0.5 })),
  maxLength: field(1024, nullable(int({ min: 1 }))),
  maxPromptLength: field(512, nullable(int({ min: 1 }))),
  maxCompletionLength: field(null, nullable(int({ min: 1 }))),
  truncationMode: field('keep_end', oneOf(TRUNCATION_MODES)),
  precomputeRefLogProbs: field(false, bool()),
  precomputeRefBatchSize: field(null, nullable(int({ min: 1 }))),
  referenceFree: field(false, bool()),
  disableDropout: field(true, bool()),
  datasetNumProc: field(null, nullable(int({ min: 1 }))),
  padToken: field(null, nullable(str())),
  padToMultipleOf: field(null, nullable(int({ min: 1 }))),
};

export type DPOConfigOptions = ConfigOptions<DPOConfigFields>;

// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface DPOConfig extends DPOConfigFields {}

/**
 * Arguments of a DPO run, as TRL's `DPOConfig`.
 *
 * @example
 * const args = new DPOConfig({ outputDir: 'out', beta: 0.1, lossType: 'sigmoid', maxLength: 1024 });
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class DPOConfig extends TrainingArguments {
  static override readonly fields: FieldTable<DPOConfigFields> = DPO_CONFIG_FIELDS;
  static override readonly configName: string = 'DPOConfig';

  constructor(options: DPOConfigOptions = {}, flags: ParseFlags = {}) {
    super(options, flags);
  }

  override validate(): void {
    super.validate();
    if (this.labelSmoothing > 0 && this.lossType !== 'sigmoid') {
      configError('DPOConfig', 'labelSmoothing', `labelSmoothing (cDPO) applies to the sigmoid loss only, not "${this.lossType}".`);
    }
    validateLengths('DPOConfig', this.maxLength, this.maxPromptLength);
  }
}

export function validateLengths(className: string, maxLength: number | null, maxPromptLength: number | null): void {
  if (maxLength !== null && maxPromptLength !== null && maxPromptLength >= maxLength) {
    configError(className, 'maxPromptLength', `maxPromptLength (${maxPromptLength}) must be below maxLength (${maxLength}), ` +
      'or no completion token fits.');
  }
}
