// What DPOTrainer and ORPOTrainer share on top of the generic Trainer loop: LoRA wrapping (`peftConfig`),
// tokenizing preference rows with TRL's rules (preference-data.ts) and its warnings, the concatenated
// batch of chosen and rejected rows (dpo-batch.ts), dropout off when `disableDropout` (TRL's default), and
// the per-(shape, mode) program cache that honours it.
// Not here: the losses (dpo-objective.ts, orpo-objective.ts), the reference passes (dpo-reference.ts).

import { TsFinetuneError } from '../core/errors.js';
import { StepProgram, type TrainableModel } from '../models/index.js';
import { getPeftModel, type LoraConfig } from '../peft/index.js';
import type { SessionOptions } from '../runtime/index.js';
import type { PreTrainedTokenizer } from '../tokenizers/index.js';
import { collatePreferences, type PairIds, type PreferenceBatch } from './dpo-batch.js';
import type { TruncationMode } from './dpo-config.js';
import { preferenceWarnings, tokenizePreferenceRows, type PreferenceExample } from './preference-data.js';
import { readRows, type RowsInput } from './rows.js';
import { Trainer, type MicroBatch } from './trainer.js';
import { asTrainerModel } from './trainer-model.js';
import type { TrainingArguments } from './training-args.js';

export interface PreferenceTrainerInit {
  /** A model from AutoModelForCausalLM (full fine-tuning, or LoRA with `peftConfig`) or a PeftModel. */
  model: unknown;
  /** Rows of prompt / chosen / rejected (plain or conversational), or tokenized prompt_ids / chosen_ids / rejected_ids. */
  trainDataset: RowsInput;
  evalDataset?: RowsInput | null;
  /** Needed for text rows (TRL's processing_class). */
  tokenizer?: PreTrainedTokenizer | null;
  peftConfig?: LoraConfig | null;
  /** Extra chat-template variables (e.g. { enable_thinking: false }). */
  templateKwargs?: Record<string, unknown>;
}

/** The fields of DPOConfig / ORPOConfig the shared code reads. */
export interface PreferenceArgs extends TrainingArguments {
  maxLength: number | null;
  maxPromptLength: number | null;
  maxCompletionLength: number | null;
  truncationMode: TruncationMode;
  disableDropout: boolean;
  padToMultipleOf: number | null;
}

/** A micro-batch with what group-level scaling needs. */
export interface PreferenceMicroBatch extends MicroBatch {
  numPairs: number;
  chosenNllTokens: number;
}

interface CheckpointSwitch {
  gradientCheckpointingEnable?: () => void;
  baseModel?: CheckpointSwitch;
}

/** Wrap with LoRA when asked; enable gradient checkpointing on the model that owns the flag. */
export function preparePolicy(model: unknown, peftConfig: LoraConfig | null | undefined, gradientCheckpointing: boolean): unknown {
  const m = peftConfig ? getPeftModel(model as Parameters<typeof getPeftModel>[0], peftConfig) : model;
  if (gradientCheckpointing) {
    const sw = m as CheckpointSwitch;
    const owner = sw.baseModel ?? sw;
    owner.gradientCheckpointingEnable?.();
  }
  return m;
}

export abstract class PreferenceTrainer<C extends PreferenceArgs> extends Trainer<PreferenceExample> {
  readonly config: C;
  readonly tokenizer: PreTrainedTokenizer | null;
  protected readonly init: PreferenceTrainerInit;
  private readonly ownPrograms = new Map<string, Promise<StepProgram>>();

  constructor(model: unknown, cfg: C, init: PreferenceTrainerInit) {
    super(asTrainerModel(model), cfg);
    this.config = cfg;
    this.tokenizer = init.tokenizer ?? null;
    this.init = init;
  }

  protected get padTokenId(): number {
    const t = this.tokenizer;
    const cfgPad = (this.config as { padToken?: string | null }).padToken;
    if (cfgPad && t) {
      const id = t.convertTokensToIds(cfgPad);
      if (id === null) throw new TsFinetuneError('INVALID_CONFIG', `padToken '${cfgPad}' is not in the tokenizer's vocabulary`, { key: 'padToken' });
      return id;
    }
    return t?.padTokenId ?? t?.eosTokenId ?? 0;
  }

  protected get padMultiple(): number {
    const m = this.config.maxLength;
    return this.config.padToMultipleOf ?? (m !== null && m < 64 ? 8 : 64);
  }

  protected sessionOptions(): SessionOptions {
    return { device: this.args.useCpu ? 'cpu' : this.args.device };
  }

  protected warn(message: string): void {
    process.stderr.write(`ts-finetune: warning: ${message}\n`);
  }

  protected async prepareData(): Promise<{ train: PreferenceExample[]; eval: PreferenceExample[] }> {
    return { train: this.tokenizeSplit(this.init.trainDataset, 'trainDataset'), eval: this.tokenizeSplit(this.init.evalDataset, 'evalDataset') };
  }

  protected tokenizeSplit(input: RowsInput | null | undefined, what: string): PreferenceExample[] {
    const { rows, columns } = readRows(input, what);
    if (rows.length === 0) return [];
    const c = this.config;
    const opts: Parameters<typeof tokenizePreferenceRows>[3] = {
      maxLength: c.maxLength,
      maxPromptLength: c.maxPromptLength,
      maxCompletionLength: c.maxCompletionLength,
      truncationMode: c.truncationMode,
    };
    if (this.init.templateKwargs) opts.templateKwargs = this.init.templateKwargs;
    const rep = tokenizePreferenceRows(rows, columns, this.tokenizer, opts);
    for (const w of preferenceWarnings(rep, rows.length, what, c.maxLength)) this.warn(w);
    if (rep.examples.length === 0) throw new TsFinetuneError('DATASET_ERROR', `${what}: no row is left after truncation (all ${rows.length} prompts fill maxLength ${c.maxLength})`);
    return rep.examples;
  }

  protected collate(examples: readonly PairIds[], P: number, nllOverPrompt = false): PreferenceBatch {
    return collatePreferences(examples, { P, padTokenId: this.padTokenId, padToMultipleOf: this.padMultiple, nllOverPrompt });
  }

  protected toMicroBatch(pb: PreferenceBatch, rows: number[], extras: MicroBatch['extras']): PreferenceMicroBatch {
    return { batch: pb.batch, rows, extras: { pair_mask: pb.pairMask, ...extras }, numPairs: pb.numPairs, chosenNllTokens: pb.chosenNllTokens };
  }

  /** Programs as the base class builds them, but without dropout when `disableDropout` (TRL's default). */
  protected override program(B: number, T: number, withGrad: boolean, packed: boolean, adaptersEnabled = true): Promise<StepProgram> {
    const key = `${B}x${T}|${withGrad}|${packed}|${adaptersEnabled}`;
    let p = this.ownPrograms.get(key);
    if (!p) {
      const training = withGrad && !this.config.disableDropout;
      p = StepProgram.compile(this.model as TrainableModel, { B, T, objective: this.objective(), withGrad, packed, adaptersEnabled, training }, this.sessionOptions());
      this.ownPrograms.set(key, p);
      p.catch(() => this.ownPrograms.delete(key));
    }
    return p;
  }

  override async release(): Promise<void> {
    const all = [...this.ownPrograms.values()];
    this.ownPrograms.clear();
    for (const p of all) await (await p.catch(() => undefined))?.release();
    await super.release();
  }
}
