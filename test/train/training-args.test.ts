import { describe, expect, it } from 'vitest';
import { TsFinetuneError } from '../../src/core/errors.js';
import { TrainingArguments } from '../../src/train/training-args.js';

function err(f: () => unknown): TsFinetuneError {
  try {
    f();
  } catch (e) {
    if (e instanceof TsFinetuneError) return e;
    throw e;
  }
  throw new Error('expected a TsFinetuneError');
}

describe('TrainingArguments', () => {
  it("has transformers' defaults", () => {
    const a = new TrainingArguments();
    expect(a).toMatchObject({
      outputDir: 'trainer_output',
      perDeviceTrainBatchSize: 8,
      perDeviceEvalBatchSize: 8,
      gradientAccumulationSteps: 1,
      gradientCheckpointing: false,
      maxGradNorm: 1,
      numTrainEpochs: 3,
      maxSteps: -1,
      learningRate: 5e-5,
      weightDecay: 0,
      adamBeta1: 0.9,
      adamBeta2: 0.999,
      adamEpsilon: 1e-8,
      bf16: false,
      fp16: false,
      saveTotalLimit: null,
      loggingSteps: 500,
      loggingFirstStep: false,
      optim: 'adamw_torch',
      lrSchedulerType: 'linear',
      warmupSteps: 0,
      evalStrategy: 'no',
      saveStrategy: 'steps',
      saveSteps: 500,
      seed: 42,
      dataSeed: null,
      device: 'auto',
      reportTo: ['jsonl'],
    });
  });

  it('takes the walkthrough arguments, in camelCase or Python snake_case', () => {
    const walk = {
      outputDir: 'out', perDeviceTrainBatchSize: 2, gradientAccumulationSteps: 2, gradientCheckpointing: true,
      maxGradNorm: 0.3, numTrainEpochs: 15, learningRate: 2e-4, bf16: true, saveTotalLimit: 3, loggingSteps: 10,
      optim: 'paged_adamw_32bit', lrSchedulerType: 'cosine', warmupRatio: 0.05, maxSteps: 8000,
      reportTo: 'tensorboard', seed: 42,
    } as const;
    const a = new TrainingArguments(walk);
    const snake = Object.fromEntries(Object.entries(walk).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase()), v]));
    const b = new TrainingArguments(snake);
    expect(b.toJSON()).toEqual(a.toJSON());
    expect(a.reportTo).toEqual(['tensorboard']);
    expect(a.totalTrainBatchSize).toBe(4);
    expect(a.getWarmupSteps(8000)).toBe(400);
    expect((b as unknown as Record<string, unknown>)['max_grad_norm']).toBeUndefined(); // fields live under camelCase names only
  });

  it('rejects unknown keys with the close name, in the spelling style used', () => {
    const e1 = err(() => new TrainingArguments({ learning_rat: 1e-4 } as never));
    expect(e1.code).toBe('UNKNOWN_CONFIG_KEY');
    expect(e1.message).toContain('"learning_rate"');
    expect(e1.details).toMatchObject({ key: 'learning_rat', suggestion: 'learning_rate' });
    const e2 = err(() => new TrainingArguments({ gradientAccumulationStep: 4 } as never));
    expect(e2.details['suggestion']).toBe('gradientAccumulationSteps');
    const e3 = err(() => new TrainingArguments({ warp_drive: true } as never));
    expect(e3.code).toBe('UNKNOWN_CONFIG_KEY');
    expect(e3.details['suggestion']).toBeUndefined();
  });

  it('rejects wrong types and ranges, naming the key', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ learningRate: 'fast' }, 'learningRate'],
      [{ per_device_train_batch_size: 2.5 }, 'per_device_train_batch_size'],
      [{ perDeviceTrainBatchSize: 0 }, 'perDeviceTrainBatchSize'],
      [{ learningRate: -1 }, 'learningRate'],
      [{ bf16: 'yes' }, 'bf16'],
      [{ adamBeta2: 1 }, 'adamBeta2'],
      [{ optim: 'adamw_8bt' }, 'optim'],
      [{ reportTo: 'wandb' }, 'reportTo'],
      [{ saveSteps: 12.5 }, 'saveSteps'],
      [{ outputDir: 3 }, 'outputDir'],
      [{ maxSteps: null }, 'maxSteps'],
    ];
    for (const [opts, key] of cases) {
      const e = err(() => new TrainingArguments(opts as never));
      expect(e.code, key).toBe('INVALID_CONFIG');
      expect(e.message).toContain(`"${key}"`);
      expect(e.details['key']).toBe(key);
    }
    expect(err(() => new TrainingArguments({ optim: 'adamw_8bt' } as never)).details['suggestion']).toBe('adamw_8bit');
  });

  it('accepts numbers and booleans spelled as strings (YAML, key=value) and HF aliases', () => {
    const a = new TrainingArguments({ learning_rate: '2e-4', bf16: 'true', optim: 'adamw_torch_fused', evaluation_strategy: 'steps' } as never);
    expect(a.learningRate).toBe(2e-4);
    expect(a.bf16).toBe(true);
    expect(a.optim).toBe('adamw_torch');
    expect(a.evalStrategy).toBe('steps');
    expect(new TrainingArguments({ optim: 'adamw_bnb_8bit' } as never).optim).toBe('adamw_8bit');
  });

  it('refuses the same setting twice with different values', () => {
    expect(err(() => new TrainingArguments({ learningRate: 1e-4, learning_rate: 2e-4 })).code).toBe('INVALID_CONFIG');
    expect(new TrainingArguments({ learningRate: 1e-4, learning_rate: 1e-4 }).learningRate).toBe(1e-4);
  });

  it('accepts HF keys that have no effect here only at their defaults', () => {
    expect(() => new TrainingArguments({ do_train: true, overwrite_output_dir: true, push_to_hub: false } as never)).not.toThrow();
    const e = err(() => new TrainingArguments({ push_to_hub: true } as never));
    expect(e.code).toBe('INVALID_CONFIG');
    expect(e.message).toContain('push_to_hub');
  });

  it('checks rules that span fields, as HF __post_init__', () => {
    expect(err(() => new TrainingArguments({ bf16: true, fp16: true })).details['key']).toBe('bf16');
    expect(err(() => new TrainingArguments({ maxSteps: 0 })).details['key']).toBe('maxSteps');
    expect(err(() => new TrainingArguments({ loadBestModelAtEnd: true, evalStrategy: 'steps', saveStrategy: 'epoch' })).code).toBe(
      'INVALID_CONFIG',
    );
    expect(err(() => new TrainingArguments({ loadBestModelAtEnd: true, evalStrategy: 'steps', evalSteps: 30, saveSteps: 100 })).details['key']).toBe(
      'saveSteps',
    );
    const best = new TrainingArguments({ loadBestModelAtEnd: true, evalStrategy: 'steps', evalSteps: 50, saveSteps: 100 });
    expect(best.metricForBestModel).toBe('loss');
    expect(best.greaterIsBetter).toBe(false);
    expect(new TrainingArguments({ metricForBestModel: 'eval_accuracy' }).greaterIsBetter).toBe(true);
    expect(err(() => new TrainingArguments({ useCpu: true, device: 'cuda' })).details['key']).toBe('useCpu');
    expect(new TrainingArguments({ use_cpu: true } as never).device).toBe('cpu');
    // eval_steps falls back to logging_steps
    expect(new TrainingArguments({ evalStrategy: 'steps', loggingSteps: 25 }).evalSteps).toBe(25);
    expect(new TrainingArguments({ loggingSteps: 25 }).evalSteps).toBeNull();
  });

  it('checks lrSchedulerKwargs against the schedule', () => {
    const a = new TrainingArguments({ lrSchedulerType: 'cosine_with_restarts', lr_scheduler_kwargs: { num_cycles: 2 } } as never);
    expect(a.schedulerOptions(100)).toEqual({ numCycles: 2, numWarmupSteps: 0, numTrainingSteps: 100, lrInit: 5e-5 });
    expect(a.toJSON()['lr_scheduler_kwargs']).toEqual({ num_cycles: 2 });
    // HF also accepts the kwargs as a JSON string
    expect(new TrainingArguments({ lrSchedulerType: 'cosine', lrSchedulerKwargs: '{"num_cycles": 1.5}' } as never).schedulerKwargs()).toEqual({
      numCycles: 1.5,
    });
    const e = err(() => new TrainingArguments({ lrSchedulerType: 'linear', lrSchedulerKwargs: { num_cycles: 2 } }));
    expect(e.code).toBe('UNKNOWN_CONFIG_KEY');
    expect(err(() => new TrainingArguments({ lrSchedulerType: 'polynomial', learningRate: 1e-8 })).details['key']).toBe('lrSchedulerKwargs');
    const sched = new TrainingArguments({ learningRate: 1e-3, lrSchedulerType: 'cosine', warmupSteps: 10 }).createScheduler(110);
    expect(sched.lr).toBe(0);
    for (let i = 0; i < 60; i++) sched.step();
    expect(sched.lr).toBeCloseTo(0.5e-3, 15);
  });

  it('computes warmup like HF: warmupSteps wins, else ceil(ratio × total); a warmupSteps below 1 is a ratio', () => {
    expect(new TrainingArguments({ warmupSteps: 7, warmupRatio: 0.5 }).getWarmupSteps(100)).toBe(7);
    expect(new TrainingArguments({ warmupRatio: 0.03 }).getWarmupSteps(101)).toBe(4);
    expect(new TrainingArguments({ warmupSteps: 0.1 }).getWarmupSteps(95)).toBe(10);
    expect(new TrainingArguments().getWarmupSteps(95)).toBe(0);
  });

  it('writes training_args.json in snake_case and reads it back', () => {
    const a = new TrainingArguments({ outputDir: 'o', perDeviceTrainBatchSize: 4, reportTo: 'all', resumeFromCheckpoint: true });
    const json = JSON.parse(JSON.stringify(a));
    expect(json).toMatchObject({ output_dir: 'o', per_device_train_batch_size: 4, report_to: ['tensorboard', 'jsonl'], resume_from_checkpoint: true });
    expect(Object.keys(json).every((k) => /^[a-z0-9_]+$/.test(k))).toBe(true);
    for (const k of ['adam_beta1', 'adam_beta2', 'adam_epsilon', 'lr_scheduler_type', 'warmup_ratio', 'save_total_limit', 'logging_first_step', 'eval_strategy', 'data_seed', 'run_name', 'disable_tqdm']) {
      expect(json).toHaveProperty(k);
    }
    const b = TrainingArguments.fromJSON(a.toJSONString());
    expect(b).toBeInstanceOf(TrainingArguments);
    expect(b.toJSON()).toEqual(a.toJSON());
    // a file written by transformers has keys we do not know: skipped on request only
    const hf = { ...json, ddp_bucket_cap_mb: null, torch_compile_mode: null };
    expect(err(() => TrainingArguments.fromJSON(hf)).code).toBe('UNKNOWN_CONFIG_KEY');
    expect(TrainingArguments.fromJSON(hf, { ignoreUnknown: true }).perDeviceTrainBatchSize).toBe(4);
    expect(err(() => TrainingArguments.fromJSON('{nope')).code).toBe('CORRUPT_FILE');
  });

  it('clones with overrides in either spelling, re-validating', () => {
    const a = new TrainingArguments({ outputDir: 'o', learningRate: 1e-4 });
    const b = a.clone({ learning_rate: 3e-4, seed: 7 });
    expect([b.learningRate, b.seed, b.outputDir, a.learningRate]).toEqual([3e-4, 7, 'o', 1e-4]);
    expect(err(() => a.clone({ seeed: 1 })).code).toBe('UNKNOWN_CONFIG_KEY');
    const mutated = new TrainingArguments();
    mutated.bf16 = true;
    mutated.fp16 = true;
    expect(() => mutated.validate()).toThrow(TsFinetuneError);
  });
});
