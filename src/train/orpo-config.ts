// ORPOConfig: TrainingArguments plus TRL's ORPO fields with TRL's defaults (β = the paper's λ = 0.1,
// learning rate 1e-6, max_length 1024, max_prompt_length 512, logging every 10 steps, gradient
// checkpointing on), and `orpoNllOverPrompt` (**ours**, REFERENCE.md: NLL over the chosen response by
// default; true = TRL's code, which includes the prompt). Follows trl `experimental/orpo/orpo_config.py`.

import { bool, field, int, nullable, num, oneOf, stepsOrRatio, type FieldTable } from './config-fields.js';
import { TRUNCATION_MODES, validateLengths, type TruncationMode } from './dpo-config.js';
import {
  TRAINING_ARGS_FIELDS,
  TrainingArguments,
  type ConfigOptions,
  type ParseFlags,
  type TrainingArgumentsFields,
} from './training-args.js';

export interface ORPOConfigFields extends TrainingArgumentsFields {
  /** Weight of the odds-ratio term (the paper's λ). Default 0.1. */
  beta: number;
  /** Prompt + completion tokens; null = no limit. Default 1024. */
  maxLength: number | null;
  /** Prompt tokens; null = no limit. Default 512. */
  maxPromptLength: number | null;
  /** Completion tokens; null = no limit. Default null. */
  maxCompletionLength: number | null;
  /** Which end of an over-long prompt is kept. Default 'keep_end'. */
  truncationMode: TruncationMode;
  /** NLL term over prompt + chosen response (TRL's code) instead of the response only. Default false. */
  orpoNllOverPrompt: boolean;
  /** Default true. */
  disableDropout: boolean;
  /** Default null. */
  datasetNumProc: number | null;
  /** Pad each batch's length to a multiple of this (each new length compiles a graph); null = 8 below 64 tokens of maxLength, else 64. Default null. */
  padToMultipleOf: number | null;
}

export const ORPO_CONFIG_FIELDS: FieldTable<ORPOConfigFields> = {
  ...TRAINING_ARGS_FIELDS,
  learningRate: field(1e-6, num({ min: 0 })),
  loggingSteps: field(10, stepsOrRatio(false)),
  gradientCheckpointing: field(true, bool()),
  beta: field(0.1, num({ gt: 0 })),
  maxLength: field(1024, nullable(int({ min: 1 }))),
  maxPromptLength: field(512, nullable(int({ min: 1 }))),
  maxCompletionLength: field(null, nullable(int({ min: 1 }))),
  truncationMode: field('keep_end', oneOf(TRUNCATION_MODES)),
  orpoNllOverPrompt: field(false, bool()),
  disableDropout: field(true, bool()),
  datasetNumProc: field(null, nullable(int({ min: 1 }))),
  padToMultipleOf: field(null, nullable(int({ min: 1 }))),
};

export type ORPOConfigOptions = ConfigOptions<ORPOConfigFields>;

// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface ORPOConfig extends ORPOConfigFields {}

/**
 * Arguments of an ORPO run, as TRL's `ORPOConfig`.
 *
 * @example
 * const args = new ORPOConfig({ outputDir: 'out', beta: 0.1, learningRate: 8e-6 });
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class ORPOConfig extends TrainingArguments {
  static override readonly fields: FieldTable<ORPOConfigFields> = ORPO_CONFIG_FIELDS;
  static override readonly configName: string = 'ORPOConfig';

  constructor(options: ORPOConfigOptions = {}, flags: ParseFlags = {}) {
    super(options, flags);
  }

  override validate(): void {
    super.validate();
    validateLengths('ORPOConfig', this.maxLength, this.maxPromptLength);
  }
}
