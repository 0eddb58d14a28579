// TrainingArguments: every knob of a training run, with transformers' names (camelCase, or the Python
// snake_case names as pasted from YAML), transformers' defaults, strict checking (an unknown key names the
// close one; a bad value names the key), the derived values the loop needs (steps, warmup, schedule) and
// the snake_case training_args.json form. Follows transformers `training_args.py` (v4.5x/v5).
// Not here: SFT/DPO/ORPO-specific fields (sft-config.ts, …), the step arithmetic (training-plan.ts).

import { TsFinetuneError } from '../core/errors.js';
import { LrScheduler, SCHEDULER_KWARGS, SCHEDULER_TYPES, type SchedulerOptions, type SchedulerType } from '../optim/schedules.js';
import {
  bool,
  canonicalKey,
  configError,
  field,
  fieldsToPython,
  int,
  isPlainObject,
  nullable,
  num,
  oneOf,
  parseFields,
  plainObject,
  str,
  stepsOrRatio,
  toSnakeCase,
  type FieldCheck,
  type FieldTable,
  type SnakeCased,
} from './config-fields.js';
import { planTraining, type TrainingPlan } from './training-plan.js';

export const OPTIMIZERS = ['adamw_torch', 'adamw_8bit', 'paged_adamw_32bit', 'paged_adamw_8bit'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];
export const INTERVAL_STRATEGIES = ['no', 'steps', 'epoch'] as const;
export type IntervalStrategy = (typeof INTERVAL_STRATEGIES)[number];
export const REPORT_TARGETS = ['tensorboard', 'jsonl'] as const;
export type ReportTarget = (typeof REPORT_TARGETS)[number];
/** As given: one target, a list, 'none' (nothing) or 'all' (every target). Stored as a list. */
export type ReportTo = 'none' | 'all' | ReportTarget | readonly ReportTarget[];
export const DEVICES = ['cpu', 'cuda', 'webgpu', 'auto'] as const;
export type Device = (typeof DEVICES)[number];

/** The fields every config class has. Defaults are transformers' unless marked **ours**. */
export interface TrainingArgumentsFields {
  /** Where checkpoints, logs and the final adapter go. Default 'trainer_output' (HF v5). */
  outputDir: string;
  /** Sequences per micro-batch. Default 8. */
  perDeviceTrainBatchSize: number;
  /** Sequences per evaluation batch. Default 8. */
  perDeviceEvalBatchSize: number;
  /** Micro-batches per optimizer step; the loss is normalised over all their label tokens. Default 1. */
  gradientAccumulationSteps: number;
  /** Recompute activations in the backward to save memory. Default false. */
  gradientCheckpointing: boolean;
  /** Clip the global gradient L2 norm to this; 0 disables. Default 1.0. */
  maxGradNorm: number;
  /** Epochs to train (fractions allowed). Default 3. Ignored when maxSteps > 0. */
  numTrainEpochs: number;
  /** Optimizer steps to take; -1 means "numTrainEpochs epochs". Default -1. */
  maxSteps: number;
  /** Peak learning rate. Default 5e-5. */
  learningRate: number;
  /** AdamW decoupled weight decay. Default 0. */
  weightDecay: number;
  /** Default 0.9. */
  adamBeta1: number;
  /** Default 0.999. */
  adamBeta2: number;
  /** Default 1e-8. */
  adamEpsilon: number;
  /** 'adamw_torch' (default), 'adamw_8bit', 'paged_adamw_32bit', 'paged_adamw_8bit'. HF's 'adamw_torch_fused' and 'adamw_bnb_8bit' are accepted as aliases. */
  optim: OptimizerName;
  /** Default 'linear'. */
  lrSchedulerType: SchedulerType;
  /** Extra schedule arguments, e.g. `{ num_cycles: 2 }` (snake_case or camelCase keys). Default null. */
  lrSchedulerKwargs: Record<string, unknown> | null;
  /** Warmup as a fraction of the total steps, used when warmupSteps is 0. Default null (= 0). */
  warmupRatio: number | null;
  /** Warmup steps (an integer), or a ratio in [0, 1) as in HF v5. Wins over warmupRatio. Default 0. */
  warmupSteps: number;
  /** bfloat16 compute (GPU execution providers; CPU computes in fp32). Default false. */
  bf16: boolean;
  /** float16 compute (GPU execution providers). Default false. */
  fp16: boolean;
  /** 'steps' (default), 'epoch' or 'no'. */
  loggingStrategy: IntervalStrategy;
  /** Log every N optimizer steps, or a ratio of the total in (0, 1). Default 500. */
  loggingSteps: number;
  /** Also log after the first step. Default false. */
  loggingFirstStep: boolean;
  /** 'no' (default), 'steps' or 'epoch'. */
  evalStrategy: IntervalStrategy;
  /** Evaluate every N steps (or a ratio); null = loggingSteps. Default null. */
  evalSteps: number | null;
  /** 'steps' (default), 'epoch' or 'no'. A checkpoint is also saved at the last step unless 'no'. */
  saveStrategy: IntervalStrategy;
  /** Save every N steps (or a ratio). Default 500. */
  saveSteps: number;
  /** Keep at most this many checkpoints (oldest deleted first, the best kept); null or 0 = all. Default null. */
  saveTotalLimit: number | null;
  /** Track the best checkpoint by metricForBestModel (kept by rotation) and load it at the end. Default false. */
  loadBestModelAtEnd: boolean;
  /** Metric that ranks checkpoints, e.g. 'eval_loss' or 'loss'. Default null ('loss' with loadBestModelAtEnd). */
  metricForBestModel: string | null;
  /** Default null: true unless the metric name ends in 'loss'. */
  greaterIsBetter: boolean | null;
  /** Seed for initialisation and dropout. Default 42. */
  seed: number;
  /** Seed for data shuffling; null = seed. Default null. */
  dataSeed: number | null;
  /** Drop the last incomplete batch of each epoch. Default false. */
  dataloaderDropLast: boolean;
  /** **ours**: default ['jsonl'] (logs/metrics.jsonl, local and cheap); HF v5 defaults to 'none'. */
  reportTo: ReportTarget[];
  /** A name for the run (TensorBoard, logs). Default null. */
  runName: string | null;
  /** true = the latest checkpoint in outputDir, or a checkpoint folder. Default null. */
  resumeFromCheckpoint: string | boolean | null;
  /** Execution provider: 'auto' (default: CUDA, then WebGPU, then CPU), 'cpu', 'cuda', 'webgpu'. */
  device: Device;
  /** HF's use_cpu: same as device 'cpu'. Default false. */
  useCpu: boolean;
  /** No progress bar (periodic lines are still printed when logging). Default false. */
  disableTqdm: boolean;
}

type OptionFields<F> = Partial<Omit<F, 'reportTo'>> & { reportTo?: ReportTo };
/** Constructor options: any subset of the fields, in camelCase or the Python snake_case names. */
export type ConfigOptions<F> = OptionFields<F> & Partial<SnakeCased<OptionFields<F>>>;
export type TrainingArgumentsOptions = ConfigOptions<TrainingArgumentsFields>;
export interface ParseFlags {
  /** Skip unknown keys (reading a training_args.json written by transformers). */
  ignoreUnknown?: boolean;
}

function reportTo(): FieldCheck<ReportTarget[]> {
  const one = oneOf(['none', 'all', ...REPORT_TARGETS] as const);
  return (value, key) => {
    const list = Array.isArray(value) ? (value as unknown[]) : [value];
    const out = new Set<ReportTarget>();
    for (const v of list) {
      const t = one(v, key);
      if (t === 'all') REPORT_TARGETS.forEach((r) => out.add(r));
      else if (t !== 'none') out.add(t);
    }
    return [...out];
  };
}

function resumeValue(): FieldCheck<string | boolean> {
  return (value, key) => {
    if (typeof value === 'boolean') return value;
    if (typeof value === 'string' && value.trim() !== '') return value;
    throw new TsFinetuneError('INVALID_CONFIG', `Config key "${key}" must be true, false or a checkpoint folder path.`, {
      key,
      value,
    });
  };
}

const beta = num({ min: 0, lt: 1 });

export const TRAINING_ARGS_FIELDS: FieldTable<TrainingArgumentsFields> = {
  outputDir: field('trainer_output', str()),
  perDeviceTrainBatchSize: field(8, int({ min: 1 })),
  perDeviceEvalBatchSize: field(8, int({ min: 1 })),
  gradientAccumulationSteps: field(1, int({ min: 1 })),
  gradientCheckpointing: field(false, bool()),
  maxGradNorm: field(1.0, num({ min: 0 })),
  numTrainEpochs: field(3, num({ gt: 0 })),
  maxSteps: field(-1, int({ min: -1 })),
  learningRate: field(5e-5, num({ min: 0 })),
  weightDecay: field(0, num({ min: 0 })),
  adamBeta1: field(0.9, beta),
  adamBeta2: field(0.999, beta),
  adamEpsilon: field(1e-8, num({ min: 0 })),
  optim: field('adamw_torch', oneOf(OPTIMIZERS, { adamw_torch_fused: 'adamw_torch', adamw_bnb_8bit: 'adamw_8bit' })),
  lrSchedulerType: field('linear', oneOf(SCHEDULER_TYPES)),
  lrSchedulerKwargs: field(null, nullable(plainObject())),
  warmupRatio: field(null, nullable(num({ min: 0, max: 1 }))),
  warmupSteps: field(0, stepsOrRatio(true)),
  bf16: field(false, bool()),
  fp16: field(false, bool()),
  loggingStrategy: field('steps', oneOf(INTERVAL_STRATEGIES)),
  loggingSteps: field(500, stepsOrRatio(false)),
  loggingFirstStep: field(false, bool()),
  evalStrategy: field('no', oneOf(INTERVAL_STRATEGIES)),
  evalSteps: field(null, nullable(stepsOrRatio(false))),
  saveStrategy: field('steps', oneOf(INTERVAL_STRATEGIES)),
  saveSteps: field(500, stepsOrRatio(false)),
  saveTotalLimit: field(null, nullable(int({ min: 0 }))),
  loadBestModelAtEnd: field(false, bool()),
  metricForBestModel: field(null, nullable(str())),
  greaterIsBetter: field(null, nullable(bool())),
  seed: field(42, int({ min: 0 })),
  dataSeed: field(null, nullable(int({ min: 0 }))),
  dataloaderDropLast: field(false, bool()),
  reportTo: field(['jsonl'], reportTo()),
  runName: field(null, nullable(str())),
  resumeFromCheckpoint: field(null, nullable(resumeValue())),
  device: field('auto', oneOf(DEVICES)),
  useCpu: field(false, bool()),
  disableTqdm: field(false, bool()),
};

/** Older HF spellings that still appear in pasted configs. */
const TRAINING_ARGS_ALIASES: Readonly<Record<string, string>> = {
  evaluation_strategy: 'evalStrategy',
  evaluationStrategy: 'evalStrategy',
};

// Fields are declared once, in TrainingArgumentsFields; the constructor assigns every one from the table.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface TrainingArguments extends TrainingArgumentsFields {}

/**
 * Arguments of a training run, as transformers' `TrainingArguments`.
 *
 * @example
 * const args = new TrainingArguments({ outputDir: 'out', perDeviceTrainBatchSize: 2, gradientAccumulationSteps: 2,
 *   learningRate: 2e-4, lrSchedulerType: 'cosine', warmupRatio: 0.05, maxSteps: 8000, reportTo: 'tensorboard' });
 * const plan = args.plan(trainDataset.numRows);     // steps per epoch, total steps, warmup, …
 * await writeFileAtomic('out/training_args.json', args.toJSONString());
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class TrainingArguments {
  /** The field table of this class (subclasses extend it). */
  static readonly fields: FieldTable<TrainingArgumentsFields> = TRAINING_ARGS_FIELDS;
  static readonly keyAliases: Readonly<Record<string, string>> = TRAINING_ARGS_ALIASES;
  static readonly configName: string = 'TrainingArguments';

  constructor(options: TrainingArgumentsOptions = {}, flags: ParseFlags = {}) {
    const cls = new.target;
    const { values } = parseFields(cls.fields, options, {
      className: cls.configName,
      aliases: cls.keyAliases,
      ignoreUnknown: flags.ignoreUnknown ?? false,
    });
    Object.assign(this, values);
    this.resolveDefaults();
    this.validate();
  }

  /** Fill the defaults that depend on other fields, as HF's `__post_init__`. */
  protected resolveDefaults(): void {
    if (this.evalStrategy === 'steps' && (this.evalSteps === null || this.evalSteps === 0)) {
      this.evalSteps = this.loggingSteps;
    }
    if (this.loadBestModelAtEnd && this.metricForBestModel === null) this.metricForBestModel = 'loss';
    if (this.greaterIsBetter === null && this.metricForBestModel !== null) {
      this.greaterIsBetter = !this.metricForBestModel.endsWith('loss');
    }
    if (this.useCpu && this.device === 'auto') this.device = 'cpu';
  }

  /** Check the rules that span fields; throws INVALID_CONFIG naming the key. Call again after mutating. */
  validate(): void {
    const name = (this.constructor as typeof TrainingArguments).configName;
    if (this.bf16 && this.fp16) configError(name, 'bf16', 'at most one of bf16 and fp16 can be true.');
    if (this.maxSteps === 0) {
      configError(name, 'maxSteps', 'maxSteps must be -1 (train numTrainEpochs epochs) or a positive number of steps.');
    }
    if (this.useCpu && this.device !== 'cpu') {
      configError(name, 'useCpu', `useCpu is true but device is "${this.device}".`);
    }
    if (this.outputDir.trim() === '') configError(name, 'outputDir', 'outputDir must not be empty.');
    if (this.loadBestModelAtEnd) {
      if (this.evalStrategy === 'no') configError(name, 'loadBestModelAtEnd', 'loadBestModelAtEnd needs an evalStrategy.');
      if (this.evalStrategy !== this.saveStrategy) {
        configError(name, 'loadBestModelAtEnd', `loadBestModelAtEnd requires saveStrategy to equal evalStrategy ` +
          `("${this.saveStrategy}" vs "${this.evalStrategy}").`);
      }
      // HF's rule, including its float modulo for ratios.
      const ev = this.evalSteps ?? this.loggingSteps;
      const sv = this.saveSteps;
      if (this.evalStrategy === 'steps' && sv % ev !== 0) {
        const mixed = (sv < 1) !== (ev < 1);
        if (mixed || sv >= 1 || Math.round(sv * 1e6) % Math.round(ev * 1e6) !== 0) {
          configError(name, 'saveSteps', `loadBestModelAtEnd requires saveSteps (${sv}) to be a multiple of evalSteps (${ev})` +
            (mixed ? ', which a ratio and an absolute step count cannot guarantee.' : '.'));
        }
      }
    }
    this.schedulerKwargs(); // validates lrSchedulerKwargs against lrSchedulerType
    if (this.lrSchedulerType === 'polynomial') {
      const lrEnd = this.schedulerKwargs().lrEnd ?? 1e-7;
      if (!(this.learningRate > lrEnd)) {
        configError(name, 'lrSchedulerKwargs', `polynomial lr_end (${lrEnd}) must be smaller than learningRate (${this.learningRate}).`);
      }
    }
  }

  /** Sequences per micro-batch (one device). */
  get trainBatchSize(): number {
    return this.perDeviceTrainBatchSize;
  }
  get evalBatchSize(): number {
    return this.perDeviceEvalBatchSize;
  }
  /** Sequences per optimizer step. */
  get totalTrainBatchSize(): number {
    return this.perDeviceTrainBatchSize * this.gradientAccumulationSteps;
  }
  /** The seed data shuffling uses. */
  get resolvedDataSeed(): number {
    return this.dataSeed ?? this.seed;
  }
  reportsTo(target: ReportTarget): boolean {
    return this.reportTo.includes(target);
  }

  /** HF's get_warmup_steps: warmupSteps when ≥ 1, else ceil(ratio · total) with warmupSteps < 1 or warmupRatio. */
  getWarmupSteps(totalSteps: number): number {
    if (this.warmupSteps >= 1) return Math.floor(this.warmupSteps);
    const ratio = this.warmupSteps > 0 ? this.warmupSteps : (this.warmupRatio ?? 0);
    return Math.ceil(totalSteps * ratio);
  }

  /** Steps per epoch, total steps, epochs, warmup and the log/eval/save intervals for `numExamples` rows. */
  plan(numExamples: number): TrainingPlan {
    return planTraining(this, numExamples);
  }
  /** Total optimizer steps for a dataset of `numExamples` rows (HF's max_steps). */
  totalTrainSteps(numExamples: number): number {
    return planTraining(this, numExamples).maxSteps;
  }

  /** lrSchedulerKwargs as camelCase SchedulerOptions, checked against lrSchedulerType. */
  schedulerKwargs(): SchedulerOptions {
    const name = (this.constructor as typeof TrainingArguments).configName;
    const allowed = SCHEDULER_KWARGS[this.lrSchedulerType];
    const out: Record<string, number> = {};
    if (this.lrSchedulerKwargs === null) return out;
    if (!isPlainObject(this.lrSchedulerKwargs)) configError(name, 'lrSchedulerKwargs', 'lrSchedulerKwargs must be an object.');
    for (const [k, v] of Object.entries(this.lrSchedulerKwargs)) {
      const camel = k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
      if (!(allowed as readonly string[]).includes(camel)) {
        throw new TsFinetuneError(
          'UNKNOWN_CONFIG_KEY',
          `lrSchedulerKwargs key "${k}" is not an argument of the "${this.lrSchedulerType}" schedule` +
            (allowed.length > 0 ? ` (it takes ${allowed.map((a) => toSnakeCase(a)).join(', ')}).` : ' (it takes none).'),
          { key: `lrSchedulerKwargs.${k}`, lrSchedulerType: this.lrSchedulerType },
        );
      }
      out[camel] = num({ min: 0 })(v, `lrSchedulerKwargs.${k}`);
    }
    return out;
  }

  /** What `getScheduler` needs for a run of `totalSteps` optimizer steps. */
  schedulerOptions(totalSteps: number): SchedulerOptions {
    return {
      ...this.schedulerKwargs(),
      numWarmupSteps: this.getWarmupSteps(totalSteps),
      numTrainingSteps: totalSteps,
      lrInit: this.learningRate,
    };
  }
  /** The stateful schedule (torch LambdaLR) for a run of `totalSteps` optimizer steps. */
  createScheduler(totalSteps: number): LrScheduler {
    return new LrScheduler(this.lrSchedulerType, this.schedulerOptions(totalSteps), this.learningRate);
  }

  /** HF's training_args.json form: snake_case keys, every field. `JSON.stringify(args)` uses it. */
  toJSON(): Record<string, unknown> {
    const cls = this.constructor as typeof TrainingArguments;
    const out = fieldsToPython(cls.fields, this as TrainingArgumentsFields);
    if (this.lrSchedulerKwargs !== null) {
      out['lr_scheduler_kwargs'] = Object.fromEntries(
        Object.entries(this.lrSchedulerKwargs).map(([k, v]) => [toSnakeCase(k), v]),
      );
    }
    return out;
  }
  toJSONString(): string {
    return JSON.stringify(this.toJSON(), null, 2) + '\n';
  }

  /**
   * Read the training_args.json form (or any options object). `ignoreUnknown` skips keys we do not have,
   * for files written by transformers.
   */
  static fromJSON<T extends TrainingArguments>(
    this: new (options: never, flags?: ParseFlags) => T,
    json: string | Record<string, unknown>,
    flags: ParseFlags = {},
  ): T {
    let obj: unknown = json;
    if (typeof json === 'string') {
      try {
        obj = JSON.parse(json);
      } catch (e) {
        throw new TsFinetuneError('CORRUPT_FILE', `training arguments JSON does not parse: ${(e as Error).message}`, {}, { cause: e });
      }
    }
    return new this(obj as never, flags);
  }

  /** A copy with `overrides` applied and checked (e.g. `key=value` from the command line). */
  clone(overrides: Record<string, unknown> = {}): this {
    const cls = this.constructor as typeof TrainingArguments;
    const merged: Record<string, unknown> = {};
    for (const k of Object.keys(cls.fields)) merged[k] = (this as unknown as Record<string, unknown>)[k];
    for (const [k, v] of Object.entries(overrides)) merged[canonicalKey(cls.fields, k, cls.keyAliases)] = v;
    const Cls = this.constructor as new (options: Record<string, unknown>) => this;
    return new Cls(merged);
  }
}
