// A 4-bit model's other weights stored in 16 bits (src/models/float-weights.ts): read as a Map they are the
// exact float32 values of the 16-bit ones; writes store float32; stateDict and numParameters see the stored
// tensors; full fine-tuning of such a model trains them (a trained 16-bit entry becomes float32, values
// unrounded); generation and a tied head (kernels/half-linear.ts, the embedding's rows cast after the Gather)
// give what the float32 model holding the same values gives.
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/index.js';
import { AutoModelForCausalLM, CausalLM, StepProgram, causalLmObjective, makeFeeds } from '../../src/models/index.js';
import { FloatWeights } from '../../src/models/float-weights.js';
import { BitsAndBytesConfig } from '../../src/quant/index.js';

const FAST = { worker: false, graphOptimizationLevel: 'disabled' } as const;
const opened: CausalLM[] = [];
const programs: StepProgram[] = [];
afterAll(async () => {
  for (const m of opened) await m.release();
  for (const p of programs) await p.release();
});

async function load4bit(dir: string): Promise<CausalLM> {
  const m = await AutoModelForCausalLM.fromPretrained(dir, { quantizationConfig: new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4' }) });
  m.sessionOptions = FAST;
  opened.push(m);
  return m;
}

/** The same model with every 16-bit weight widened to float32 (the reference the 16-bit graphs must equal). */
function widened(m: CausalLM): CausalLM {
  const r = new CausalLM(m.config, new Map(m.dense), m.quantized, m.nameOrPath);
  r.sessionOptions = FAST;
  opened.push(r);
  return r;
}

function maxAbs(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

describe('FloatWeights', () => {
  it('reads 16-bit entries as exact float32 copies, stores writes as float32, keeps insertion order', () => {
    const half = new Tensor('float32', [3], Float32Array.from([0.1, -2.5, 1e-3])).to('float16');
    const b: Tensor<'float32'> = Tensor.fromNumbers([1, 2], [2]);
    const w = new FloatWeights([
      ['a', half],
      ['b', b],
    ]);
    expect([...w.keys()]).toEqual(['a', 'b']);
    expect(w.stored('a')).toBe(half);
    expect(w.get('a')!.dtype).toBe('float32');
    expect(Array.from(w.get('a')!.data)).toEqual(Array.from(half.toFloat32()));
    expect(w.byteLength).toBe(3 * 2 + 2 * 4);
    w.set('a', Tensor.fromNumbers([7, 8, 9], [3]));
    expect(w.stored('a')!.dtype).toBe('float32');
    expect([...new Map(w).keys()]).toEqual(['a', 'b']);
    expect(w.delete('b')).toBe(true);
    expect(w.size).toBe(1);
  });
});

describe('a 4-bit model with float16 embeddings, norms and head', () => {
  it('stateDict holds them as stored; numParameters counts elements', async () => {
    const m = await load4bit('test/fixtures/models/llama-gqa');
    const sd = m.stateDict();
    for (const k of ['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight']) expect(sd.get(k)!.dtype, k).toBe('float16');
    expect(m.numParameters()).toBe(widened(m).numParameters());
  });

  it('generates what the float32 model holding the same values generates (tied embeddings: the head is the table)', async () => {
    for (const dir of ['test/fixtures/models/llama-gqa', 'test/fixtures/models/llama-tied']) {
      const m = await load4bit(dir);
      const r = widened(m);
      const prompt = [[1, 17, 42, 99, 7]];
      expect(await m.generate(prompt, { maxNewTokens: 6 })).toEqual(await r.generate(prompt, { maxNewTokens: 6 }));
      const [a, b] = await Promise.all([m.forward({ inputIds: prompt }), r.forward({ inputIds: prompt })]);
      expect(maxAbs(a.logits.data, b.logits.data), dir).toBeLessThan(1e-5);
    }
  });

  it('full fine-tuning trains them: same loss and gradients as the widened model; trained values come back unrounded', async () => {
    const m = await load4bit('test/fixtures/models/llama-gqa');
    const r = widened(m);
    const { feeds, B, T } = makeFeeds({ inputIds: [[1, 7, 33, 12, 49, 3]], labels: [[1, 7, 33, 12, 49, 3]] });
    const run = async (model: CausalLM): Promise<{ loss: number; grads: Float32Array; prog: StepProgram }> => {
      const prog = await StepProgram.compile(model, { B, T, objective: causalLmObjective, withGrad: true }, FAST);
      programs.push(prog);
      const res = await prog.run({ ...feeds, extras: { loss_scale: Tensor.fromNumbers([1 / 5], []) } }, model.trainableValues(prog.step.layout));
      return { loss: res.loss, grads: res.grads!, prog };
    };
    const [a, b] = [await run(m), await run(r)];
    expect(a.prog.step.layout.specs.map((s) => s.name)).toContain('lm_head.weight');
    expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-6);
    expect(maxAbs(a.grads, b.grads)).toBeLessThan(1e-6);
    const flat = m.trainableValues(a.prog.step.layout).map((v, i) => v - 1e-4 * a.grads[i]!);
    m.loadTrainableValues(a.prog.step.layout, flat);
    const head = m.dense.stored('lm_head.weight')!;
    expect(head.dtype).toBe('float32');
    expect(Array.from(head.data)).toEqual(Array.from(a.prog.step.layout.view(flat, 'lm_head.weight')));
  });
});
