// SFTConfig: TrainingArguments plus TRL's SFT fields, with TRL's defaults (learning rate 2e-5, logging
// every 10 steps, gradient checkpointing on). `maxSeqLength` (TRL's older name, used by our walkthrough)
// is an alias of `maxLength`. Follows trl `trainer/sft_config.py` and `trainer/base_config.py`.
// Not here: what the fields do to the data (the SFT trainer's dataset preparation).

import { bool, configError, field, int, nullable, oneOf, str, stepsOrRatio, num, type FieldTable } from './config-fields.js';
import {
  TRAINING_ARGS_FIELDS,
  TrainingArguments,
  type ConfigOptions,
  type ParseFlags,
  type TrainingArgumentsFields,
} from './training-args.js';

export const PACKING_STRATEGIES = ['bfd'] as const;
export type PackingStrategy = (typeof PACKING_STRATEGIES)[number];

export interface SFTConfigFields extends TrainingArgumentsFields {
  /** Column holding the text of language-modelling rows. Default 'text'. */
  datasetTextField: string;
  /** Truncate (or, with packing, pack) sequences to this many tokens; null = no truncation. Default 1024. */
  maxLength: number | null;
  /** Pack several rows into each sequence of maxLength tokens. Default false. */
  packing: boolean;
  /** 'bfd' (best-fit decreasing; positions restart per document, no attention across documents). */
  packingStrategy: PackingStrategy;
  /** Pack the eval set too; null = same as packing. Default null. */
  evalPacking: boolean | null;
  /** Pad sequence lengths up to a multiple of this. Default null. */
  padToMultipleOf: number | null;
  /** Loss only on completions; null = on for prompt/completion rows, off otherwise. Default null. */
  completionOnlyLoss: boolean | null;
  /** Loss only on tokens inside assistant turns of conversational rows. Default false. */
  assistantOnlyLoss: boolean;
  /** Worker count for dataset preparation; null = in-process. Default null. */
  datasetNumProc: number | null;
  /** End-of-turn token appended to plain text; null = the tokenizer's eos_token. Default null. */
  eosToken: string | null;
  /** Padding token; null = the tokenizer's pad_token (or eos_token). Default null. */
  padToken: string | null;
}

export const SFT_CONFIG_FIELDS: FieldTable<SFTConfigFields> = {
  ...TRAINING_ARGS_FIELDS,
  learningRate: field(2e-5, num({ min: 0 })),
  loggingSteps: field(10, stepsOrRatio(false)),
  gradientCheckpointing: field(true, bool()),
  datasetTextField: field('text', str()),
  maxLength: field(1024, nullable(int({ min: 1 }))),
  packing: field(false, bool()),
  packingStrategy: field('bfd', oneOf(PACKING_STRATEGIES)),
  evalPacking: field(null, nullable(bool())),
  padToMultipleOf: field(null, nullable(int({ min: 1 }))),
  completionOnlyLoss: field(null, nullable(bool())),
  assistantOnlyLoss: field(false, bool()),
  datasetNumProc: field(null, nullable(int({ min: 1 }))),
  eosToken: field(null, nullable(str())),
  padToken: field(null, nullable(str())),
};

export type SFTConfigOptions = ConfigOptions<SFTConfigFields> & {
  /** Alias of maxLength (TRL < 0.20 and our walkthrough). */
  maxSeqLength?: number | null;
  max_seq_length?: number | null;
};

// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface SFTConfig extends SFTConfigFields {}

/**
 * Arguments of an SFT run, as TRL's `SFTConfig`.
 *
 * @example
 * const args = new SFTConfig({ outputDir: 'out', maxSeqLength: 4096, packing: true, learningRate: 2e-4,
 *   numTrainEpochs: 1, loggingSteps: 10 });
 * args.maxLength;   // 4096
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class SFTConfig extends TrainingArguments {
  static override readonly fields: FieldTable<SFTConfigFields> = SFT_CONFIG_FIELDS;
  static override readonly keyAliases: Readonly<Record<string, string>> = {
    ...TrainingArguments.keyAliases,
    maxSeqLength: 'maxLength',
    max_seq_length: 'maxLength',
  };
  static override readonly configName: string = 'SFTConfig';

  constructor(options: SFTConfigOptions = {}, flags: ParseFlags = {}) {
    super(options, flags);
  }

  /** Alias of maxLength. */
  get maxSeqLength(): number | null {
    return this.maxLength;
  }
  set maxSeqLength(v: number | null) {
    this.maxLength = v;
  }

  override validate(): void {
    super.validate();
    if (this.packing && this.maxLength === null) {
      configError('SFTConfig', 'maxLength', 'packing needs maxLength (the length of each packed sequence).');
    }
  }
}
