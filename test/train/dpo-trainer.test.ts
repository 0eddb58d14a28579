// DPOTrainer end to end: every way of getting the reference gives the golden loss and metrics through
// evaluate(); bad reference models fail; and a short LoRA run on the embedded preference rule raises
// rewards/accuracies to ≥ 0.9.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { TsFinetuneError } from '../../src/core/index.js';
import { AutoModelForCausalLM } from '../../src/models/index.js';
import { LoraConfig, PeftModel, prepareModelForKbitTraining } from '../../src/peft/index.js';
import { BitsAndBytesConfig } from '../../src/quant/index.js';
import { DPOConfig, DPOTrainer } from '../../src/train/index.js';
import type { SessionOptions } from '../../src/runtime/index.js';
import { ADAPTER_DIR, FAST, MODEL_DIR, charTokenizer, f32, loadPrefGolden, maxAbs } from './dpo-helpers.js';

/** Compiles without ORT's graph optimisations (faster to build for these one-off evaluations). */
class FastDPOTrainer extends DPOTrainer {
  protected override sessionOptions(): SessionOptions {
    return { ...super.sessionOptions(), ...FAST };
  }
}

const TOL = 1e-4;
const tmp = mkdtempSync(path.join(tmpdir(), 'dpo-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const quiet = { reportTo: 'none', disableTqdm: true, saveStrategy: 'no', gradientCheckpointing: false } as const;

describe('DPOTrainer reference modes vs the golden values (evaluate on the two golden pairs)', async () => {
  const gold = await loadPrefGolden('dpo');
  const rows = gold.meta.prompts.map((p, i) => ({ prompt_ids: p, chosen_ids: gold.meta.chosen[i], rejected_ids: gold.meta.rejected[i] }));
  const wantMetrics = gold.meta.metrics as Record<string, number>;
  const wantLoss = (gold.meta.losses as Record<string, number>).sigmoid!;

  async function evalWith(mode: 'adapters' | 'refModel' | 'precompute'): Promise<{ m: Record<string, number>; trainer: DPOTrainer }> {
    const base = await AutoModelForCausalLM.fromPretrained(MODEL_DIR);
    const policy = await PeftModel.fromPretrained(base, ADAPTER_DIR, { isTrainable: true });
    const args = new DPOConfig({ ...quiet, outputDir: tmp, perDeviceEvalBatchSize: 2, padToMultipleOf: 1, precomputeRefLogProbs: mode === 'precompute', precomputeRefBatchSize: 2 });
    const refModel = mode === 'refModel' ? await AutoModelForCausalLM.fromPretrained(MODEL_DIR) : null;
    const trainer = new FastDPOTrainer({ model: policy, refModel, args, trainDataset: rows, evalDataset: rows });
    return { m: await trainer.evaluate(), trainer };
  }

  for (const mode of ['adapters', 'refModel', 'precompute'] as const) {
    it(mode, async () => {
      const { m, trainer } = await evalWith(mode);
      expect(trainer.referenceMode).toBe({ adapters: 'adapters-disabled', refModel: 'ref-model', precompute: 'precomputed' }[mode]);
      expect(Math.abs(m.eval_loss! - wantLoss)).toBeLessThan(TOL);
      let worst = 0;
      for (const [k, v] of Object.entries(wantMetrics)) {
        worst = Math.max(worst, Math.abs(m[`eval_${k}`]! - v));
        expect(Math.abs(m[`eval_${k}`]! - v), k).toBeLessThan(TOL);
      }
      if (mode === 'precompute') {
        const cols = await trainer.refLogpsColumns('train');
        expect(maxAbs(cols.ref_chosen_logps, f32(gold.tensors.get('reference_chosen_logps')))).toBeLessThan(TOL);
        expect(maxAbs(cols.ref_rejected_logps, f32(gold.tensors.get('reference_rejected_logps')))).toBeLessThan(TOL);
      }
      console.log(`DPOTrainer ${mode}: eval_loss err ${Math.abs(m.eval_loss! - wantLoss).toExponential(2)}, metrics max err ${worst.toExponential(2)}`);
      await trainer.release();
    });
  }

  it('full fine-tuning without refModel: the reference is the initial weights (rewards start at 0)', async () => {
    const base = await AutoModelForCausalLM.fromPretrained(MODEL_DIR);
    const trainer = new FastDPOTrainer({ model: base, args: new DPOConfig({ ...quiet, outputDir: tmp, perDeviceEvalBatchSize: 2, padToMultipleOf: 1 }), trainDataset: rows, evalDataset: rows });
    expect(trainer.referenceMode).toBe('initial-weights');
    const m = await trainer.evaluate();
    expect(Math.abs(m.eval_loss! - Math.LN2)).toBeLessThan(1e-6);
    expect(Math.abs(m['eval_rewards/margins']!)).toBeLessThan(1e-6);
    await trainer.release();
  });

  it('rejects a refModel with another vocabulary, or the policy itself as refModel', async () => {
    const base = await AutoModelForCausalLM.fromPretrained(MODEL_DIR);
    const other = { ...base.asFrozen(), config: { ...base.config, vocabSize: 256 } };
    const e = (() => {
      try {
        new DPOTrainer({ model: base, refModel: other, args: new DPOConfig({ ...quiet, outputDir: tmp }), trainDataset: rows });
      } catch (x) {
        return x as TsFinetuneError;
      }
      throw new Error('did not throw');
    })();
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/vocabulary \(256 tokens\) differs from the model's \(128\)/);
    expect(() => new DPOTrainer({ model: base, refModel: base, args: new DPOConfig({ ...quiet, outputDir: tmp }), trainDataset: rows })).toThrow(/same object/);
  });
});

describe('DPOTrainer with QLoRA', () => {
  it('4-bit NF4 base + LoRA + paged 8-bit AdamW: the loss falls, margins grow', async () => {
    const gold = await loadPrefGolden('dpo');
    const rows = gold.meta.prompts.map((p, i) => ({ prompt_ids: p, chosen_ids: gold.meta.chosen[i], rejected_ids: gold.meta.rejected[i] }));
    const bnb = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true });
    const model = prepareModelForKbitTraining(await AutoModelForCausalLM.fromPretrained(MODEL_DIR, { quantizationConfig: bnb }));
    model.gradientCheckpointingDisable(); // see docs/dpo-orpo.md "Known limits"
    const trainer = new FastDPOTrainer({
      model,
      args: new DPOConfig({ ...quiet, outputDir: tmp, maxSteps: 3, perDeviceTrainBatchSize: 2, learningRate: 1e-2, padToMultipleOf: 1, loggingSteps: 1, optim: 'paged_adamw_8bit' }),
      trainDataset: rows,
      peftConfig: new LoraConfig({ r: 4, targetModules: 'all-linear' }),
    });
    await trainer.train();
    const h = trainer.state.logHistory.filter((e) => typeof e.loss === 'number');
    expect(h.length).toBe(3);
    expect(h[2]!.loss as number).toBeLessThan((h[0]!.loss as number) - 0.05);
    expect(h[2]!['rewards/margins'] as number).toBeGreaterThan(0.1);
    await trainer.release();
  }, 60_000);
});

describe('DPOTrainer checkpoints', () => {
  it('precomputed reference + resume from a checkpoint = the uninterrupted run; identical pairs are warned', async () => {
    const all = readFileSync('assets/data/preferences.jsonl', 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const rows = [...all.slice(0, 7), { ...all[7]!, rejected: all[7]!.chosen }];
    const writes: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (writes.push(String(s)), true));
    // Optimizer steps actually taken (a resumed run takes only the remaining ones).
    const stepSpy = vi.spyOn(FastDPOTrainer.prototype as unknown as { optimizerStep: () => Promise<unknown> }, 'optimizerStep');
    const run = async (dir: string, resume?: string): Promise<Float32Array> => {
      const model = await AutoModelForCausalLM.fromPretrained(MODEL_DIR);
      const trainer = new FastDPOTrainer({
        model,
        args: new DPOConfig({ ...quiet, outputDir: dir, saveStrategy: 'steps', saveSteps: 2, maxSteps: 4, perDeviceTrainBatchSize: 4, learningRate: 1e-2, maxLength: 64, maxPromptLength: 32, precomputeRefLogProbs: true, seed: 3 }),
        trainDataset: rows,
        tokenizer: charTokenizer(),
        peftConfig: new LoraConfig({ r: 4, targetModules: ['q_proj', 'v_proj'] }),
      });
      await trainer.train(resume ? { resumeFromCheckpoint: resume } : {});
      const peft = trainer.model as PeftModel;
      const flat = Float32Array.from([...peft.adapterStateDict().values()].flatMap((t) => [...t.data]));
      await trainer.release();
      return flat;
    };
    const straight = await run(path.join(tmp, 'straight'));
    expect(stepSpy).toHaveBeenCalledTimes(4);
    const resumed = await run(path.join(tmp, 'resumed'), path.join(tmp, 'straight', 'checkpoint-2'));
    expect(stepSpy).toHaveBeenCalledTimes(6);
    stepSpy.mockRestore();
    spy.mockRestore();
    expect(maxAbs(resumed, straight)).toBeLessThan(1e-6);
    expect(writes.join('')).toMatch(/1 rows have identical chosen and rejected \(rows 7\)/);
  }, 60_000);
});

describe('DPOTrainer training', () => {
  it('LoRA on the embedded preference rule: rewards/accuracies from chance level to ≥ 0.9', async () => {
    const all = readFileSync('assets/data/preferences.jsonl', 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const rows = all.slice(0, 16);
    const warn = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const model = await AutoModelForCausalLM.fromPretrained(MODEL_DIR);
    const trainer = new FastDPOTrainer({
      model,
      refModel: null,
      args: new DPOConfig({
        ...quiet,
        outputDir: path.join(tmp, 'run'),
        perDeviceTrainBatchSize: 8,
        perDeviceEvalBatchSize: 8,
        maxSteps: 12,
        learningRate: 1e-2,
        lrSchedulerType: 'constant',
        loggingSteps: 2,
        maxLength: 64,
        maxPromptLength: 32,
        seed: 7,
      }),
      trainDataset: rows,
      evalDataset: rows,
      tokenizer: charTokenizer(),
      peftConfig: new LoraConfig({ r: 8, loraAlpha: 16, targetModules: 'all-linear' }),
    });
    const before = await trainer.evaluate();
    const t0 = Date.now();
    await trainer.train();
    const seconds = (Date.now() - t0) / 1000;
    const after = await trainer.evaluate();
    warn.mockRestore();
    const logged = trainer.state.logHistory.filter((e) => typeof e['rewards/accuracies'] === 'number').map((e) => e['rewards/accuracies'] as number);
    console.log(
      `DPO training (16 pairs, 12 steps, ${seconds.toFixed(1)} s): eval rewards/accuracies ${before['eval_rewards/accuracies']} → ${after['eval_rewards/accuracies']}, ` +
        `margins ${before['eval_rewards/margins']!.toExponential(2)} → ${after['eval_rewards/margins']!.toFixed(4)}, eval_loss ${before.eval_loss!.toFixed(4)} → ${after.eval_loss!.toFixed(4)}; logged train accuracies ${logged.join(', ')}`,
    );
    expect(Math.abs(before['eval_rewards/margins']!)).toBeLessThan(1e-5); // policy = reference at the start
    expect(after['eval_rewards/accuracies']).toBeGreaterThanOrEqual(0.9);
    expect(after.eval_loss).toBeLessThan(before.eval_loss! - 0.05);
    expect(logged[logged.length - 1]).toBeGreaterThanOrEqual(0.9);
    await trainer.release();
  }, 120_000);
});
