// generate(): greedy decoding with the KV cache equals the argmax of `forward` over the finished sequence
// (a causal model's logits at position t see only tokens ≤ t, so one forward checks every step), left-padded
// batches give each prompt's own tokens, EOS stops a row (pad after it), sampling is seeded, and a
// PeftModel generates with its adapters. Plus the HF logits warpers on hand-computed cases.
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import { AutoModelForCausalLM, type CausalLM } from '../../src/models/index.js';
import { generate } from '../../src/models/generate.js';
import { argmax, multinomial, softmax, warpLogits } from '../../src/models/sampling.js';
import { parseGenerationConfig } from '../../src/models/generation-config.js';
import { LoraConfig, getPeftModel } from '../../src/peft/index.js';

const PROMPT = [1, 17, 42, 99, 7];
const SHORT = [1, 64, 3];
const NEW = 12;

const models = new Map<string, Promise<CausalLM>>();
function load(name: string): Promise<CausalLM> {
  let m = models.get(name);
  if (!m) {
    m = AutoModelForCausalLM.fromPretrained(`test/fixtures/models/${name}`);
    models.set(name, m);
  }
  return m;
}

afterAll(async () => {
  for (const m of models.values()) await (await m).release();
});

/** Argmax of the logits at every position that predicts a generated token. */
function forwardArgmax(logits: Tensor<'float32'>, V: number, from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = from; t < to; t++) out.push(argmax(logits.data.subarray(t * V, (t + 1) * V)));
  return out;
}

describe('generate: greedy equals the argmax of forward', () => {
  for (const name of ['llama-gqa', 'qwen3']) {
    it(name, async () => {
      const model = await load(name);
      const [seq] = await model.generate([PROMPT], { maxNewTokens: NEW, eosTokenId: null });
      expect(seq!.slice(0, PROMPT.length)).toEqual(PROMPT);
      expect(seq).toHaveLength(PROMPT.length + NEW);
      const { logits } = await model.forward({ inputIds: [seq!] });
      const want = forwardArgmax(logits, model.config.vocabSize, PROMPT.length - 1, seq!.length - 1);
      expect(seq!.slice(PROMPT.length)).toEqual(want);
      // Not a degenerate repetition: the check above would be weak if every step gave the same token.
      expect(new Set(want).size).toBeGreaterThan(2);
    });
  }

  it('a left-padded batch gives each prompt its own tokens', async () => {
    const model = await load('llama-gqa');
    const pad = 0;
    const padded = [...Array<number>(PROMPT.length - SHORT.length).fill(pad), ...SHORT];
    const mask = [PROMPT.map(() => 1), padded.map((_, i) => (i < PROMPT.length - SHORT.length ? 0 : 1))];
    const batch = await model.generate([PROMPT, padded], { maxNewTokens: NEW, eosTokenId: null, attentionMask: mask });
    const [alone0] = await model.generate([PROMPT], { maxNewTokens: NEW, eosTokenId: null });
    const [alone1] = await model.generate([SHORT], { maxNewTokens: NEW, eosTokenId: null });
    expect(batch[0]).toEqual(alone0);
    expect(batch[1]!.slice(0, padded.length)).toEqual(padded);
    expect(batch[1]!.slice(padded.length)).toEqual(alone1!.slice(SHORT.length));
    // transformers infers the same mask from the pad token when none is given (pad 0 is not the EOS id 2).
    const inferred = await model.generate([PROMPT, padded], { maxNewTokens: NEW, eosTokenId: null, padTokenId: pad });
    expect(inferred).toEqual(batch);
  });
});

describe('generate: stopping', () => {
  it('stops a row at EOS and pads it afterwards; stops when every row is done', async () => {
    const model = await load('llama-gqa');
    const [free] = await model.generate([PROMPT], { maxNewTokens: NEW, eosTokenId: null });
    const gen = free!.slice(PROMPT.length);
    // An EOS the greedy run first emits at step k > 0.
    const k = gen.findIndex((t, i) => i > 0 && gen.indexOf(t) === i);
    const eos = gen[k]!;
    const [one] = await model.generate([PROMPT], { maxNewTokens: NEW, eosTokenId: eos });
    expect(one).toEqual(free!.slice(0, PROMPT.length + k + 1)); // ends with the EOS token itself

    // A batch: the row that emits an EOS first is padded while the other goes on; both stop at the last EOS.
    const padded = [0, 0, ...SHORT];
    const mask = [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]];
    const prompts = [PROMPT, padded];
    const freeBatch = await model.generate(prompts, { maxNewTokens: NEW, eosTokenId: null, attentionMask: mask });
    const eosSet = [eos, freeBatch[1]![PROMPT.length + 2]!];
    const stopped = await model.generate(prompts, { maxNewTokens: NEW, eosTokenId: eosSet, padTokenId: 5, attentionMask: mask });
    const stops = freeBatch.map((r) => r.slice(PROMPT.length).findIndex((t) => eosSet.includes(t)));
    const len = stops.includes(-1) ? NEW : Math.max(...stops) + 1;
    const want = freeBatch.map((r, i) => [...r.slice(0, PROMPT.length + stops[i]! + 1), ...Array<number>(len - stops[i]! - 1).fill(5)]);
    expect(stops.every((x) => x >= 0)).toBe(true);
    expect(stopped).toEqual(want);
  });

  it('maxNewTokens 0 and 1', async () => {
    const model = await load('llama-gqa');
    expect(await model.generate([PROMPT], { maxNewTokens: 0 })).toEqual([PROMPT]);
    const [free] = await model.generate([PROMPT], { maxNewTokens: NEW, eosTokenId: null });
    expect(await model.generate(PROMPT, { maxNewTokens: 1, eosTokenId: null })).toEqual([free!.slice(0, PROMPT.length + 1)]);
  });

  it('rejects bad options, naming them', async () => {
    const model = await load('llama-gqa');
    await expect(model.generate([PROMPT], { maxNewTokes: 3 } as never)).rejects.toThrow(/unknown option 'maxNewTokes' \(did you mean 'maxNewTokens'\?\)/);
    await expect(model.generate([PROMPT], { doSample: true, temperature: 0 })).rejects.toThrow(/'temperature' must be a strictly positive/);
    await expect(model.generate([PROMPT], { topP: 1.5 })).rejects.toThrow(/'topP' must be a number in \(0, 1\]/);
    await expect(model.generate([[1, 500]])).rejects.toThrow(/inputIds\[0\]\[1\] = 500 is outside the vocabulary/);
    await expect(model.generate([[1, 2]], { attentionMask: [[0, 0]] })).rejects.toThrow(/row 0 of attentionMask has no real token/);
  });
});

describe('generate: sampling', () => {
  it('is determined by the seed; top-k 1 and a tiny top-p are greedy', async () => {
    const model = await load('llama-gqa');
    const opts = { maxNewTokens: NEW, eosTokenId: null, doSample: true, temperature: 1.5, topK: 0 };
    const a = await model.generate([PROMPT], { ...opts, seed: 1 });
    const b = await model.generate([PROMPT], { ...opts, seed: 1 });
    const c = await model.generate([PROMPT], { ...opts, seed: 2 });
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    const greedy = await model.generate([PROMPT], { maxNewTokens: NEW, eosTokenId: null });
    expect(await model.generate([PROMPT], { ...opts, topK: 1, seed: 3 })).toEqual(greedy);
    expect(await model.generate([PROMPT], { ...opts, topP: 1e-6, seed: 4 })).toEqual(greedy);
  });
});

describe('generate: PeftModel', () => {
  it('applies the adapters (greedy equals the argmax of peft.forward)', async () => {
    const base = await load('llama-gqa');
    const peft = getPeftModel(base, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'] }), { seed: 0 });
    peft.sessionOptions = { worker: false }; // its forward: no worker start-up (seconds under vitest)
    // A non-zero B (PEFT initialises it to zero, which would make the adapter a no-op).
    const rng = new Rng(7);
    for (const [k, t] of peft.adapterWeights) if (k.includes('lora_B')) for (let i = 0; i < t.size; i++) t.data[i] = rng.normal(0, 0.5);
    try {
      const [seq] = await generate(peft, [PROMPT], { maxNewTokens: NEW, eosTokenId: null });
      const { logits } = await peft.forward({ inputIds: [seq!] });
      expect(seq!.slice(PROMPT.length)).toEqual(forwardArgmax(logits, base.config.vocabSize, PROMPT.length - 1, seq!.length - 1));
      const [plain] = await base.generate([PROMPT], { maxNewTokens: NEW, eosTokenId: null });
      expect(seq).not.toEqual(plain);
    } finally {
      await peft.release();
    }
  });
});

describe('sampling warpers (transformers logits_process.py)', () => {
  const row = [1, 2, 3, 4];
  it('temperature, top-k (ties kept), top-p (keeps the most likely)', () => {
    expect(Array.from(warpLogits(row, { temperature: 2, topK: 0 }))).toEqual([0.5, 1, 1.5, 2]);
    expect(Array.from(warpLogits(row, { topK: 2 }))).toEqual([-Infinity, -Infinity, 3, 4]);
    expect(Array.from(warpLogits([1, 3, 3, 2], { topK: 1 }))).toEqual([-Infinity, 3, 3, -Infinity]);
    // softmax([1,2,3,4]) = [.032, .087, .237, .644]; ascending cumsum .032, .119, .356, 1.
    expect(Array.from(warpLogits(row, { topK: 0, topP: 0.8 }))).toEqual([-Infinity, -Infinity, 3, 4]); // drop cum ≤ .2
    expect(Array.from(warpLogits(row, { topK: 0, topP: 0.9 }))).toEqual([-Infinity, 2, 3, 4]); // drop cum ≤ .1
    expect(Array.from(warpLogits(row, { topK: 0, topP: 0.01 }))).toEqual([-Infinity, -Infinity, -Infinity, 4]);
    // Order: temperature before top-p changes which tokens survive (flatter distribution keeps more).
    // softmax([.1, .2, .3, .4]) = [.214, .236, .261, .289]: nothing has cum ≤ .2 any more.
    expect(Array.from(warpLogits(row, { temperature: 10, topK: 0, topP: 0.8 }))).toEqual(row.map((v) => v / 10));
    // transformers' default top_k = 50 applies when sampling without topK.
    const wide = Array.from({ length: 60 }, (_, i) => i);
    expect(warpLogits(wide, {}).filter((v) => v !== -Infinity)).toHaveLength(50);
  });

  it('multinomial draws follow the probabilities', () => {
    const p = softmax([0, 1, 2]);
    const rng = new Rng(0);
    const counts = [0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[multinomial(p, rng)]!++;
    counts.forEach((c, i) => expect(Math.abs(c / n - p[i]!)).toBeLessThan(0.015));
  });
});

describe('generation_config.json', () => {
  it('maps the fields generate honours and lists the ones it cannot', () => {
    const d = parseGenerationConfig({
      bos_token_id: 1,
      eos_token_id: [2, 7],
      pad_token_id: 0,
      do_sample: true,
      temperature: 0.6,
      top_p: 0.9,
      top_k: 20,
      repetition_penalty: 1.0,
      num_beams: 4,
      transformers_version: '4.51.3',
    });
    expect(d.options).toEqual({ eosTokenId: [2, 7], padTokenId: 0, doSample: true, temperature: 0.6, topP: 0.9, topK: 20 });
    expect(d.ignored).toEqual({ num_beams: 4 });
    expect(() => parseGenerationConfig({ temperature: 'hot' }, 'x/generation_config.json')).toThrow(/x\/generation_config.json: 'temperature' must be a number/);
  });
});
