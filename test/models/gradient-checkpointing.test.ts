// model.gradientCheckpointingEnable(): the step graph recomputes each decoder block in the backward instead
// of keeping its activations (src/autodiff/checkpoint.ts). It must not change the numbers: loss and the flat
// gradient vector equal those of the same graph without checkpointing (≤ 1e-6), for full fine-tuning, LoRA
// with dropout (the seeded masks recompute exactly) and LoRA over an NF4 base (QLoRA). Its session runs
// without ORT's pre-packing (stepSessionOptions), unless the caller asks for it.
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/index.js';
import { readSafetensors } from '../../src/io/index.js';
import { AutoModelForCausalLM, StepProgram, causalLmObjective, makeFeeds, stepSessionOptions, type CausalLM, type TrainableModel } from '../../src/models/index.js';
import { getPeftModel, LoraConfig, prepareModelForKbitTraining } from '../../src/peft/index.js';
import { BitsAndBytesConfig } from '../../src/quant/index.js';

const GQA = 'test/fixtures/models/llama-gqa';
const FAST = { worker: false, graphOptimizationLevel: 'disabled' } as const;
const programs: StepProgram[] = [];
afterAll(async () => {
  for (const p of programs) await p.release();
});

interface Run {
  loss: number;
  grads: Float32Array;
  nodes: number;
}

/** One training step's loss and flat gradients of `model` on the fixed golden batch. */
async function step(model: TrainableModel, training: boolean): Promise<Run> {
  const gold = await readSafetensors('test/fixtures/golden/forward-llama-gqa.safetensors');
  const { feeds, B, T } = makeFeeds({ inputIds: gold.get('input_ids')!, attentionMask: gold.get('attention_mask')!, labels: gold.get('labels')! });
  const prog = await StepProgram.compile(model, { B, T, objective: causalLmObjective, withGrad: true, training }, FAST);
  programs.push(prog);
  const res = await prog.run({ ...feeds, extras: { loss_scale: Tensor.fromNumbers([1 / 11], []) }, stepSeed: 1234 }, model.trainableValues(prog.step.layout));
  return { loss: res.loss, grads: res.grads!, nodes: prog.nodeCount };
}

/** The same step without and with checkpointing (toggled on the base model). */
async function compare(base: CausalLM, model: TrainableModel, training: boolean): Promise<void> {
  base.gradientCheckpointingDisable();
  const plain = await step(model, training);
  base.gradientCheckpointingEnable();
  expect(model.gradientCheckpointing).toBe(true);
  const ckpt = await step(model, training);
  // checkpointing really happened: the recomputed forward of each block is in the graph
  expect(ckpt.nodes).toBeGreaterThan(plain.nodes);
  expect(ckpt.grads.length).toBe(plain.grads.length);
  let maxDiff = 0;
  let norm = 0;
  for (let i = 0; i < plain.grads.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(ckpt.grads[i]! - plain.grads[i]!));
    norm += plain.grads[i]! ** 2;
  }
  console.log(`${plain.grads.length} grads, ${plain.nodes} → ${ckpt.nodes} nodes, |Δloss| ${Math.abs(ckpt.loss - plain.loss).toExponential(2)}, max |Δgrad| ${maxDiff.toExponential(2)}`);
  expect(Math.sqrt(norm)).toBeGreaterThan(1e-3);
  expect(Math.abs(ckpt.loss - plain.loss)).toBeLessThan(1e-6);
  expect(maxDiff).toBeLessThan(1e-6);
}

describe('gradient checkpointing leaves loss and gradients unchanged', () => {
  it('full fine-tuning (every parameter trainable)', async () => {
    const m = await AutoModelForCausalLM.fromPretrained(GQA);
    expect(m.trainableParams().length).toBe(2 * 9 + 3); // embed, 2 × (2 norms + 7 linears), norm, lm_head
    await compare(m, m, false);
  });

  it('LoRA (all-linear, r 4, dropout 0.1, training mode)', async () => {
    const m = await AutoModelForCausalLM.fromPretrained(GQA);
    const peft = getPeftModel(m, new LoraConfig({ r: 4, loraAlpha: 8, loraDropout: 0.1, targetModules: 'all-linear', initLoraWeights: false }), { seed: 3 });
    await compare(m, peft, true);
  });

  it('QLoRA (NF4 + double quant base, prepareModelForKbitTraining)', async () => {
    const m = prepareModelForKbitTraining(
      await AutoModelForCausalLM.fromPretrained(GQA, { quantizationConfig: new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true }) }),
    );
    const peft = getPeftModel(m, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: 'all-linear', initLoraWeights: false }), { seed: 4 });
    await compare(m, peft, false);
  });
});

describe('session options of a checkpointed step', () => {
  it('turn ORT pre-packing off (three packed copies per weight otherwise); the caller can turn it back on', async () => {
    const m = await AutoModelForCausalLM.fromPretrained(GQA);
    const opts = { B: 1, T: 8, objective: causalLmObjective, withGrad: true };
    expect(stepSessionOptions(m, opts).sessionConfig).toBeUndefined();
    m.gradientCheckpointingEnable();
    expect(stepSessionOptions(m, opts).sessionConfig).toEqual({ 'session.disable_prepacking': '1' });
    expect(stepSessionOptions(m, { ...opts, withGrad: false }).sessionConfig).toBeUndefined(); // evaluation: no recompute
    expect(stepSessionOptions(m, opts, { sessionConfig: { 'session.disable_prepacking': '0', x: 'y' } }).sessionConfig).toEqual({ 'session.disable_prepacking': '0', x: 'y' });
    expect(stepSessionOptions(m, opts, { threads: 1 })).toMatchObject({ threads: 1, enableMemPattern: false });
  });
});
