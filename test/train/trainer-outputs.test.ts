// What one SFT run leaves on disk, in the HF Trainer layout: logs/metrics.jsonl with TRL's SFT fields,
// a TensorBoard event file that decodes with a protobuf reader (train/ and eval/ scalars at the logged steps,
// equal to the jsonl values), trainer_state.json's log_history, logs/loss.svg, complete checkpoint-<step>/
// folders, saveTotalLimit rotation that keeps the best checkpoint, loadBestModelAtEnd, and saveModel
// (adapter + tokenizer).
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import protobuf from 'protobufjs';
import { afterAll, describe, expect, it } from 'vitest';
import { readMetricsLog, readTfRecords } from '../../src/train/index.js';
import { RecordingSFTTrainer, TEXTS, charTokenizer, fileBytes, gqa, lora, quietArgs, tmp } from './sft-helpers.js';

// TensorFlow's event.proto / summary.proto, trimmed to the fields a scalar log uses (as tensorboard.test.ts).
const PROTO = `
syntax = "proto3";
message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what { string file_version = 3; bytes graph_def = 4; Summary summary = 5; }
}
message Summary {
  message Value { string node_name = 7; string tag = 1; oneof value { float simple_value = 2; bytes image = 4; } }
  repeated Value value = 1;
}`;
const Event = protobuf.parse(PROTO).root.lookupType('Event');

interface DecodedEvent {
  step: number;
  fileVersion?: string;
  summary?: { value: { tag: string; simpleValue: number }[] };
}

const out = tmp('outputs');
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('SFT run outputs', () => {
  it('metrics.jsonl, TensorBoard, trainer_state, loss.svg, checkpoints, rotation, best model, saveModel', async () => {
    const tok = charTokenizer();
    const args = quietArgs({
      outputDir: out,
      maxSteps: 6,
      perDeviceTrainBatchSize: 2,
      perDeviceEvalBatchSize: 3,
      learningRate: 3e-2,
      reportTo: ['tensorboard', 'jsonl'],
      loggingSteps: 2,
      evalStrategy: 'steps',
      evalSteps: 2,
      saveStrategy: 'steps',
      saveSteps: 2,
      saveTotalLimit: 2,
      loadBestModelAtEnd: true,
      metricForBestModel: 'loss',
      // The highest eval loss wins: as training lowers the loss, the best is an early checkpoint, so
      // rotation has to keep it while deleting a newer one.
      greaterIsBetter: true,
    });
    const trainer = new RecordingSFTTrainer({
      model: await gqa(),
      peftConfig: lora(),
      args,
      trainDataset: TEXTS.map((text) => ({ text })),
      evalDataset: TEXTS.slice(0, 3).map((text) => ({ text })),
      tokenizer: tok,
    });
    const res = await trainer.train();
    await trainer.saveModel();
    const { train: examples } = await trainer.examples();
    await trainer.release();
    expect(res.globalStep).toBe(6);

    // logs/metrics.jsonl: TRL's SFT fields at steps 2, 4, 6, plus evaluations and the final summary.
    const records = readMetricsLog(path.join(out, 'logs', 'metrics.jsonl'));
    const trainLogs = records.filter((r) => r.loss !== undefined);
    expect(trainLogs.map((r) => r.step)).toEqual([2, 4, 6]);
    for (const r of trainLogs) {
      for (const k of ['loss', 'grad_norm', 'learning_rate', 'epoch', 'num_tokens', 'mean_token_accuracy']) expect(typeof r[k], k).toBe('number');
      expect(r.mean_token_accuracy).toBeGreaterThanOrEqual(0);
      expect(r.mean_token_accuracy).toBeLessThanOrEqual(1);
      expect(r.learning_rate).toBeCloseTo((3e-2 * (6 - (r.step as number))) / 6, 12); // linear, after the step
      expect(r.epoch).toBeCloseTo((r.step as number) / 4, 12); // 4 micro-batches per epoch
    }
    // num_tokens: the real (non-padding) tokens of every row trained on so far.
    let tokens = 0;
    const seenTokens = trainer.seen.map((rows) => (tokens += rows.reduce((s, i) => s + examples[i]!.inputIds.length, 0)));
    expect(trainLogs.map((r) => r.num_tokens)).toEqual([seenTokens[1], seenTokens[3], seenTokens[5]]);
    const evalLogs = records.filter((r) => r.eval_loss !== undefined);
    expect(evalLogs.map((r) => r.step)).toEqual([2, 4, 6]);
    for (const r of evalLogs) for (const k of ['eval_loss', 'eval_mean_token_accuracy', 'eval_runtime', 'eval_samples_per_second', 'eval_steps_per_second']) expect(typeof r[k], k).toBe('number');
    expect(records.at(-1)).toMatchObject({ step: 6, train_loss: expect.any(Number), train_runtime: expect.any(Number) });

    // trainer_state.json: the same log_history.
    const state = JSON.parse(readFileSync(path.join(out, 'trainer_state.json'), 'utf8'));
    expect(state.global_step).toBe(6);
    expect(state.log_history).toEqual(records.map(({ time: _time, ...r }) => r)); // the jsonl adds a wall-clock time

    // TensorBoard: one event file; train/ and eval/ scalars at the logged steps, equal to the jsonl values.
    const tbFiles = readdirSync(path.join(out, 'logs')).filter((f) => f.startsWith('events.out.tfevents.'));
    expect(tbFiles.length).toBe(1);
    const events = readTfRecords(new Uint8Array(readFileSync(path.join(out, 'logs', tbFiles[0]!)))).map(
      (r) => Event.toObject(Event.decode(r), { longs: Number }) as DecodedEvent,
    );
    expect(events[0]!.fileVersion).toBe('brain.Event:2');
    const scalars = (tag: string): [number, number][] =>
      events.flatMap((e) => (e.summary?.value ?? []).filter((v) => v.tag === tag).map((v) => [e.step, v.simpleValue] as [number, number]));
    expect(scalars('train/loss')).toEqual(trainLogs.map((r) => [r.step, Math.fround(r.loss as number)]));
    expect(scalars('train/grad_norm')).toEqual(trainLogs.map((r) => [r.step, Math.fround(r.grad_norm as number)]));
    expect(scalars('train/learning_rate').map(([s]) => s)).toEqual([2, 4, 6]);
    expect(scalars('train/mean_token_accuracy').length).toBe(3);
    expect(scalars('eval/loss')).toEqual(evalLogs.map((r) => [r.step, Math.fround(r.eval_loss as number)]));

    // The loss curve.
    expect(readFileSync(path.join(out, 'logs', 'loss.svg'), 'utf8')).toMatch(/^<svg|<svg /);

    // Rotation: saves at 2, 4, 6 with saveTotalLimit 2 keep the newest and the best.
    const bestStep = evalLogs.reduce((b, r) => ((r.eval_loss as number) > (b.eval_loss as number) ? r : b)).step as number;
    const kept = readdirSync(out).filter((f) => f.startsWith('checkpoint-')).sort();
    const want = bestStep === 6 ? ['checkpoint-4', 'checkpoint-6'] : [`checkpoint-${bestStep}`, 'checkpoint-6'];
    console.log(`eval_loss by step: ${evalLogs.map((r) => `${r.step}: ${(r.eval_loss as number).toFixed(4)}`).join(', ')}; best ${bestStep}; kept ${kept.join(', ')}`);
    expect(kept).toEqual(want);
    expect(bestStep).not.toBe(6); // so the rotation above really kept an older checkpoint
    expect(state.best_model_checkpoint).toBe(path.join(out, `checkpoint-${bestStep}`));
    expect(state.best_global_step).toBe(bestStep);

    // Every checkpoint file of the HF layout.
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'scheduler.json', 'rng_state.json', 'trainer_state.json', 'training_args.json']) {
      expect(existsSync(path.join(out, 'checkpoint-6', f)), f).toBe(true);
    }
    expect(JSON.parse(readFileSync(path.join(out, 'checkpoint-6', 'training_args.json'), 'utf8'))).toMatchObject({ save_total_limit: 2, logging_steps: 2 });
    expect(JSON.parse(readFileSync(path.join(out, 'checkpoint-6', 'rng_state.json'), 'utf8'))).toMatchObject({ seed: 42, epoch: 1, batches_done: 2 });

    // loadBestModelAtEnd: the saved adapter is the best checkpoint's, not the last one's; saveModel also
    // wrote the tokenizer.
    expect(fileBytes(out, 'adapter_model.safetensors').equals(fileBytes(out, `checkpoint-${bestStep}`, 'adapter_model.safetensors'))).toBe(true);
    expect(fileBytes(out, 'adapter_model.safetensors').equals(fileBytes(out, 'checkpoint-6', 'adapter_model.safetensors'))).toBe(false);
    expect(existsSync(path.join(out, 'tokenizer.json'))).toBe(true);
    expect(existsSync(path.join(out, 'tokenizer_config.json'))).toBe(true);
  });
});
