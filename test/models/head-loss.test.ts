// The causal-LM head + loss of a training step through a frozen head can be kernels/lm-head-loss.ts
// (token chunks whose dh comes from the forward; always so under gradient checkpointing, formulation
// `lmHeadLoss: 'chunked'` without) instead of the [B, T, V] logits differentiated op by op. The numbers must
// not move: loss, token count, argmax hits and the LoRA gradients equal the plain head's (≤ 1e-6) on a
// padded batch, in one chunk and in several, with and without checkpointing.
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/index.js';
import { AutoModelForCausalLM, StepProgram, causalLmObjective, makeFeeds, type BatchFeeds, type TrainableModel } from '../../src/models/index.js';
import type { NnFormulation } from '../../src/nn/formulation.js';
import { getPeftModel, LoraConfig } from '../../src/peft/index.js';
import { expectSameStep } from './same-step.js';

const GQA = 'test/fixtures/models/llama-gqa';
const FAST = { worker: false, graphOptimizationLevel: 'disabled' } as const;
const T = 20;
const V = 128;
const programs: StepProgram[] = [];
afterAll(async () => {
  for (const p of programs) await p.release();
});

function batch(): { inputIds: number[][]; attentionMask: number[][]; labels: number[][] } {
  const ids = [0, 1, 2].map((b) => Array.from({ length: T }, (_, i) => (b * 29 + i * 13 + 3) % V));
  const mask = [Array<number>(T).fill(1), Array.from({ length: T }, (_, i) => (i < 5 ? 0 : 1)), Array.from({ length: T }, (_, i) => (i < 12 ? 1 : 0))];
  return { inputIds: ids, attentionMask: mask, labels: ids.map((r, b) => r.map((t, i) => (mask[b]![i] ? t : -100))) };
}

interface Run {
  loss: number;
  grads: Float32Array;
  metrics: Record<string, number>;
  matMuls: number;
  headKernel: boolean;
}

async function run(model: TrainableModel, feeds: BatchFeeds, formulation: Partial<NnFormulation>): Promise<Run> {
  const prog = await StepProgram.compile(model, { B: 3, T, objective: causalLmObjective, withGrad: true, training: false, formulation }, FAST);
  programs.push(prog);
  const res = await prog.run({ ...feeds, extras: { loss_scale: Tensor.fromNumbers([0.03], []) } }, model.trainableValues(prog.step.layout));
  const metrics = Object.fromEntries(Object.entries(res.metrics).map(([k, t]) => [k, (t.data as Float32Array)[0]!]));
  return { loss: res.loss, grads: res.grads!, metrics, matMuls: prog.opCounts.get('MatMul') ?? 0, headKernel: [...prog.opCounts.keys()].some((k) => k.startsWith('LmHeadLoss_')) };
}

function expectSame(a: Run, b: Run): void {
  expectSameStep(a, b);
  expect(a.metrics).toEqual(b.metrics);
}

describe('chunked head + loss in step graphs', () => {
  it('equals the plain head: loss, metrics and LoRA gradients, in one chunk and in 4', async () => {
    const base = await AutoModelForCausalLM.fromPretrained(GQA);
    const peft = getPeftModel(base, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: 'all-linear', initLoraWeights: false }), { seed: 3 });
    const { feeds } = makeFeeds(batch());
    const plain = await run(peft, feeds, { lmHeadLoss: 'plain' });
    const one = await run(peft, feeds, { lmHeadLoss: 'chunked' });
    const four = await run(peft, feeds, { lmHeadLoss: 'chunked', lmHeadChunkBytes: 4 * V * 16 }); // 60 rows: 16, 16, 16, 12
    expect(plain.metrics['num_tokens']).toBe(19 + 15 + 11); // targets are the labels shifted by one
    // The head's forward and dlogits GEMMs leave the top-level graph for the kernel's function.
    expect(one.matMuls).toBe(plain.matMuls - 2);
    expect([plain.headKernel, one.headKernel, four.headKernel]).toEqual([false, true, true]);
    expectSame(plain, one);
    expectSame(plain, four);
  });

  it('is what checkpointed steps use, with the same numbers', async () => {
    const base = await AutoModelForCausalLM.fromPretrained(GQA);
    const peft = getPeftModel(base, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: 'all-linear', initLoraWeights: false }), { seed: 3 });
    const { feeds } = makeFeeds(batch());
    const plain = await run(peft, feeds, { lmHeadLoss: 'plain' });
    base.gradientCheckpointingEnable();
    const ckpt = await run(peft, feeds, { lmHeadLoss: 'plain' }); // checkpointing overrides 'plain'
    expect(ckpt.headKernel).toBe(true);
    expectSame(plain, ckpt);
  });
});
