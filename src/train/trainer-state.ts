// TrainerState and trainer_state.json, field for field as transformers' `TrainerState` (v4.5x/v5): the
// step counters, the intervals, log_history, best-metric tracking; saved with sort_keys and indent 2 as
// HF does, atomically, with Python's NaN/Infinity tokens; read back from ours or from HF's files.
// Also HF's `Trainer.log` (epoch + step added to each entry) and `_determine_best_metric` rules.
// Not here: what is logged (the trainer) or the rest of a checkpoint (checkpoint-dir.ts).

import { promises as fsp } from 'node:fs';
import { TsFinetuneError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fs-atomic.js';
import { isPlainObject } from './config-fields.js';
import { parsePyJson, stringifyPyJson } from './py-json.js';
import type { TrainingArguments } from './training-args.js';
import type { TrainingPlan } from './training-plan.js';

export type LogEntry = Record<string, number | string | boolean | null>;

/** trainer_state.json, as HF writes it. */
export interface TrainerStateJson {
  best_global_step: number | null;
  best_metric: number | null;
  best_model_checkpoint: string | null;
  epoch: number;
  eval_steps: number;
  global_step: number;
  is_hyper_param_search: boolean;
  is_local_process_zero: boolean;
  is_world_process_zero: boolean;
  log_history: LogEntry[];
  logging_steps: number;
  max_steps: number;
  num_input_tokens_seen: number;
  num_train_epochs: number;
  save_steps: number;
  stateful_callbacks: Record<string, unknown>;
  total_flos: number;
  train_batch_size: number | null;
  trial_name: string | null;
  trial_params: Record<string, string | number | boolean> | null;
}

type Fields = {
  -readonly [K in keyof TrainerStateJson as K extends `${infer A}_${infer B}` ? CamelOf<`${A}_${B}`> : K]: TrainerStateJson[K];
};
type CamelOf<S extends string> = S extends `${infer A}_${infer B}` ? `${A}${Capitalize<CamelOf<B>>}` : S;

const DEFAULTS: TrainerStateJson = {
  best_global_step: null,
  best_metric: null,
  best_model_checkpoint: null,
  epoch: 0,
  eval_steps: 500,
  global_step: 0,
  is_hyper_param_search: false,
  is_local_process_zero: true,
  is_world_process_zero: true,
  log_history: [],
  logging_steps: 500,
  max_steps: 0,
  num_input_tokens_seen: 0,
  num_train_epochs: 0,
  save_steps: 500,
  stateful_callbacks: {},
  total_flos: 0,
  train_batch_size: null,
  trial_name: null,
  trial_params: null,
};

const camel = (k: string): string => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const KEYS = Object.keys(DEFAULTS) as (keyof TrainerStateJson)[];

// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface TrainerState extends Fields {}

/**
 * The state of a run that checkpoints carry (HF's TrainerState); one step is one optimizer update.
 *
 * @example
 * const state = TrainerState.forRun(args, args.plan(train.numRows));
 * state.globalStep = 10; state.epoch = 0.4;
 * state.log({ loss: 1.2, grad_norm: 0.7, learning_rate: 2e-4 });   // → { …, epoch: 0.4, step: 10 }
 * await state.save('out/checkpoint-10/trainer_state.json');
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class TrainerState {
  constructor(init: Partial<Fields> = {}) {
    for (const k of KEYS) {
      const c = camel(k) as keyof Fields;
      const v = init[c] ?? DEFAULTS[k];
      (this as unknown as Record<string, unknown>)[c] = Array.isArray(v) ? [...(v as unknown[])] : isPlainObject(v) ? { ...v } : v;
    }
  }

  /** A fresh state for a run planned by `planTraining` (HF sets these at the start of train()). */
  static forRun(args: TrainingArguments, plan: TrainingPlan): TrainerState {
    return new TrainerState({
      maxSteps: plan.maxSteps,
      numTrainEpochs: plan.numTrainEpochs,
      loggingSteps: plan.loggingSteps,
      evalSteps: plan.evalSteps,
      saveSteps: plan.saveSteps,
      trainBatchSize: args.perDeviceTrainBatchSize,
    });
  }

  /** HF's Trainer.log: add `epoch` and `step` to `logs`, append to log_history, return the entry. */
  log(logs: Readonly<LogEntry>): LogEntry {
    const entry: LogEntry = { ...logs, epoch: this.epoch, step: this.globalStep };
    this.logHistory.push(entry);
    return entry;
  }

  /**
   * HF's _determine_best_metric after an evaluation: compares `metrics[eval_<metric>]` with bestMetric and,
   * when better (or first), records it with the current step. Returns whether it is a new best; the trainer
   * then sets `bestModelCheckpoint` to the checkpoint it saves for this step.
   */
  updateBest(metrics: Readonly<Record<string, number>>, metricForBestModel: string, greaterIsBetter: boolean): boolean {
    const key = metricForBestModel.startsWith('eval_') ? metricForBestModel : `eval_${metricForBestModel}`;
    const value = metrics[key];
    if (value === undefined) {
      throw new TsFinetuneError(
        'INVALID_CONFIG',
        `metricForBestModel "${metricForBestModel}" names "${key}", which the evaluation did not return ` +
          `(it returned ${Object.keys(metrics).join(', ')}).`,
        { key: 'metricForBestModel', metric: key },
      );
    }
    const better =
      this.bestMetric === null || (greaterIsBetter ? value > this.bestMetric : value < this.bestMetric);
    if (better) {
      this.bestMetric = value;
      this.bestGlobalStep = this.globalStep;
    }
    return better;
  }

  toJSON(): TrainerStateJson {
    const out = {} as Record<string, unknown>;
    for (const k of KEYS) out[k] = (this as unknown as Record<string, unknown>)[camel(k)];
    return out as unknown as TrainerStateJson;
  }

  /** The file text: sorted keys, indent 2, trailing newline, bare NaN/Infinity — as HF's save_to_json. */
  toJSONString(): string {
    return stringifyPyJson(this.toJSON(), { indent: 2, sortKeys: true }) + '\n';
  }

  /** Build from trainer_state.json contents (ours or transformers'); missing keys take HF's defaults. */
  static fromJSON(json: unknown, file = 'trainer_state.json'): TrainerState {
    if (!isPlainObject(json)) throw new TsFinetuneError('CORRUPT_FILE', `${file}: not a JSON object.`, { file });
    const init: Record<string, unknown> = {};
    for (const k of KEYS) if (json[k] !== undefined) init[camel(k)] = json[k];
    if (typeof json['global_step'] !== 'number' || !Array.isArray(json['log_history'] ?? [])) {
      throw new TsFinetuneError('CORRUPT_FILE', `${file}: global_step must be a number and log_history a list.`, { file });
    }
    return new TrainerState(init as Partial<Fields>);
  }

  async save(file: string): Promise<void> {
    await writeFileAtomic(file, this.toJSONString());
  }

  static async load(file: string): Promise<TrainerState> {
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (e) {
      throw new TsFinetuneError('FILE_NOT_FOUND', `Cannot read ${file}: ${(e as Error).message}`, { file }, { cause: e });
    }
    let json: unknown;
    try {
      json = parsePyJson(text);
    } catch (e) {
      throw new TsFinetuneError('CORRUPT_FILE', `${file} does not parse as JSON: ${(e as Error).message}`, { file }, { cause: e });
    }
    return TrainerState.fromJSON(json, file);
  }
}
