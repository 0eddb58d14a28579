import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isTsFinetuneError } from '../../src/core/errors.js';
import { TrainerState } from '../../src/train/trainer-state.js';
import { TrainingArguments } from '../../src/train/training-args.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsft-ts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The keys transformers' TrainerState (v4.5x / v5) writes.
const HF_KEYS = [
  'best_global_step', 'best_metric', 'best_model_checkpoint', 'epoch', 'eval_steps', 'global_step', 'is_hyper_param_search',
  'is_local_process_zero', 'is_world_process_zero', 'log_history', 'logging_steps', 'max_steps', 'num_input_tokens_seen',
  'num_train_epochs', 'save_steps', 'stateful_callbacks', 'total_flos', 'train_batch_size', 'trial_name', 'trial_params',
];

describe('TrainerState', () => {
  it('starts from the plan and logs like Trainer.log', () => {
    const args = new TrainingArguments({ perDeviceTrainBatchSize: 4, maxSteps: 100, loggingSteps: 0.1, saveSteps: 50 });
    const s = TrainerState.forRun(args, args.plan(1000));
    expect(s).toMatchObject({ maxSteps: 100, loggingSteps: 10, saveSteps: 50, trainBatchSize: 4, numTrainEpochs: 1, globalStep: 0 });
    s.globalStep = 10;
    s.epoch = 0.04;
    expect(s.log({ loss: 1.25, grad_norm: 0.5, learning_rate: 1e-4 })).toEqual({ loss: 1.25, grad_norm: 0.5, learning_rate: 1e-4, epoch: 0.04, step: 10 });
    expect(s.logHistory).toHaveLength(1);
  });

  it('tracks the best metric as HF does', () => {
    const s = new TrainerState();
    s.globalStep = 10;
    expect(s.updateBest({ eval_loss: 2 }, 'loss', false)).toBe(true);
    s.globalStep = 20;
    expect(s.updateBest({ eval_loss: 2.5 }, 'eval_loss', false)).toBe(false);
    s.globalStep = 30;
    expect(s.updateBest({ eval_loss: 1.5 }, 'loss', false)).toBe(true);
    expect([s.bestMetric, s.bestGlobalStep]).toEqual([1.5, 30]);
    expect(new TrainerState().updateBest({ eval_accuracy: 0.5 }, 'accuracy', true)).toBe(true);
    try {
      s.updateBest({ eval_loss: 1 }, 'bleu', true);
      expect.unreachable();
    } catch (e) {
      expect(isTsFinetuneError(e, 'INVALID_CONFIG')).toBe(true);
      expect((e as Error).message).toContain('eval_bleu');
    }
  });

  it("writes trainer_state.json with HF's keys, sorted, indent 2, and reads it back", async () => {
    const s = new TrainerState({ globalStep: 20, maxSteps: 40, epoch: 0.5, totalFlos: 1.5e12 });
    s.log({ loss: 1.1, grad_norm: Infinity });
    s.bestModelCheckpoint = 'out/checkpoint-20';
    const file = path.join(dir, 'checkpoint-20', 'trainer_state.json');
    await s.save(file);
    const text = readFileSync(file, 'utf8');
    expect(text.endsWith('}\n')).toBe(true);
    expect(text).toContain('\n  "best_global_step": null,\n');
    expect(text).toContain('"grad_norm": Infinity');
    const keys = [...text.matchAll(/^ {2}"([a-z_]+)":/gm)].map((m) => m[1]);
    expect(keys).toEqual([...HF_KEYS].sort());
    const back = await TrainerState.load(file);
    expect(back.toJSON()).toEqual(s.toJSON());
    expect(back.logHistory[0]!['grad_norm']).toBe(Infinity);
  });

  it('reads a file transformers wrote (NaN, older or extra keys)', async () => {
    const file = path.join(dir, 'hf_state.json');
    writeFileSync(file, `{
  "best_metric": null, "best_model_checkpoint": null, "epoch": 1.0, "eval_steps": 500, "global_step": 3,
  "is_hyper_param_search": false, "is_local_process_zero": true, "is_world_process_zero": true,
  "log_history": [{"epoch": 1.0, "grad_norm": NaN, "learning_rate": 5e-05, "loss": 2.0, "step": 3}],
  "logging_steps": 500, "max_steps": 3, "num_train_epochs": 1, "save_steps": 500, "total_flos": 12.0,
  "train_batch_size": 8, "trial_name": null, "trial_params": null, "some_future_key": 1
}`);
    const s = await TrainerState.load(file);
    expect(s.globalStep).toBe(3);
    expect(s.logHistory[0]!['grad_norm']).toBeNaN();
    expect(s.bestGlobalStep).toBeNull();
    expect(s.statefulCallbacks).toEqual({});
  });

  it('fails clearly on a missing or broken file', async () => {
    await expect(TrainerState.load(path.join(dir, 'nope.json'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, '{"global_step": "x"}');
    await expect(TrainerState.load(bad)).rejects.toMatchObject({ code: 'CORRUPT_FILE' });
  });
});
