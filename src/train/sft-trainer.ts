// SFTTrainer (trl sft_trainer.py): supervised fine-tuning on text, conversational, ShareGPT or
// prompt/completion rows, with optional LoRA (`peftConfig`), packing (best-fit decreasing) and
// completion-only / assistant-only loss. The loss is transformers' causal-LM loss summed over the label
// tokens of the whole accumulated batch and divided by their count (REFERENCE.md).
// Logged besides the Trainer's fields: mean_token_accuracy, num_tokens.

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { causalLmObjective, type Objective } from '../models/index.js';
import { getPeftModel, type LoraConfig } from '../peft/index.js';
import type { PreTrainedTokenizer } from '../tokenizers/index.js';
import { collate, type TokenizedExample } from './collator.js';
import { packBfd } from './packing.js';
import { readRows, type Row, type RowsInput } from './rows.js';
import { SFTConfig } from './sft-config.js';
import { tokenizeSftRows } from './sft-data.js';
import { Trainer, type MicroBatch } from './trainer.js';
import { asTrainerModel } from './trainer-model.js';
import type { TrainingArguments } from './training-args.js';

export interface SFTTrainerInit {
  /** A model from AutoModelForCausalLM (full fine-tuning, or LoRA with `peftConfig`) or a PeftModel. */
  model: unknown;
  args?: SFTConfig | TrainingArguments;
  trainDataset: RowsInput;
  evalDataset?: RowsInput | null;
  tokenizer: PreTrainedTokenizer;
  /** Aliases of TRL's older SFTTrainer arguments (they override args when given). */
  datasetTextField?: string;
  maxSeqLength?: number;
  packing?: boolean;
  completionOnlyLoss?: boolean;
  assistantOnlyLoss?: boolean;
  formattingFunc?: (row: Row) => string;
  peftConfig?: LoraConfig | null;
  /** Extra chat-template variables (e.g. { enable_thinking: false }). */
  templateKwargs?: Record<string, unknown>;
}

export class SFTTrainer extends Trainer<TokenizedExample> {
  readonly tokenizer: PreTrainedTokenizer;
  readonly config: SFTConfig;
  private readonly init: SFTTrainerInit;

  constructor(init: SFTTrainerInit) {
    const cfg = toSftConfig(init);
    // The adapter's initialisation follows the run's seed, as TRL seeds before get_peft_model.
    const model = init.peftConfig ? getPeftModel(init.model as Parameters<typeof getPeftModel>[0], init.peftConfig, { seed: cfg.seed }) : init.model;
    super(asTrainerModel(model), cfg);
    this.config = cfg;
    this.tokenizer = init.tokenizer;
    this.init = init;
    // The flag lives on the base model (a PeftModel only reads it back through a getter).
    if (cfg.gradientCheckpointing) {
      const owner = (this.model as { baseModel?: unknown }).baseModel ?? this.model;
      (owner as { gradientCheckpointingEnable?: () => void }).gradientCheckpointingEnable?.();
    }
  }

  protected async prepareData(): Promise<{ train: TokenizedExample[]; eval: TokenizedExample[] }> {
    return { train: this.tokenize(this.init.trainDataset, 'trainDataset', this.config.packing), eval: this.tokenize(this.init.evalDataset, 'evalDataset', this.config.evalPacking ?? this.config.packing) };
  }

  private tokenize(input: RowsInput | null | undefined, what: string, pack: boolean): TokenizedExample[] {
    const { rows, columns } = readRows(input, what);
    if (rows.length === 0) return [];
    const rep = tokenizeSftRows(rows, columns, this.tokenizer, {
      datasetTextField: this.config.datasetTextField,
      formattingFunc: this.init.formattingFunc,
      maxLength: this.config.maxLength,
      completionOnlyLoss: this.config.completionOnlyLoss,
      assistantOnlyLoss: this.config.assistantOnlyLoss,
      templateKwargs: this.init.templateKwargs ?? {},
      eosToken: this.tokenId(this.config.eosToken, 'eosToken') === null ? null : this.config.eosToken,
    });
    if (rep.untrainedEndOfTurn > 0) {
      process.stderr.write(
        `ts-finetune: warning: in ${rep.untrainedEndOfTurn} of ${rows.length} ${what} rows no end-of-turn token is trained; ` +
          'the model may not learn to stop. Check the chat template.\n',
      );
    }
    const trainable = rep.examples.filter((e) => e.labels.some((l, t) => t > 0 && l !== -100));
    if (trainable.length === 0) {
      throw new TsFinetuneError('DATASET_ERROR', `${what}: no row has a token to train on (all labels masked or truncated away)`);
    }
    if (pack) {
      if (this.config.maxLength === null) throw new TsFinetuneError('INVALID_CONFIG', 'packing needs maxLength', { key: 'maxLength' });
      return packBfd(trainable, this.config.maxLength);
    }
    return trainable;
  }

  protected objective(): Objective {
    return causalLmObjective;
  }

  protected async makeBatch(examples: TokenizedExample[], rows: number[], B: number): Promise<MicroBatch> {
    // TRL: args.pad_token, else the tokenizer's pad token, else its eos token.
    const padId = this.tokenId(this.config.padToken, 'padToken') ?? this.tokenizer.padTokenId ?? this.tokenizer.eosTokenId ?? 0;
    const mult = this.config.padToMultipleOf ?? defaultMultiple(this.config.maxLength);
    const batchOpts: Parameters<typeof collate>[1] = { padTokenId: padId, padToMultipleOf: mult, B };
    if (this.config.maxLength !== null) batchOpts.maxLength = this.config.maxLength;
    // Dataset rows (not example indices: rows without trainable tokens were dropped, packed rows merged).
    return { batch: collate(examples, batchOpts), rows: examples.flatMap((e, k) => e.sourceRows ?? [rows[k]!]) };
  }

  /** The id of a token named in the config (null when not configured); an unknown token is an error, as in TRL. */
  private tokenId(token: string | null, key: string): number | null {
    if (token === null) return null;
    const id = this.tokenizer.convertTokensToIds(token);
    if (id === null) throw new TsFinetuneError('INVALID_CONFIG', `${key} '${token}' is not in the tokenizer's vocabulary`, { key });
    return id;
  }

  /** The adapter (or model) and the tokenizer, as HF's save_model with a processing_class. */
  override async saveModel(dir?: string): Promise<void> {
    await super.saveModel(dir);
    await this.tokenizer.savePretrained(dir ?? this.args.outputDir);
  }

  protected groupExtras(group: MicroBatch[]): Record<string, Tensor> {
    const tokens = group.reduce((s, m) => s + m.batch.numLabelTokens, 0);
    return { loss_scale: Tensor.fromNumbers([tokens > 0 ? 1 / tokens : 0], []) };
  }

  protected summarize(sums: Record<string, number>, count: number): Record<string, number> {
    const out: Record<string, number> = {};
    const tokens = sums.num_tokens ?? 0;
    if (sums.__loss !== undefined) out.loss = tokens > 0 ? (sums.loss_sum ?? 0) / tokens : 0;
    out.mean_token_accuracy = tokens > 0 ? (sums.num_correct ?? 0) / tokens : 0;
    void count;
    return out;
  }
}

/** Rows are bucketed to a multiple of this length, since each new length compiles a new graph. */
function defaultMultiple(maxLength: number | null): number {
  return maxLength !== null && maxLength < 64 ? 8 : 64;
}

function toSftConfig(init: SFTTrainerInit): SFTConfig {
  const base = init.args ?? new SFTConfig({});
  const overrides: Record<string, unknown> = {};
  if (init.datasetTextField !== undefined) overrides.datasetTextField = init.datasetTextField;
  if (init.maxSeqLength !== undefined) overrides.maxLength = init.maxSeqLength;
  if (init.packing !== undefined) overrides.packing = init.packing;
  if (init.completionOnlyLoss !== undefined) overrides.completionOnlyLoss = init.completionOnlyLoss;
  if (init.assistantOnlyLoss !== undefined) overrides.assistantOnlyLoss = init.assistantOnlyLoss;
  if (base instanceof SFTConfig) return Object.keys(overrides).length ? base.clone(overrides) : base;
  return new SFTConfig({ ...(base.toJSON() as Record<string, unknown>), ...overrides } as never);
}
