// Step graphs compute the training attention in causal query blocks that skip the masked keys
// (src/nn/attention.ts, formulation `attentionBlock`). The blocks must not change the numbers: loss and
// gradients equal those of the one-block attention (≤ 1e-6) on batches where the mask is more than causal:
// left and right padding (a left pad's query row masks every key), packed documents, checkpointing, and a
// T that the block size does not divide (the block rounds down to a divisor of T); and the attention core as
// kernels/attention-block.ts and, for blocks past the first, kernels/attention-tiles.ts (the defaults: their
// own backward) equal the op-by-op one.
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/index.js';
import { AutoModelForCausalLM, StepProgram, causalLmObjective, makeFeeds, type BatchFeeds, type TrainableModel } from '../../src/models/index.js';
import { STEP_ATTENTION_BLOCK } from '../../src/models/step-graph.js';
import { getPeftModel, LoraConfig } from '../../src/peft/index.js';
import { expectSameStep } from './same-step.js';

const GQA = 'test/fixtures/models/llama-gqa';
const FAST = { worker: false, graphOptimizationLevel: 'disabled' } as const;
const programs: StepProgram[] = [];
afterAll(async () => {
  for (const p of programs) await p.release();
});

const T = 20;
/** Row 0 full, row 1 left-padded by 7, row 2 right-padded after 11 tokens (vocab 128). */
function batch(): { inputIds: number[][]; attentionMask: number[][]; labels: number[][] } {
  const ids = [0, 1, 2].map((b) => Array.from({ length: T }, (_, i) => (b * 37 + i * 11 + 5) % 128));
  const mask = [Array<number>(T).fill(1), Array.from({ length: T }, (_, i) => (i < 7 ? 0 : 1)), Array.from({ length: T }, (_, i) => (i < 11 ? 1 : 0))];
  const labels = ids.map((r, b) => r.map((t, i) => (mask[b]![i] ? t : -100)));
  return { inputIds: ids, attentionMask: mask, labels };
}

interface Run {
  loss: number;
  grads: Float32Array;
  softmaxes: number;
}

async function run(model: TrainableModel, feeds: BatchFeeds, attentionBlock: number, packed = false, attentionCore: 'function' | 'primitives' = 'primitives', attentionKeyTiles = true): Promise<Run> {
  const opts = { B: 3, T, objective: causalLmObjective, withGrad: true, training: false, packed, formulation: { attentionBlock, attentionCore, attentionKeyTiles } };
  const prog = await StepProgram.compile(model, opts, FAST);
  programs.push(prog);
  const res = await prog.run({ ...feeds, extras: { loss_scale: Tensor.fromNumbers([0.05], []) } }, model.trainableValues(prog.step.layout));
  const softmaxes = prog.opCounts.get('Softmax') ?? 0;
  return { loss: res.loss, grads: res.grads!, softmaxes };
}


async function lora(): Promise<{ peft: TrainableModel; base: Awaited<ReturnType<typeof AutoModelForCausalLM.fromPretrained>> }> {
  const base = await AutoModelForCausalLM.fromPretrained(GQA);
  const peft = getPeftModel(base, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: 'all-linear', initLoraWeights: false }), { seed: 5 });
  return { peft, base };
}

describe('causal attention blocks', () => {
  it('are on in step graphs by default, one block per 256 query rows', () => {
    expect(STEP_ATTENTION_BLOCK).toBe(256);
  });

  it('leave loss and LoRA gradients unchanged with left and right padding (blocks of 4 and 6 → 5)', async () => {
    const { peft } = await lora();
    const { feeds } = makeFeeds(batch());
    const one = await run(peft, feeds, 0);
    const four = await run(peft, feeds, 4);
    const six = await run(peft, feeds, 6); // 20 is not a multiple of 6: blocks of 5
    expect(one.softmaxes).toBe(2); // 2 layers, one block each
    expect(four.softmaxes).toBe(2 * 5);
    expect(six.softmaxes).toBe(2 * 4);
    expectSameStep(one, four);
    expectSameStep(one, six);
    // kernels/attention-block.ts (the default core) in one block and in blocks of 4
    expectSameStep(one, await run(peft, feeds, 0, false, 'function'));
    expectSameStep(one, await run(peft, feeds, 4, false, 'function')); // key prefixes in tiles (kernels/attention-tiles.ts)
    expectSameStep(one, await run(peft, feeds, 4, false, 'function', false)); // one [M, E] tensor per block
  });

  it('leave them unchanged for packed documents and with gradient checkpointing', async () => {
    const { peft, base } = await lora();
    const { feeds } = makeFeeds(batch());
    // three documents per row (boundaries at 6 and 13), positions restarting in each
    const doc = (i: number): number => (i < 6 ? 0 : i < 13 ? 1 : 2);
    const starts = [0, 6, 13];
    feeds.documentIds = BigInt64Array.from({ length: 3 * T }, (_, k) => BigInt(doc(k % T)));
    feeds.positionIds = BigInt64Array.from({ length: 3 * T }, (_, k) => BigInt((k % T) - starts[doc(k % T)]!));
    feeds.attentionMask = new BigInt64Array(3 * T).fill(1n);
    const one = await run(peft, feeds, 0, true);
    const blocks = await run(peft, feeds, 4, true);
    expectSameStep(one, blocks);
    base.gradientCheckpointingEnable();
    const ckpt = await run(peft, feeds, 4, true);
    expect(ckpt.softmaxes).toBe(2 * 2 * 5); // each block's forward is recomputed in the backward
    expectSameStep(one, ckpt);
    expectSameStep(one, await run(peft, feeds, 4, true, 'function'));
    expectSameStep(one, await run(peft, feeds, 4, true, 'function', false));
  });
});
