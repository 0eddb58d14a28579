// ORPOTrainer end to end: evaluate() on the golden pairs gives the golden loss and metrics (both NLL
// variants), and a short LoRA run on the embedded preference rule raises the mean log-odds and lowers the
// chosen NLL.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { AutoModelForCausalLM } from '../../src/models/index.js';
import { LoraConfig, PeftModel } from '../../src/peft/index.js';
import type { SessionOptions } from '../../src/runtime/index.js';
import { ORPOConfig, ORPOTrainer } from '../../src/train/index.js';
import { ADAPTER_DIR, FAST, MODEL_DIR, charTokenizer, loadPrefGolden } from './dpo-helpers.js';

const TOL = 1e-4;
const tmp = mkdtempSync(path.join(tmpdir(), 'orpo-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const quiet = { reportTo: 'none', disableTqdm: true, saveStrategy: 'no', gradientCheckpointing: false } as const;

/** Compiles without ORT's graph optimisations (faster to build in tests). */
class FastORPOTrainer extends ORPOTrainer {
  protected override sessionOptions(): SessionOptions {
    return { ...super.sessionOptions(), ...FAST };
  }
}

describe('ORPOTrainer', () => {
  for (const overPrompt of [false, true]) {
    it(`evaluate() on the golden pairs (orpoNllOverPrompt: ${overPrompt})`, async () => {
      const gold = await loadPrefGolden('orpo');
      const rows = gold.meta.prompts.map((p, i) => ({ prompt_ids: p, chosen_ids: gold.meta.chosen[i], rejected_ids: gold.meta.rejected[i] }));
      const base = await AutoModelForCausalLM.fromPretrained(MODEL_DIR);
      const policy = await PeftModel.fromPretrained(base, ADAPTER_DIR, { isTrainable: true });
      const args = new ORPOConfig({ ...quiet, outputDir: tmp, perDeviceEvalBatchSize: 2, padToMultipleOf: 1, orpoNllOverPrompt: overPrompt });
      const trainer = new FastORPOTrainer({ model: policy, args, trainDataset: rows, evalDataset: rows });
      const m = await trainer.evaluate();
      const wantLoss = (overPrompt ? gold.meta.loss_with_prompt : gold.meta.loss) as number;
      expect(Math.abs(m.eval_loss! - wantLoss)).toBeLessThan(TOL);
      let worst = 0;
      for (const [k, v] of Object.entries((overPrompt ? gold.meta.metrics_with_prompt : gold.meta.metrics) as Record<string, number>)) {
        worst = Math.max(worst, Math.abs(m[`eval_${k}`]! - v));
        expect(Math.abs(m[`eval_${k}`]! - v), k).toBeLessThan(TOL);
      }
      console.log(`ORPOTrainer (nll over prompt: ${overPrompt}): eval_loss err ${Math.abs(m.eval_loss! - wantLoss).toExponential(2)}, metrics max err ${worst.toExponential(2)}`);
      await trainer.release();
    });
  }

  it('LoRA on the embedded preference rule: mean log-odds up, chosen NLL down', async () => {
    const all = readFileSync('assets/data/preferences.jsonl', 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const rows = all.slice(0, 16);
    const warn = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const model = await AutoModelForCausalLM.fromPretrained(MODEL_DIR);
    const trainer = new FastORPOTrainer({
      model,
      args: new ORPOConfig({
        ...quiet,
        outputDir: path.join(tmp, 'run'),
        perDeviceTrainBatchSize: 8,
        perDeviceEvalBatchSize: 8,
        maxSteps: 12,
        learningRate: 1e-2,
        lrSchedulerType: 'constant',
        loggingSteps: 4,
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
    console.log(
      `ORPO training (16 pairs, 12 steps, ${seconds.toFixed(1)} s): eval log_odds_chosen ${before.eval_log_odds_chosen!.toFixed(4)} → ${after.eval_log_odds_chosen!.toFixed(4)}, ` +
        `nll_loss ${before.eval_nll_loss!.toFixed(4)} → ${after.eval_nll_loss!.toFixed(4)}, log_odds_ratio ${before.eval_log_odds_ratio!.toFixed(4)} → ${after.eval_log_odds_ratio!.toFixed(4)}, ` +
        `rewards/accuracies ${before['eval_rewards/accuracies']} → ${after['eval_rewards/accuracies']}`,
    );
    expect(after.eval_log_odds_chosen).toBeGreaterThan(before.eval_log_odds_chosen! + 0.01);
    expect(after.eval_log_odds_ratio).toBeGreaterThan(before.eval_log_odds_ratio!);
    expect(after.eval_nll_loss).toBeLessThan(before.eval_nll_loss! - 0.3);
    await trainer.release();
  }, 120_000);
});
