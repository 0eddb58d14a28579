// ORPOTrainer (trl `experimental/orpo/orpo_trainer.py`): odds-ratio preference optimisation — SFT on the
// chosen responses plus a log-odds-ratio penalty, no reference model — on prompt / chosen / rejected rows,
// with the loop, optimizers, logging and checkpoints of trainer.ts. The NLL is over the chosen response
// tokens (REFERENCE.md, **ours**) unless `orpoNllOverPrompt` (TRL's code: prompt + response).
// Logged (means over pairs, TRL's names): rewards/{chosen,rejected,accuracies,margins}, logps/{chosen,rejected},
// nll_loss, log_odds_ratio, log_odds_chosen, and eval_ versions from evaluate(). (TRL's logits/* are
// averaged over padding too, so they depend on the batch's padding: not logged.)

import { Tensor } from '../core/tensor.js';
import type { Objective } from '../models/index.js';
import { PreferenceTrainer, preparePolicy, type PreferenceMicroBatch, type PreferenceTrainerInit } from './dpo-base-trainer.js';
import { ORPOConfig } from './orpo-config.js';
import { orpoObjective, summarizeOrpo } from './orpo-objective.js';
import type { PreferenceExample } from './preference-data.js';
import type { MicroBatch } from './trainer.js';
import type { TrainingArguments } from './training-args.js';

export interface ORPOTrainerInit extends PreferenceTrainerInit {
  args?: ORPOConfig | TrainingArguments;
}

export class ORPOTrainer extends PreferenceTrainer<ORPOConfig> {
  /**
   * @example
   * const trainer = new ORPOTrainer({ model, args: new ORPOConfig({ outputDir: 'out', beta: 0.1 }), trainDataset, tokenizer,
   *   peftConfig: new LoraConfig({ r: 16, targetModules: 'all-linear' }) });
   * await trainer.train();
   */
  constructor(init: ORPOTrainerInit) {
    const cfg = toOrpoConfig(init.args);
    super(preparePolicy(init.model, init.peftConfig, cfg.gradientCheckpointing), cfg, init);
  }

  protected objective(): Objective {
    return orpoObjective({ beta: this.config.beta, nllOverPrompt: this.config.orpoNllOverPrompt });
  }

  protected async makeBatch(examples: PreferenceExample[], _indices: number[], B: number): Promise<MicroBatch> {
    const pb = this.collate(examples, B, this.config.orpoNllOverPrompt);
    return this.toMicroBatch(pb, examples.map((e) => e.row), pb.responseMask ? { response_mask: pb.responseMask } : {});
  }

  protected groupExtras(group: MicroBatch[]): Record<string, Tensor> {
    const g = group as PreferenceMicroBatch[];
    const pairs = g.reduce((s, m) => s + m.numPairs, 0);
    const tokens = g.reduce((s, m) => s + m.chosenNllTokens, 0);
    return {
      loss_scale: Tensor.fromNumbers([pairs > 0 ? 1 / pairs : 0], []),
      nll_scale: Tensor.fromNumbers([tokens > 0 ? 1 / tokens : 0], []),
    };
  }

  protected summarize(sums: Record<string, number>): Record<string, number> {
    return summarizeOrpo(sums, this.config.beta);
  }
}

function toOrpoConfig(args: ORPOConfig | TrainingArguments | undefined): ORPOConfig {
  if (args === undefined) return new ORPOConfig({});
  if (args instanceof ORPOConfig) return args;
  return ORPOConfig.fromJSON(args.toJSON(), { ignoreUnknown: true });
}
