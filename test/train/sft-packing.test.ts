// Packing as TRL's best-fit decreasing (`packing_strategy="bfd"`): TRL's own example, positions that
// restart per document, and the property that makes packing correct — a packed batch's loss and gradients
// (summed, loss_scale 1) equal the sums over its documents run separately, on every parameter of the tiny
// Llama (full fine-tuning, so attention, RoPE and the MLPs all contribute). Without the document ids the same
// packed rows give other gradients, so the comparison can fail. Then one packed SFTTrainer step.
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { causalLmObjective, StepProgram } from '../../src/models/index.js';
import { collate, packBfd, type TokenizedExample } from '../../src/train/index.js';
import { FAST, RecordingSFTTrainer, TEXTS, charTokenizer, gqa, lora, maxAbsDiff, quietArgs, tmp } from './sft-helpers.js';

const dir = tmp('packing');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ex = (ids: number[], labels: number[] = ids): TokenizedExample => ({ inputIds: ids, labels });

describe('packBfd', () => {
  it("reproduces TRL's example", () => {
    const packed = packBfd([ex([1, 2, 3, 4, 5]), ex([6, 7]), ex([8, 9, 10]), ex([11])], 4);
    expect(packed.map((p) => p.inputIds)).toEqual([[1, 2, 3, 4], [8, 9, 10, 11], [6, 7]]);
    expect(packed.map((p) => p.positionIds)).toEqual([[0, 1, 2, 3], [0, 1, 2, 0], [0, 1]]);
    expect(packed.map((p) => p.documentIds)).toEqual([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0]]);
    expect(packed.map((p) => p.labels)).toEqual([[1, 2, 3, 4], [8, 9, 10, 11], [6, 7]]);
    expect(packed.map((p) => p.sourceRows)).toEqual([[0], [2, 3], [1]]); // which dataset rows each packed row holds
  });

  it('keeps labels with their tokens and equal lengths in dataset order', () => {
    const packed = packBfd([ex([1, 2], [-100, 2]), ex([3, 4]), ex([5, 6, 7])], 5);
    expect(packed.map((p) => p.inputIds)).toEqual([[5, 6, 7, 1, 2], [3, 4]]);
    expect(packed[0]!.labels).toEqual([5, 6, 7, -100, 2]);
  });
});

describe('a packed batch equals its documents run separately', () => {
  it('loss and gradients on every parameter', async () => {
    const model = await gqa(); // full fine-tuning: every parameter is trainable
    const L = 8;
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 120) + 4;
    const docs = [5, 3, 7, 2, 4, 6].map((n) => Array.from({ length: n }, rnd)).map((ids, i) => (i === 2 ? ex(ids, ids.map((x, t) => (t < 3 ? -100 : x))) : ex(ids)));
    const packed = packBfd(docs, L);
    expect(packed.length).toBe(4); // 7+, 6+2, 5+3, 4 → bins of 8
    const p = collate(packed, { padTokenId: 0, B: packed.length });
    const u = collate(docs, { padTokenId: 0, padToMultipleOf: L, B: docs.length });
    expect(p.packed).toBe(true);
    expect(p.T).toBe(L);
    expect(u.T).toBe(L);
    expect(p.numLabelTokens).toBe(u.numLabelTokens);
    // Positions restart at 0 in every document of a packed row.
    const pos = Array.from(p.feeds.positionIds, Number);
    packed.forEach((row, b) => expect(pos.slice(b * L, b * L + row.inputIds.length)).toEqual(row.positionIds));

    const one = { loss_scale: Tensor.fromNumbers([1], []) };
    const opts = { objective: causalLmObjective, withGrad: true, T: L };
    const packedProg = await StepProgram.compile(model, { ...opts, B: p.B, packed: true }, { device: 'cpu', ...FAST });
    const plainProg = await StepProgram.compile(model, { ...opts, B: u.B }, { device: 'cpu', ...FAST });
    const params = model.trainableValues(packedProg.step.layout);
    const a = await packedProg.run({ ...p.feeds, extras: one, stepSeed: 0 }, params);
    const b = await plainProg.run({ ...u.feeds, extras: one, stepSeed: 0 }, params);
    // The same packed rows with one document id everywhere: tokens attend across documents.
    const leaky = await packedProg.run({ ...p.feeds, documentIds: p.feeds.documentIds!.map((d) => (d < 0n ? d : 0n)), extras: one, stepSeed: 0 }, params);
    await packedProg.release();
    await plainProg.release();

    const scale = Math.max(...Array.from(b.grads!, Math.abs));
    const diff = maxAbsDiff(a.grads!, b.grads!);
    const leak = maxAbsDiff(leaky.grads!, b.grads!);
    console.log(`packing: loss ${a.loss} vs ${b.loss}; max |Δgrad| ${diff.toExponential(2)} (max |grad| ${scale.toExponential(2)}); without document ids ${leak.toExponential(2)}`);
    expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-4 * Math.abs(b.loss));
    expect(diff).toBeLessThan(1e-5 * scale);
    expect(leak).toBeGreaterThan(1e-2 * scale);
  });

  it('an SFTTrainer step on packed rows', async () => {
    const tok = charTokenizer();
    const args = quietArgs({ outputDir: dir, maxSteps: 1, packing: true, maxLength: 48, perDeviceTrainBatchSize: 4, learningRate: 1e-2 });
    const trainer = new RecordingSFTTrainer({ model: await gqa(), peftConfig: lora(), args, trainDataset: TEXTS.map((text) => ({ text })), tokenizer: tok });
    const res = await trainer.train();
    expect(Number.isFinite(res.trainingLoss)).toBe(true);
    const rows = trainer['trainExamples'] as TokenizedExample[];
    // 8 rows (4 … 40 tokens, 173 in all) pack into 4 rows of at most 48 tokens.
    expect(rows.length).toBe(4);
    expect(rows.every((r) => r.inputIds.length <= 48 && r.documentIds !== undefined)).toBe(true);
    expect(rows.reduce((s, r) => s + r.inputIds.length, 0)).toBe(TEXTS.reduce((s, t) => s + t.length + 2, 0));
    expect(trainer.state.logHistory[0]!.num_tokens).toBe(TEXTS.reduce((s, t) => s + t.length + 2, 0));
    await trainer.release();
  });
});
