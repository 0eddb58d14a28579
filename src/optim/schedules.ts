// Learning-rate schedules, exactly as transformers' `optimization.py`: each schedule is a multiplier
// λ(step) on the base learning rate (torch's LambdaLR), with the same warmup, the same float formulas and
// the same edge cases (e.g. cosine_with_restarts returns 0 once progress ≥ 1). `LrScheduler` is the
// stateful LambdaLR twin the training loop steps, with a JSON state for checkpoints (scheduler.json).
// Not here: the optimizer update itself (optim graphs in kernels/), reduce_lr_on_plateau, wsd.

import { TsFinetuneError } from '../core/errors.js';

export const SCHEDULER_TYPES = [
  'linear',
  'cosine',
  'cosine_with_restarts',
  'polynomial',
  'constant',
  'constant_with_warmup',
  'cosine_with_min_lr',
] as const;
export type SchedulerType = (typeof SCHEDULER_TYPES)[number];

/** λ(step): the factor the base learning rate is multiplied by at optimizer step `step` (0-based). */
export type LrLambda = (step: number) => number;

export interface SchedulerOptions {
  /** Linear warmup from 0 over this many steps. Ignored by 'constant' (as in HF). */
  numWarmupSteps?: number;
  /** Total optimizer steps; needed by every decaying schedule. */
  numTrainingSteps?: number;
  /** cosine / cosine_with_min_lr: waves (default 0.5 = one half-cosine); cosine_with_restarts: hard restarts (default 1). */
  numCycles?: number;
  /** polynomial: exponent (default 1.0). */
  power?: number;
  /** polynomial: final learning rate (default 1e-7); must be below `lrInit`. */
  lrEnd?: number;
  /** polynomial / cosine_with_min_lr with `minLr`: the base learning rate (HF reads it from the optimizer). */
  lrInit?: number;
  /** cosine_with_min_lr: floor as an absolute learning rate (needs `lrInit`) … */
  minLr?: number;
  /** … or as a fraction of the base learning rate. Exactly one of the two. */
  minLrRate?: number;
}

/** The `lr_scheduler_kwargs` each type accepts (camelCase; HF's snake_case names map onto these). */
export const SCHEDULER_KWARGS: Readonly<Record<SchedulerType, readonly (keyof SchedulerOptions)[]>> = {
  linear: [],
  cosine: ['numCycles'],
  cosine_with_restarts: ['numCycles'],
  polynomial: ['power', 'lrEnd'],
  constant: [],
  constant_with_warmup: [],
  cosine_with_min_lr: ['numCycles', 'minLr', 'minLrRate'],
};

function bad(message: string, details: Record<string, unknown> = {}): TsFinetuneError {
  return new TsFinetuneError('INVALID_ARGUMENT', message, details);
}

function needCount(type: SchedulerType, name: 'numWarmupSteps' | 'numTrainingSteps', v: number | undefined): number {
  if (v === undefined) throw bad(`Scheduler "${type}" requires ${name}.`, { type, option: name });
  if (!Number.isSafeInteger(v) || v < 0) {
    throw bad(`Scheduler "${type}": ${name} must be an integer >= 0, got ${v}.`, { type, option: name, value: v });
  }
  return v;
}

// Python's float % 1.0 for non-negative x (the only case reached), kept separate to mirror the source.
const frac = (x: number): number => x - Math.floor(x);

/**
 * The schedule `type` as a function of the optimizer step, as `transformers.get_scheduler(type, …)`.
 *
 * @example
 * const lambda = getScheduler('cosine', { numWarmupSteps: 10, numTrainingSteps: 100 });
 * lambda(5);   // 0.5  (warmup)
 * lambda(55);  // 0.5  (half-way down the half-cosine)
 */
export function getScheduler(type: SchedulerType, options: SchedulerOptions = {}): LrLambda {
  if (!(SCHEDULER_TYPES as readonly string[]).includes(type)) {
    throw bad(`Unknown scheduler type "${String(type)}"; expected one of ${SCHEDULER_TYPES.join(', ')}.`, { type });
  }
  if (type === 'constant') return () => 1;
  const W = needCount(type, 'numWarmupSteps', options.numWarmupSteps);
  const warm = (s: number): number => s / Math.max(1, W);
  if (type === 'constant_with_warmup') return (s) => (s < W ? warm(s) : 1);

  const T = needCount(type, 'numTrainingSteps', options.numTrainingSteps);
  const progress = (s: number): number => (s - W) / Math.max(1, T - W);
  switch (type) {
    case 'linear':
      return (s) => (s < W ? warm(s) : Math.max(0, (T - s) / Math.max(1, T - W)));
    case 'cosine': {
      const cycles = options.numCycles ?? 0.5;
      return (s) => (s < W ? warm(s) : Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress(s)))));
    }
    case 'cosine_with_restarts': {
      const cycles = options.numCycles ?? 1;
      return (s) => {
        if (s < W) return warm(s);
        const p = progress(s);
        if (p >= 1) return 0;
        return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * frac(cycles * p))));
      };
    }
    case 'cosine_with_min_lr': {
      const cycles = options.numCycles ?? 0.5;
      const rate = minLrRate(options);
      return (s) => {
        if (s < W) return warm(s);
        const f = 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress(s)));
        return Math.max(0, f * (1 - rate) + rate);
      };
    }
    case 'polynomial': {
      const lrEnd = options.lrEnd ?? 1e-7;
      const power = options.power ?? 1;
      const lrInit = options.lrInit;
      if (lrInit === undefined) throw bad('Scheduler "polynomial" requires lrInit (the base learning rate).');
      if (!(lrInit > lrEnd)) {
        throw bad(`Scheduler "polynomial": lrEnd (${lrEnd}) must be smaller than the initial lr (${lrInit}).`, {
          lrEnd,
          lrInit,
        });
      }
      const range = lrInit - lrEnd;
      const decaySteps = T - W;
      return (s) => {
        if (s < W) return warm(s);
        // HF divides by zero when T == W; the only sensible value there is the end of the decay.
        if (s > T || decaySteps === 0) return lrEnd / lrInit;
        const pctRemaining = 1 - (s - W) / decaySteps;
        return (range * pctRemaining ** power + lrEnd) / lrInit;
      };
    }
  }
}

function minLrRate(o: SchedulerOptions): number {
  if (o.minLr !== undefined && o.minLrRate !== undefined) {
    throw bad('Scheduler "cosine_with_min_lr": give only one of minLr and minLrRate.');
  }
  if (o.minLr !== undefined) {
    if (o.lrInit === undefined) throw bad('Scheduler "cosine_with_min_lr": minLr needs lrInit (the base learning rate).');
    return o.minLr / o.lrInit;
  }
  if (o.minLrRate === undefined) {
    throw bad('Scheduler "cosine_with_min_lr" needs minLr or minLrRate in lrSchedulerKwargs.');
  }
  return o.minLrRate;
}

/** scheduler.json: torch's LambdaLR state_dict fields plus what rebuilds the lambda. */
export interface LrSchedulerState {
  type: SchedulerType;
  options: SchedulerOptions;
  base_lrs: number[];
  last_epoch: number;
  _step_count: number;
  _last_lr: number[];
}

/**
 * torch's `LambdaLR` for one parameter group. After construction `lr` is base·λ(0); each `step()`
 * (called after each optimizer step, as HF's loop does) advances to base·λ(lastEpoch + 1).
 * So the update that produces global step s (1-based) uses base·λ(s − 1), and the `learning_rate`
 * HF logs at global step s is `lr` after that step's `step()`, i.e. base·λ(s).
 *
 * @example
 * const sched = new LrScheduler('linear', { numWarmupSteps: 2, numTrainingSteps: 10 }, 1e-3);
 * sched.lr;      // 0       — used by the first update
 * sched.step();
 * sched.lr;      // 5e-4    — used by the second update, logged at step 1
 */
export class LrScheduler {
  readonly type: SchedulerType;
  readonly options: SchedulerOptions;
  readonly baseLr: number;
  readonly lambda: LrLambda;
  private epoch: number;

  constructor(type: SchedulerType, options: SchedulerOptions, baseLr: number, lastEpoch = 0) {
    if (!Number.isFinite(baseLr) || baseLr < 0) throw bad(`LrScheduler: base learning rate must be >= 0, got ${baseLr}.`);
    this.type = type;
    this.options = { ...options, lrInit: options.lrInit ?? baseLr };
    this.baseLr = baseLr;
    this.lambda = getScheduler(type, this.options);
    this.epoch = lastEpoch;
  }

  /** Optimizer steps taken so far (torch's `last_epoch`). */
  get lastEpoch(): number {
    return this.epoch;
  }

  /** The learning rate for the next optimizer update (torch's `get_last_lr()[0]`). */
  get lr(): number {
    return this.baseLr * this.lambda(this.epoch);
  }

  step(): void {
    this.epoch += 1;
  }

  toJSON(): LrSchedulerState {
    return {
      type: this.type,
      options: { ...this.options },
      base_lrs: [this.baseLr],
      last_epoch: this.epoch,
      _step_count: this.epoch + 1,
      _last_lr: [this.lr],
    };
  }

  static fromJSON(state: LrSchedulerState): LrScheduler {
    const base = state.base_lrs[0];
    if (base === undefined || !Number.isSafeInteger(state.last_epoch)) {
      throw new TsFinetuneError('CORRUPT_FILE', 'scheduler.json: missing base_lrs or last_epoch.', { state });
    }
    return new LrScheduler(state.type, state.options, base, state.last_epoch);
  }
}
