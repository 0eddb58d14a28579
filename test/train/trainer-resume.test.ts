// Checkpoint + resume is bit-identical: 6 steps straight give the same adapter, trainable values and
// optimizer state, byte for byte, as 3 steps + resumeFromCheckpoint + 3 steps — with LoRA dropout (the
// per-step seeds), weight decay, warmup, clipping, gradient accumulation and a resume point in the middle
// of a shuffled epoch. Also Ctrl-C: an interrupt (sent through an injected signal source) finishes the step,
// saves a checkpoint off the save schedule, returns interrupted: true, and resuming from it ends bit-identical
// too. And the same for paged 8-bit AdamW, whose tensors here are large enough for 8-bit state.
import { cpSync, existsSync, rmSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../../src/io/index.js';
import type { MicroBatch } from '../../src/train/index.js';
import type { TokenizedExample } from '../../src/train/collator.js';
import { RecordingSFTTrainer, TEXTS, charTokenizer, fileBytes, gqa, lora, quietArgs, tmp } from './sft-helpers.js';
import type { LoraConfigInit } from '../../src/peft/index.js';

const root = tmp('resume');
afterAll(() => rmSync(root, { recursive: true, force: true }));
const ROWS = TEXTS.map((text) => ({ text }));

// 8 rows, 2 per micro-batch, 2 micro-batches per step: 2 steps per epoch, 6 steps = 3 epochs.
function args(outputDir: string, optim: string) {
  return quietArgs({
    outputDir,
    optim,
    maxSteps: 6,
    perDeviceTrainBatchSize: 2,
    gradientAccumulationSteps: 2,
    learningRate: 2e-2,
    warmupSteps: 2,
    weightDecay: 0.01,
    maxGradNorm: 0.5,
    saveStrategy: 'steps',
    saveSteps: 3,
  });
}

class InterruptingTrainer extends RecordingSFTTrainer {
  readonly signals = new EventEmitter();
  interruptAtStep = -1;
  protected override async makeBatch(examples: TokenizedExample[], rows: number[], B: number, training: boolean): Promise<MicroBatch> {
    // Ctrl-C arrives while step `interruptAtStep` is being computed.
    if (training && this.state.globalStep + 1 === this.interruptAtStep && this.signals.listenerCount('SIGINT') > 0) {
      this.signals.emit('SIGINT', 'SIGINT');
      this.interruptAtStep = -1;
    }
    return super.makeBatch(examples, rows, B, training);
  }
}

async function trainer(outputDir: string, optim: string, peft: LoraConfigInit): Promise<InterruptingTrainer> {
  const t = new InterruptingTrainer({ model: await gqa(), peftConfig: lora(peft), args: args(outputDir, optim), trainDataset: ROWS, tokenizer: charTokenizer() });
  t.interruptSource = t.signals;
  return t;
}

const FILES = ['adapter_model.safetensors', 'trainable_params.safetensors', 'optimizer.safetensors'];

function expectSameCheckpoint(a: string, b: string): void {
  for (const f of FILES) expect(fileBytes(a, f).equals(fileBytes(b, f)), f).toBe(true);
  expect(fileBytes(a, 'scheduler.json').toString()).toBe(fileBytes(b, 'scheduler.json').toString());
  expect(fileBytes(a, 'rng_state.json').toString()).toBe(fileBytes(b, 'rng_state.json').toString());
}

for (const [optim, peft] of [
  ['adamw_torch', { loraDropout: 0.1 }],
  // r 64 on q_proj [64×64] and gate_proj [96×64]: every LoRA tensor has ≥ 4096 elements → 8-bit state.
  ['paged_adamw_8bit', { r: 64, targetModules: ['q_proj', 'gate_proj'], loraDropout: 0.1 }],
] as const) {
  describe(`resume (${optim})`, () => {
    const straight = path.join(root, `${optim}-straight`);
    let straightSeen: number[][] = [];

    it('6 steps straight', async () => {
      const t = await trainer(straight, optim, peft);
      const res = await t.train();
      expect(res).toMatchObject({ globalStep: 6, interrupted: false });
      straightSeen = t.seen;
      expect(straightSeen.length).toBe(12);
      await t.release();
      expect(existsSync(path.join(straight, 'checkpoint-3'))).toBe(true);
      const opt = await readSafetensors(path.join(straight, 'checkpoint-6', 'optimizer.safetensors'));
      if (optim === 'paged_adamw_8bit') expect([...opt.values()].some((x) => x.dtype === 'uint8')).toBe(true);
    });

    it('3 steps + resumeFromCheckpoint + 3 steps is bit-identical', async () => {
      const dir = path.join(root, `${optim}-resumed`);
      cpSync(path.join(straight, 'checkpoint-3'), path.join(dir, 'checkpoint-3'), { recursive: true });
      const t = await trainer(dir, optim, peft);
      const res = await t.train({ resumeFromCheckpoint: true });
      expect(res.globalStep).toBe(6);
      // It continued in the middle of epoch 1 with the same micro-batches.
      expect(t.seen).toEqual(straightSeen.slice(6));
      await t.release();
      expectSameCheckpoint(path.join(dir, 'checkpoint-6'), path.join(straight, 'checkpoint-6'));
      const losses = (h: { step?: unknown; loss?: unknown }[]) => h.filter((e) => typeof e.loss === 'number' && (e.step as number) > 3).map((e) => e.loss);
      expect(losses(t.state.logHistory)).toEqual(losses(JSON.parse(fileBytes(straight, 'trainer_state.json').toString()).log_history));
    });

    if (optim === 'adamw_torch') {
      it('Ctrl-C saves a checkpoint and returns interrupted; resuming from it is bit-identical', async () => {
        const dir = path.join(root, `${optim}-interrupted`);
        const t = await trainer(dir, optim, peft);
        t.interruptAtStep = 2;
        const res = await t.train();
        expect(res).toMatchObject({ globalStep: 2, interrupted: true });
        expect(t.signals.listenerCount('SIGINT')).toBe(0); // the handler was removed
        expect(existsSync(path.join(dir, 'checkpoint-2', 'adapter_model.safetensors'))).toBe(true); // off the save schedule (3)
        expect(existsSync(path.join(dir, 'checkpoint-3'))).toBe(false);
        expect(res.metrics.train_loss).toBeGreaterThan(0);
        await t.release();

        const again = await trainer(dir, optim, peft);
        const res2 = await again.train({ resumeFromCheckpoint: true });
        expect(res2).toMatchObject({ globalStep: 6, interrupted: false });
        expect(again.seen).toEqual(straightSeen.slice(4));
        await again.release();
        expectSameCheckpoint(path.join(dir, 'checkpoint-6'), path.join(straight, 'checkpoint-6'));
        expectSameCheckpoint(path.join(dir, 'checkpoint-3'), path.join(straight, 'checkpoint-3'));
      });
    }
  });
}
