// On the CPU a step graph takes the frozen 4-bit weights (packed codes and absmax state) and the float16
// weights of a 4-bit model as inputs the host lends for each run (src/models/lent-weights.ts), so ORT holds
// no second copy of them. Checked here through a session worker: the step's loss and gradients equal those
// of the same step with the weights as initializers; the model's weights are byte-identical after runs;
// while a step runs, reading them is a clear error, and afterwards it works again; a run refused for a bad
// feed leaves them usable, and only arrays a dead worker kept are reported lost; a float32 model lends
// nothing (ORT pre-packs its weights) unless checkpointed, where its steps run without pre-packing.
// The gradients can be written into a buffer the caller lends (the trainer reuses one every step), and the
// trainable values lent instead of copied (the trainer's mode).
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/index.js';
import { AutoModelForCausalLM, StepProgram, causalLmObjective, makeFeeds, runsOnCpu, type CausalLM } from '../../src/models/index.js';
import { AUTO_ORDER, quickCheckExecutionProvider } from '../../src/runtime/index.js';
import { getPeftModel, LoraConfig } from '../../src/peft/index.js';
import { BitsAndBytesConfig } from '../../src/quant/index.js';
import { Graph } from '../../src/graph/index.js';
import { LentWeights, type LendableArray } from '../../src/models/lent-weights.js';

const GQA = 'test/fixtures/models/llama-gqa';
const T = 12;
const programs: StepProgram[] = [];
afterAll(async () => {
  for (const p of programs) await p.release();
});

const feeds = makeFeeds({
  inputIds: [Array.from({ length: T }, (_, i) => (i * 7 + 3) % 128), Array.from({ length: T }, (_, i) => (i * 5 + 1) % 128)],
  attentionMask: [Array<number>(T).fill(1), Array.from({ length: T }, (_, i) => (i < 9 ? 1 : 0))],
}).feeds;
const extras = { loss_scale: Tensor.fromNumbers([0.05], []) };

function snapshot(m: CausalLM): Map<string, number[]> {
  return new Map([...m.stateDict()].map(([k, t]) => [k, Array.from(t.data as ArrayLike<number>)]));
}

describe('lent weights', () => {
  it('a QLoRA step lends its 4-bit and float16 weights, with the numbers of initializers and the weights intact', async () => {
    const base = await AutoModelForCausalLM.fromPretrained(GQA, {
      quantizationConfig: new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true }),
    });
    const peft = getPeftModel(base, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: 'all-linear', initLoraWeights: false }), { seed: 2 });
    const opts = { B: 2, T, objective: causalLmObjective, withGrad: true, training: false };
    const lending = await StepProgram.compile(peft, opts); // CPU, in a worker: the default
    const held = await StepProgram.compile(peft, { ...opts, lendWeights: false });
    programs.push(lending, held);
    const names = lending.step.lent?.names ?? [];
    expect(held.step.lent).toBeUndefined();
    expect(names).toContain('model.layers.0.self_attn.q_proj.weight.packed');
    expect(names).toContain('model.layers.1.mlp.down_proj.weight.absmax_code');
    expect(names).toContain('model.layers.1.mlp.down_proj.weight.nested_absmax');
    expect(names).toContain('model.embed_tokens.weight');
    expect(names).toContain('lm_head.weight');
    const before = snapshot(base);
    const params = peft.trainableValues(lending.step.layout);
    const running = lending.run({ ...feeds, extras }, params);
    expect(() => base.stateDict()).toThrow(/in use by a running training step/);
    const a = await running;
    const b = await held.run({ ...feeds, extras }, params);
    const again = await lending.run({ ...feeds, extras }, params);
    expect(a.loss).toBeCloseTo(b.loss, 6);
    expect(again.loss).toBe(a.loss);
    let maxDiff = 0;
    for (let i = 0; i < a.grads!.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.grads![i]! - b.grads![i]!));
    expect(maxDiff).toBeLessThan(1e-6);
    expect(Array.from(again.grads!)).toEqual(Array.from(a.grads!));
    expect(snapshot(base)).toEqual(before);
  });

  it('writes the gradients into a buffer the caller lends, with or without lent weights', async () => {
    const base = await AutoModelForCausalLM.fromPretrained(GQA, { quantizationConfig: new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4' }) });
    const peft = getPeftModel(base, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: 'all-linear', initLoraWeights: false }), { seed: 3 });
    const opts = { B: 2, T, objective: causalLmObjective, withGrad: true, training: false };
    for (const lendWeights of [true, false]) {
      const prog = await StepProgram.compile(peft, { ...opts, lendWeights });
      programs.push(prog);
      const params = peft.trainableValues(prog.step.layout);
      const fresh = await prog.run({ ...feeds, extras }, params);
      const sent = new Float32Array(params.length).fill(Number.NaN);
      const a = await prog.run({ ...feeds, extras }, params, { gradsInto: sent });
      // The worker borrowed the buffer and wrote ORT's output into it: the array sent is detached.
      expect(sent.length).toBe(0);
      expect(Array.from(a.grads!)).toEqual(Array.from(fresh.grads!));
      const again = await prog.run({ ...feeds, extras }, params, { gradsInto: a.grads! });
      expect(Array.from(again.grads!)).toEqual(Array.from(fresh.grads!));
      await expect(prog.run({ ...feeds, extras }, params, { gradsInto: new Float32Array(3) })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining(`expected ${params.length} values`),
      });
    }
  });

  it('lends the trainable values instead of copying them, and hands back the vector to use', async () => {
    const base = await AutoModelForCausalLM.fromPretrained(GQA, { quantizationConfig: new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4' }) });
    const peft = getPeftModel(base, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: 'all-linear', initLoraWeights: false }), { seed: 4 });
    const prog = await StepProgram.compile(peft, { B: 2, T, objective: causalLmObjective, withGrad: true, training: false });
    programs.push(prog);
    const values = peft.trainableValues(prog.step.layout);
    const copied = await prog.run({ ...feeds, extras }, values);
    let params: Float32Array = Float32Array.from(values);
    const sent = params;
    const lent = await prog.run({ ...feeds, extras }, params, { lendParams: (p) => (params = p) });
    // The worker borrowed the vector (detached here) and handed it back whole, values intact.
    expect(sent.length).toBe(0);
    expect(Array.from(params)).toEqual(Array.from(values));
    expect(lent.loss).toBe(copied.loss);
    expect(Array.from(lent.grads!)).toEqual(Array.from(copied.grads!));
    // After an ORT failure too (a bad token id), before the run settles.
    const bad = { ...feeds, inputIds: feeds.inputIds.map(() => 10_000n) };
    const before = params;
    await expect(prog.run({ ...bad, extras }, params, { lendParams: (p) => (params = p) })).rejects.toMatchObject({ code: 'RUNTIME_ERROR' });
    expect(params === before).toBe(false); // the one sent is detached
    expect(Array.from(params)).toEqual(Array.from(values));
    // A vector that views part of a bigger buffer is copied once: the caller's stays as it was.
    const wide = new Float32Array(values.length + 2);
    wide.set(values, 1);
    const view = wide.subarray(1, values.length + 1);
    let got: Float32Array | undefined;
    const viewed = await prog.run({ ...feeds, extras }, view, { lendParams: (p) => (got = p) });
    expect(viewed.loss).toBe(copied.loss);
    expect(wide.length).toBe(values.length + 2);
    expect(Array.from(got!)).toEqual(Array.from(values));
  });

  it("lends on device 'cpu', and on 'auto' where no GPU provider is installed (the trainer's default)", async () => {
    expect(runsOnCpu(undefined)).toBe(true);
    expect(runsOnCpu('cpu')).toBe(true);
    expect(runsOnCpu('cuda')).toBe(false);
    expect(runsOnCpu('webgpu')).toBe(false);
    const onlyCpu = AUTO_ORDER.every((d) => d === 'cpu' || !quickCheckExecutionProvider(d).possible);
    expect(runsOnCpu('auto')).toBe(onlyCpu);
    const base = await AutoModelForCausalLM.fromPretrained(GQA, { quantizationConfig: new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4' }) });
    const peft = getPeftModel(base, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: 'all-linear' }), { seed: 2 });
    const prog = await StepProgram.compile(peft, { B: 2, T, objective: causalLmObjective, withGrad: true, training: false }, { device: 'auto' });
    programs.push(prog);
    expect(prog.step.lent !== undefined).toBe(onlyCpu);
  });

  it('a run refused before it starts (a bad feed) leaves the weights usable', async () => {
    const base = await AutoModelForCausalLM.fromPretrained(GQA, { quantizationConfig: new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4' }) });
    const peft = getPeftModel(base, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: 'all-linear' }), { seed: 2 });
    const prog = await StepProgram.compile(peft, { B: 2, T, objective: causalLmObjective, withGrad: true, training: false });
    programs.push(prog);
    const before = snapshot(base);
    const bad = { ...feeds, inputIds: feeds.inputIds.slice(0, T), extras };
    await expect(prog.run(bad, peft.trainableValues(prog.step.layout))).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' });
    expect(snapshot(base)).toEqual(before);
    await expect(prog.run({ ...feeds, extras }, peft.trainableValues(prog.step.layout))).resolves.toHaveProperty('loss');
  });

  it('arrays a dead worker kept are reported lost; arrays that never left go back', () => {
    const lent = new LentWeights();
    const g = new Graph('g');
    const events: string[] = [];
    const lendable = (name: string): LendableArray => {
      let a: Float32Array = new Float32Array(4).fill(1);
      let lost = false;
      return {
        dtype: 'float32',
        dims: [4],
        take: () => {
          if (lost) throw new Error(`${name} is lost`);
          return a;
        },
        give: (b) => {
          a = b as Float32Array;
          events.push(`${name} back`);
        },
        lose: (why) => {
          lost = true;
          events.push(`${name} lost: ${why.message}`);
        },
      };
    };
    lent.input(g, 'kept', lendable('kept'));
    lent.input(g, 'moved', lendable('moved'));
    const f = lent.feeds();
    expect(() => lent.feeds()).toThrow(/already running/);
    structuredClone(f['moved']!.data, { transfer: [f['moved']!.data.buffer as ArrayBuffer] }); // detaches it, as a transfer to a worker does
    lent.settle(new Error('worker exited'));
    expect(events).toEqual(['kept back', 'moved lost: worker exited']);
    expect(() => lent.feeds()).toThrow(/moved is lost/); // the run is over; the lost weight is refused by its owner
    expect(events.slice(2)).toEqual(['kept back']); // and what was taken before it goes back
  });

  it('a float32 model lends nothing, unless checkpointed (no pre-packing there): then its frozen weights too', async () => {
    const base = await AutoModelForCausalLM.fromPretrained(GQA);
    const peft = getPeftModel(base, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: 'all-linear', initLoraWeights: false }), { seed: 2 });
    const opts = { B: 2, T, objective: causalLmObjective, withGrad: true, training: false };
    const packed = await StepProgram.compile(peft, opts);
    programs.push(packed);
    expect(packed.step.lent).toBeUndefined();
    base.gradientCheckpointingEnable();
    const lending = await StepProgram.compile(peft, opts);
    const held = await StepProgram.compile(peft, { ...opts, lendWeights: false });
    programs.push(lending, held);
    const names = lending.step.lent?.names ?? [];
    expect(names).toContain('model.layers.0.self_attn.q_proj.weight');
    expect(names).toContain('lm_head.weight');
    expect(names.some((n) => n.includes('lora'))).toBe(false); // trainable values are parameters, not lent
    const before = snapshot(base);
    const params = peft.trainableValues(lending.step.layout);
    const a = await lending.run({ ...feeds, extras }, params);
    const b = await held.run({ ...feeds, extras }, params);
    expect(a.loss).toBeCloseTo(b.loss, 6);
    let maxDiff = 0;
    for (let i = 0; i < a.grads!.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.grads![i]! - b.grads![i]!));
    expect(maxDiff).toBeLessThan(1e-6);
    expect(snapshot(base)).toEqual(before);
  });
});
