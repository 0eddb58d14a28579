// Reference log-probs computed outside the training graph (trl `dpo_trainer.py` `compute_ref_log_probs`,
// `_precompute_ref_logps`): a forward-only step program over the same concatenated batch that returns
// Σ log p of each row's completion tokens ([2P]: chosen rows, then rejected rows). Used
//   - for a separate `refModel` (its own frozen graph, weights as initializers: nothing trains, nothing
//     flows back), every micro-batch;
//   - for full fine-tuning without a refModel: the policy's graph fed a snapshot of its initial weights
//     (TRL loads a second copy of the model; here it is one flat copy of the trainable values);
//   - once over the data when `precomputeRefLogProbs` is set, after which the reference pass disappears.
// With LoRA and no refModel the reference lives inside the training graph instead (dpo-objective.ts).

import { TsFinetuneError } from '../core/errors.js';
import { ParamLayout, StepProgram, type TrainableModel } from '../models/index.js';
import type { SessionOptions } from '../runtime/index.js';
import { collatePreferences } from './dpo-batch.js';
import { sequenceLogpsObjective } from './dpo-objective.js';
import type { CollatedBatch } from './collator.js';
import type { PreferenceExample } from './preference-data.js';

export interface ReferenceRunnerOptions {
  /** false: PEFT's disable_adapter (the base under the adapters). */
  adaptersEnabled: boolean;
  session: SessionOptions;
  /** Values of the model's trainable parameters to run with; default: a snapshot taken now. */
  params?: Float32Array;
}

/** A model that can hand back a frozen view of itself (CausalLM.asFrozen). */
interface Freezable {
  asFrozen(): TrainableModel;
}

/** The frozen form of a reference model: weights baked into the graph when the model can do that. */
export function frozenReference(model: TrainableModel): TrainableModel {
  const f = model as Partial<Freezable>;
  return typeof f.asFrozen === 'function' ? f.asFrozen() : model;
}

export class ReferenceRunner {
  private readonly programs = new Map<string, Promise<StepProgram>>();
  private readonly params: Float32Array | undefined;

  constructor(
    private readonly model: TrainableModel,
    private readonly opts: ReferenceRunnerOptions,
  ) {
    // Snapshot now: the trainer writes trained values back into the model at checkpoints.
    const layout = new ParamLayout(model.trainableParams());
    this.params = layout.size === 0 ? undefined : (opts.params ?? model.trainableValues(layout));
  }

  private program(B: number, T: number): Promise<StepProgram> {
    const key = `${B}x${T}`;
    let p = this.programs.get(key);
    if (!p) {
      p = StepProgram.compile(
        this.model,
        { B, T, objective: sequenceLogpsObjective, withGrad: false, training: false, adaptersEnabled: this.opts.adaptersEnabled },
        this.opts.session,
      );
      this.programs.set(key, p);
      p.catch(() => this.programs.delete(key));
    }
    return p;
  }

  /** Σ log p over each row's completion tokens, [B] (rows of a collated preference batch). */
  async logps(batch: CollatedBatch): Promise<Float32Array> {
    const prog = await this.program(batch.B, batch.T);
    const res = await prog.run({ ...batch.feeds }, this.params);
    const lp = res.metrics.logps;
    if (!lp) throw new TsFinetuneError('RUNTIME_ERROR', 'reference pass returned no log-probs');
    return Float32Array.from(lp.data as Float32Array);
  }

  /**
   * TRL's precompute pass: one forward over `examples` in batches of `batchSize` pairs, storing
   * refChosenLogps / refRejectedLogps on each example. Examples that already carry both are skipped.
   */
  async precompute(examples: PreferenceExample[], batchSize: number, collate: { padTokenId: number; padToMultipleOf: number }, onProgress?: (done: number, total: number) => void): Promise<void> {
    const todo = examples.filter((e) => e.refChosenLogps === undefined || e.refRejectedLogps === undefined);
    for (let i = 0; i < todo.length; i += batchSize) {
      const chunk = todo.slice(i, i + batchSize);
      const pb = collatePreferences(chunk, { P: batchSize, ...collate });
      const lp = await this.logps(pb.batch);
      chunk.forEach((e, k) => {
        e.refChosenLogps = lp[k]!;
        e.refRejectedLogps = lp[pb.P + k]!;
      });
      onProgress?.(Math.min(i + batchSize, todo.length), todo.length);
    }
  }

  async release(): Promise<void> {
    const all = [...this.programs.values()];
    this.programs.clear();
    for (const p of all) await (await p.catch(() => undefined))?.release();
  }
}
