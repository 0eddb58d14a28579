// Bad input and failures of an SFT run: rows of no known shape (the error lists the columns and the shapes
// we accept), a loss that becomes non-finite (NON_FINITE_LOSS naming the step and rows; the last good
// checkpoint stays), an output folder holding another run's checkpoints (refused unless resuming), a disk
// failure mid-checkpoint (the previous checkpoint stays intact), maxSteps winning over epochs, and the
// per-epoch shuffle (different every epoch, the same on every run).
import { existsSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TsFinetuneError } from '../../src/core/errors.js';
import { RecordingSFTTrainer, TEXTS, charTokenizer, fileBytes, gqa, lora, quietArgs, tmp } from './sft-helpers.js';

const root = tmp('bad-input');
afterAll(() => rmSync(root, { recursive: true, force: true }));
const ROWS = TEXTS.map((text) => ({ text }));

async function caught(p: Promise<unknown>): Promise<TsFinetuneError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(TsFinetuneError);
    return e as TsFinetuneError;
  }
  throw new Error('expected a TsFinetuneError');
}

async function sft(over: Record<string, unknown>, rows: Record<string, unknown>[] = ROWS): Promise<RecordingSFTTrainer> {
  return new RecordingSFTTrainer({ model: await gqa(), peftConfig: lora(), args: quietArgs({ perDeviceTrainBatchSize: 2, learningRate: 1e-2, ...over }), trainDataset: rows, tokenizer: charTokenizer() });
}

describe('rows of unknown shape', () => {
  it('names the row, the columns and the accepted shapes', async () => {
    const t = await sft({ outputDir: path.join(root, 'shape') }, [{ content: 'hello', source: 'web' }]);
    const e = await caught(t.train());
    expect(e.code).toBe('DATASET_ERROR');
    expect(e.message).toMatch(/Row 0 has none of the SFT row shapes/);
    expect(e.message).toMatch(/Columns: \[content, source\]/);
    expect(e.message).toMatch(/datasetTextField is 'text'/);
    expect(e.message).toMatch(/\{messages: \[\{role, content\}\]\}.*\{conversations: \[\{from, value\}\]\}.*\{prompt, completion\}/);
    // The same rows with datasetTextField set are fine.
    const ok = new RecordingSFTTrainer({ model: await gqa(), args: quietArgs({ outputDir: path.join(root, 'shape2') }), trainDataset: [{ content: 'hello', source: 'web' }], datasetTextField: 'content', tokenizer: charTokenizer() });
    expect((await ok.examples()).train.length).toBe(1);
    const odd = await sft({ outputDir: path.join(root, 'shape3') }, [{ text: 'fine' }, { input: 1, output: 2 }]);
    expect((await caught(odd.train())).message).toMatch(/Row 1 has none of the SFT row shapes/);
  });

  it('a dataset whose rows train nothing is an error', async () => {
    // Completion-only loss on a row truncated before its completion.
    const cut = await sft({ outputDir: path.join(root, 'empty'), maxLength: 3 }, [{ prompt: 'abcdef', completion: 'xyz' }]);
    const e = await caught(cut.train());
    expect(e.code).toBe('DATASET_ERROR');
    expect(e.message).toMatch(/no row has a token to train on/);
  });
});

describe('a loss that becomes non-finite', () => {
  it('stops with NON_FINITE_LOSS naming the step and rows; the last good checkpoint stays', async () => {
    const out = path.join(root, 'nan');
    // Dataset row 0 is cut before its completion, trains nothing and is dropped: example i is dataset row i + 1.
    const rows = [{ prompt: 'p'.repeat(60), completion: 'x' }, ...ROWS];
    const t = await sft({ outputDir: out, maxSteps: 5, learningRate: 1e30, saveStrategy: 'steps', saveSteps: 1, maxGradNorm: 0 }, rows);
    const e = await caught(t.train());
    await t.release();
    expect(e.code).toBe('NON_FINITE_LOSS');
    const step = (e.details as { step: number }).step;
    expect(step).toBeGreaterThan(1);
    const bad = t.seen.at(-1)!.map((i) => i + 1);
    expect((e.details as { rows: number[] }).rows).toEqual(bad);
    expect(e.message).toContain(`at step ${step} (micro-batch 0, dataset rows ${bad.join(', ')})`);
    expect(e.message).toMatch(/Loss became (NaN|-?Infinity)/);
    // Checkpoints up to the last good step, complete; nothing for the failed step.
    const cks = readdirSync(out).filter((f) => f.startsWith('checkpoint-')).sort();
    expect(cks.at(-1)).toBe(`checkpoint-${step - 1}`);
    expect(existsSync(path.join(out, `checkpoint-${step - 1}`, 'optimizer.safetensors'))).toBe(true);
    expect(JSON.parse(fileBytes(out, `checkpoint-${step - 1}`, 'trainer_state.json').toString()).global_step).toBe(step - 1);

    // That folder now holds another run's checkpoints: a fresh run is refused, a resume is not.
    const fresh = await sft({ outputDir: out, maxSteps: 1 });
    const refused = await caught(fresh.train());
    expect(refused.code).toBe('CHECKPOINT_ERROR');
    expect(refused.message).toMatch(/already holds checkpoints of another run \(checkpoint-1/);
    expect(refused.message).toMatch(/resumeFromCheckpoint: true/);
    await fresh.release();
  });
});

describe('a disk failure mid-checkpoint', () => {
  it('leaves the previous checkpoint intact', async () => {
    const out = path.join(root, 'disk');
    const t = await sft({ outputDir: out, maxSteps: 3, saveStrategy: 'steps', saveSteps: 1 });
    const save = t.model.savePretrained.bind(t.model);
    let calls = 0;
    let firstAdapter: Buffer | undefined;
    t.model.savePretrained = async (dir: string): Promise<void> => {
      await save(dir);
      if (++calls === 1) firstAdapter = fileBytes(dir, 'adapter_model.safetensors');
      // The second checkpoint's adapter is on disk when the disk "fills up".
      else throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    const e = await caught(t.train());
    await t.release();
    expect(e.code).toBe('CHECKPOINT_ERROR');
    expect(e.message).toMatch(/checkpoint-2 failed: ENOSPC.*Earlier checkpoints are intact/);
    expect(readdirSync(out).filter((f) => f.includes('checkpoint')).sort()).toEqual(['checkpoint-1']); // no temp folder left
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'trainable_params.safetensors', 'optimizer.safetensors', 'scheduler.json', 'rng_state.json', 'trainer_state.json', 'training_args.json']) {
      expect(existsSync(path.join(out, 'checkpoint-1', f)), f).toBe(true);
    }
    expect(fileBytes(out, 'checkpoint-1', 'adapter_model.safetensors').equals(firstAdapter!)).toBe(true);
    // …and the run resumes from it.
    const again = await sft({ outputDir: out, maxSteps: 3, saveStrategy: 'steps', saveSteps: 1 });
    expect((await again.train({ resumeFromCheckpoint: true })).globalStep).toBe(3);
    await again.release();
  });
});

describe('epochs, maxSteps and the shuffle', () => {
  it('maxSteps wins over numTrainEpochs; every epoch is a new permutation, the same on every run', async () => {
    // 8 rows, 2 per step: 4 steps per epoch. numTrainEpochs 1 but maxSteps 10 → 10 steps over 3 epochs.
    let n = 0;
    const run = async (over: Record<string, unknown>): Promise<RecordingSFTTrainer> => {
      const t = await sft({ outputDir: path.join(root, `epochs-${n++}`), numTrainEpochs: 1, maxSteps: 10, learningRate: 0, ...over });
      await t.train();
      await t.release();
      return t;
    };
    const a = await run({});
    expect(a.state.globalStep).toBe(10);
    expect(a.seen.length).toBe(10);
    const epochs = [a.seen.slice(0, 4).flat(), a.seen.slice(4, 8).flat()];
    for (const e of epochs) expect([...e].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(epochs[0]).not.toEqual(epochs[1]);
    expect(epochs[0]).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(a.state.epoch).toBe(2.5);
    const b = await run({});
    expect(b.seen).toEqual(a.seen);
    const c = await run({ dataSeed: 7 });
    expect(c.seen).not.toEqual(a.seen);
    // numTrainEpochs 5 with maxSteps 2 stops after 2 steps.
    const d = await run({ numTrainEpochs: 5, maxSteps: 2 });
    expect(d.state.globalStep).toBe(2);
    expect(d.seen).toEqual(a.seen.slice(0, 2));
  });
});
