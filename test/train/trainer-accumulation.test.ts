// Gradient accumulation is normalised by the label tokens of the whole accumulated batch (transformers
// PR #34191, REFERENCE.md): 4 micro-batches of 1 row give the same loss, grad_norm and update as one batch of
// the same 4 rows. The rows have very different lengths, so averaging per-micro-batch means would not match
// (checked below against an independent per-row forward). AdamW's epsilon is set large so its update is
// proportional to the gradient (with the default 1e-8 step 1 moves every weight by ±lr, which would hide a
// gradient-scale error).
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { RecordingSFTTrainer, TEXTS, charTokenizer, gqa, lora, maxAbsDiff, quietArgs, tmp, trainedValues } from './sft-helpers.js';

const dir = tmp('accum');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Four rows of 3 … 39 characters (+ BOS and EOS).
const ROWS = [TEXTS[1]!, TEXTS[2]!, TEXTS[4]!, TEXTS[3]!].map((text) => ({ text }));

async function oneStep(batch: number, accum: number, over: Record<string, unknown> = {}): Promise<{ values: Float32Array; before: Float32Array; loss: number; gradNorm: number }> {
  const tok = charTokenizer();
  const base = await gqa();
  const args = quietArgs({
    outputDir: dir,
    maxSteps: 1,
    perDeviceTrainBatchSize: batch,
    gradientAccumulationSteps: accum,
    learningRate: 0.5,
    adamEpsilon: 1,
    maxGradNorm: 0,
    lrSchedulerType: 'constant',
    ...over,
  });
  const trainer = new RecordingSFTTrainer({ model: base, peftConfig: lora(), args, trainDataset: ROWS, tokenizer: tok });
  const before = trainedValues(trainer.model);
  expect(base.gradientCheckpointing).toBe(over.gradientCheckpointing === true);
  const res = await trainer.train();
  const gradNorm = trainer.state.logHistory[0]!.grad_norm as number;
  await trainer.release();
  return { values: trainedValues(trainer.model), before, loss: res.trainingLoss, gradNorm };
}

describe('gradient accumulation', () => {
  let big: Awaited<ReturnType<typeof oneStep>>;
  it('4 × batch 1 equals batch 4 (loss, grad_norm, update within 1e-5)', async () => {
    big = await oneStep(4, 1);
    const acc = await oneStep(1, 4);
    expect(maxAbsDiff(big.before, acc.before)).toBe(0); // same LoRA init (seed 42)

    // Independent reference for the loss: per-row cross-entropy from the base model's logits (LoRA B = 0,
    // so the adapted model equals the base at step 1), computed here in float64.
    const tok = charTokenizer();
    const base = await gqa();
    const ids = ROWS.map((r) => tok.encode(r.text + tok.eosToken!));
    const T = Math.max(...ids.map((r) => r.length));
    const padded = ids.map((r) => [...r, ...new Array<number>(T - r.length).fill(0)]);
    const { logits } = await base.forward({ inputIds: padded, attentionMask: padded.map((r, b) => r.map((_, t) => (t < ids[b]!.length ? 1 : 0))) });
    await base.release();
    const V = logits.dims[2]!;
    const lg = logits.data;
    let sum = 0;
    let count = 0;
    let naive = 0;
    ids.forEach((row, b) => {
      let rowSum = 0;
      for (let t = 0; t + 1 < row.length; t++) {
        const off = (b * T + t) * V;
        let mx = -Infinity;
        for (let v = 0; v < V; v++) mx = Math.max(mx, lg[off + v]!);
        let z = 0;
        for (let v = 0; v < V; v++) z += Math.exp(lg[off + v]! - mx);
        rowSum += mx + Math.log(z) - lg[off + row[t + 1]!]!;
      }
      sum += rowSum;
      count += row.length - 1;
      naive += rowSum / (row.length - 1) / ids.length;
    });
    const want = sum / count;
    expect(Math.abs(naive - want)).toBeGreaterThan(1e-3); // the rows are uneven enough to tell the two apart
    expect(Math.abs(big.loss - want)).toBeLessThan(1e-5);
    expect(Math.abs(acc.loss - want)).toBeLessThan(1e-5);

    const update = big.values.map((v, i) => v - big.before[i]!);
    const accUpdate = acc.values.map((v, i) => v - acc.before[i]!);
    const maxUpdate = Math.max(...update.map(Math.abs));
    const diff = maxAbsDiff(update, accUpdate);
    console.log(
      `accumulation: loss ${big.loss.toFixed(6)} vs ${acc.loss.toFixed(6)} (want ${want.toFixed(6)}, naive mean ${naive.toFixed(6)}); ` +
        `grad_norm ${big.gradNorm} vs ${acc.gradNorm}; max |Δupdate| ${diff.toExponential(2)} (max |update| ${maxUpdate.toExponential(2)})`,
    );
    expect(maxUpdate).toBeGreaterThan(1e-3); // the step moved the adapter
    expect(Math.abs(big.gradNorm - acc.gradNorm)).toBeLessThan(1e-5 * Math.max(1, big.gradNorm));
    expect(diff).toBeLessThan(1e-5);
  });

  it('gradient checkpointing (SFTConfig default, on the PeftModel base) gives the same step', async () => {
    const ckpt = await oneStep(4, 1, { gradientCheckpointing: true });
    const diff = maxAbsDiff(ckpt.values, big.values);
    console.log(`gradient checkpointing: max |Δ| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-6);
  });
});
