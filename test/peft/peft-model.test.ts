import { afterAll, describe, expect, it, vi } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { isTsFinetuneError, Tensor } from '../../src/core/index.js';
import { readSafetensors, saveSafetensors } from '../../src/io/index.js';
import { getPeftModel, LoraConfig, PeftModel } from '../../src/peft/index.js';
import { baseLogits, FAST, loadLoraGolden, loadTiny, maxAbsDiff } from './helpers.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'peft-model-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function rejectsWith(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(isTsFinetuneError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    expect((e as Error).message).toMatch(re);
    return;
  }
  throw new Error('expected a rejection');
}

describe('getPeftModel', () => {
  it('prints trainable parameters in PEFT format and starts as the identity (B = 0)', async () => {
    const model = await loadTiny('llama-mha');
    const all = [...model.dense.values()].reduce((s, t) => s + t.size, 0);
    const peft = getPeftModel(model, new LoraConfig({ taskType: 'CAUSAL_LM' }));
    peft.sessionOptions = FAST;
    // q_proj and v_proj of 2 layers, r = 8: 4 × (8·64 + 64·8)
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const line = peft.printTrainableParameters();
    log.mockRestore();
    expect(line).toBe(`trainable params: 4,096 || all params: ${(all + 4096).toLocaleString('en-US')} || trainable%: ${((100 * 4096) / (all + 4096)).toFixed(4)}`);
    expect(peft.trainableParams().map((p) => p.name)[0]).toBe('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    const A = peft.adapterWeights.get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')!;
    const bound = 1 / Math.sqrt(64);
    expect(A.dims).toEqual([8, 64]);
    expect(Math.max(...Array.from(A.data, Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...Array.from(A.data, Math.abs))).toBeGreaterThan(0.9 * bound);
    const batch = { inputIds: [[1, 17, 42, 99]], attentionMask: [[1, 1, 1, 1]] };
    expect(maxAbsDiff((await peft.forward(batch)).logits.data, await baseLogits(model, batch))).toBe(0);
    // same seed, same init; gaussian init has std 1/r
    const again = getPeftModel(model, new LoraConfig({ taskType: 'CAUSAL_LM' }));
    expect(Array.from(again.adapterWeights.get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')!.data)).toEqual(Array.from(A.data));
    const g = getPeftModel(model, new LoraConfig({ r: 4, initLoraWeights: 'gaussian', targetModules: 'all-linear' }), { seed: 1 });
    const vals = [...g.adapterWeights].filter(([k]) => k.includes('lora_A')).flatMap(([, t]) => Array.from(t.data));
    const std = Math.sqrt(vals.reduce((s, v) => s + v * v, 0) / vals.length);
    expect(Math.abs(std - 0.25)).toBeLessThan(0.01);
    await peft.release();
  });

  it('disableAdapter gives the base model (one copy) and restores', async () => {
    const gold = await loadLoraGolden('llama-mha');
    const model = await loadTiny('llama-mha');
    const peft = await PeftModel.fromPretrained(model, 'test/fixtures/golden/adapters/llama-mha', { isTrainable: true });
    peft.sessionOptions = FAST;
    const batch = { inputIds: gold.inputIds, attentionMask: gold.attentionMask };
    const base = await baseLogits(model, batch);
    const off = await peft.disableAdapter(() => peft.forward(batch));
    expect(maxAbsDiff(off.logits.data, base)).toBe(0);
    expect(peft.adaptersEnabled).toBe(true);
    const on = await peft.forward(batch);
    expect(maxAbsDiff(on.logits.data, base)).toBeGreaterThan(1e-2);
    const h = peft.disableAdapter();
    expect(peft.adaptersEnabled).toBe(false);
    // a gradient step with adapters disabled: the loss is the base model's, adapter grads are zero
    const { grads } = await peft.lossAndGradients({ ...batch, labels: gold.labels });
    expect([...grads.values()].every((t) => t.data.every((v) => v === 0))).toBe(true);
    h.restore();
    h.restore();
    expect(peft.adaptersEnabled).toBe(true);
    await peft.release();
  });

  for (const useDora of [false, true]) {
    it(`LoRA dropout${useDora ? ' (DoRA)' : ''}: seeded, reproducible, off in eval`, async () => {
      const gold = await loadLoraGolden('llama-mha');
      const model = await loadTiny(useDora ? 'qwen2' : 'llama-mha');
      const peft = getPeftModel(model, new LoraConfig({ r: 4, targetModules: 'all-linear', loraDropout: 0.5, initLoraWeights: false, useDora }), { seed: 9 });
      peft.sessionOptions = FAST;
      const batch = { inputIds: gold.inputIds, attentionMask: gold.attentionMask, labels: gold.labels };
      const a = await peft.lossAndGradients(batch, { stepSeed: 11 });
      const b = await peft.lossAndGradients(batch, { stepSeed: 11 });
      const c = await peft.lossAndGradients(batch, { stepSeed: 12 });
      const evalMode = await peft.lossAndGradients(batch, { training: false });
      const fwd = await peft.forward(batch);
      expect(b.loss).toBe(a.loss);
      for (const [k, g] of a.grads) expect(Array.from(b.grads.get(k)!.data)).toEqual(Array.from(g.data));
      expect(c.loss).not.toBe(a.loss);
      expect(a.loss).not.toBe(evalMode.loss);
      expect(Math.abs(evalMode.loss - fwd.loss!)).toBeLessThan(1e-6);
      await peft.release();
    });
  }

  it("bias 'all' and modulesToSave train, save and merge as PEFT names them", async () => {
    const model = await loadTiny('qwen2');
    const qBias = Float32Array.from(model.dense.get('model.layers.0.self_attn.q_proj.bias')!.data);
    const peft = getPeftModel(model, new LoraConfig({ r: 2, targetModules: ['q_proj'], bias: 'all', modulesToSave: ['lm_head'] }));
    peft.sessionOptions = FAST;
    const names = peft.trainableParams().map((p) => p.name);
    expect(names).toContain('base_model.model.model.layers.0.self_attn.q_proj.base_layer.bias');
    expect(names).toContain('base_model.model.model.layers.0.self_attn.k_proj.bias');
    expect(names).toContain('base_model.model.lm_head.weight');
    const batch = { inputIds: [[1, 5, 9, 2]], attentionMask: [[1, 1, 1, 1]], labels: [[1, 5, 9, 2]] };
    const { grads } = await peft.lossAndGradients(batch);
    const gHead = grads.get('base_model.model.lm_head.weight')!;
    const gBias = grads.get('base_model.model.model.layers.0.self_attn.v_proj.bias')!;
    expect(gHead.data.some((v) => v !== 0) && gBias.data.some((v) => v !== 0)).toBe(true);
    // train the copy: the adapter's lm_head diverges from the base's, which disableAdapter still uses
    const head = peft.tensor('base_model.model.lm_head.weight');
    head.data.forEach((v, i) => (head.data[i] = v - 10 * gHead.data[i]!));
    const dir = path.join(tmp, 'bias-adapter');
    await peft.savePretrained(dir);
    const st = await readSafetensors(path.join(dir, 'adapter_model.safetensors'));
    expect([...st.keys()].filter((k) => k.includes('bias')).sort()).toEqual([
      'base_model.model.model.layers.0.self_attn.k_proj.bias',
      'base_model.model.model.layers.0.self_attn.q_proj.base_layer.bias',
      'base_model.model.model.layers.0.self_attn.v_proj.bias',
      'base_model.model.model.layers.1.self_attn.k_proj.bias',
      'base_model.model.model.layers.1.self_attn.q_proj.base_layer.bias',
      'base_model.model.model.layers.1.self_attn.v_proj.bias',
    ]);
    expect(Array.from(st.get('base_model.model.lm_head.weight')!.data as Float32Array)).toEqual(Array.from(head.data));
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const base = await peft.disableAdapter(() => peft.forward(batch));
    expect(warn).toHaveBeenCalled();
    warn.mockRestore();
    expect(maxAbsDiff(base.logits.data, await baseLogits(model, batch))).toBe(0);
    const reloaded = await PeftModel.fromPretrained(await loadTiny('qwen2'), dir);
    reloaded.sessionOptions = FAST;
    const want = (await peft.forward(batch)).logits;
    expect(maxAbsDiff((await reloaded.forward(batch)).logits.data, want.data)).toBe(0);
    const merged = await peft.mergeAndUnload();
    expect(merged.dense.get('lm_head.weight')).toBe(head);
    expect(maxAbsDiff(await baseLogits(merged, batch), want.data)).toBeLessThan(1e-5);
    expect(Array.from(merged.dense.get('model.layers.0.self_attn.q_proj.bias')!.data)).toEqual(Array.from(qBias));
    await reloaded.release();
  });
});

describe('loading adapters that do not fit', () => {
  const fixture = 'test/fixtures/golden/adapters/llama-mha';
  function variant(name: string, edit: (cfg: Record<string, unknown>, t: Map<string, Tensor>) => void): Promise<string> {
    const dir = path.join(tmp, name);
    mkdirSync(dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(path.join(fixture, 'adapter_config.json'), 'utf8'));
    return readSafetensors(path.join(fixture, 'adapter_model.safetensors')).then(async (t) => {
      edit(cfg, t);
      writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(cfg));
      await saveSafetensors(path.join(dir, 'adapter_model.safetensors'), t, { format: 'pt' });
      return dir;
    });
  }

  it('a shape mismatch names the tensor', async () => {
    const key = 'base_model.model.model.layers.1.mlp.up_proj.lora_B.weight';
    const dir = await variant('bad-shape', (_c, t) => t.set(key, Tensor.zeros('float32', [95, 4])));
    await rejectsWith(PeftModel.fromPretrained(await loadTiny('llama-mha'), dir), 'SHAPE_MISMATCH', new RegExp(`'${key.replace(/\./g, '\\.')}' has shape \\[95, 4\\], the model needs \\[96, 4\\]`));
    // the llama-mha adapter on qwen3 (8 heads: H·D = 128) fails the same way, naming the first tensor that does not fit
    await rejectsWith(
      PeftModel.fromPretrained(await loadTiny('qwen3'), fixture),
      'SHAPE_MISMATCH',
      /'base_model\.model\.model\.layers\.0\.self_attn\.o_proj\.lora_A\.weight' has shape \[4, 64\], the model needs \[4, 128\] \(the adapter was made for 'test\/fixtures\/models\/llama-mha'\)/,
    );
  });

  it('an adapter for another architecture says so', async () => {
    const dir = await variant('gpt2', (c, t) => {
      c.target_modules = ['c_attn'];
      c.base_model_name_or_path = 'openai-community/gpt2';
      t.clear();
      t.set('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', Tensor.zeros('float32', [4, 768]));
    });
    await rejectsWith(PeftModel.fromPretrained(await loadTiny('llama-mha'), dir), 'PEFT_ERROR', /does not fit this model \(made for 'openai-community\/gpt2'\).*'c_attn'.*not found/);
    const deeper = await variant('deeper', (_c, t) => t.set('base_model.model.model.layers.5.self_attn.q_proj.lora_A.weight', Tensor.zeros('float32', [4, 64])));
    await rejectsWith(PeftModel.fromPretrained(await loadTiny('llama-mha'), deeper), 'PEFT_ERROR', /layers\.5\.self_attn\.q_proj.*does not have.*another architecture/);
  });

  it('a missing tensor, a missing folder and a pickle-only adapter are named', async () => {
    const dir = await variant('missing', (_c, t) => t.delete('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'));
    await rejectsWith(PeftModel.fromPretrained(await loadTiny('llama-mha'), dir), 'MISSING_TENSOR', /missing 1 adapter tensor\(s\): base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight/);
    const bin = path.join(tmp, 'bin-only');
    mkdirSync(bin, { recursive: true });
    copyFileSync(path.join(fixture, 'adapter_config.json'), path.join(bin, 'adapter_config.json'));
    writeFileSync(path.join(bin, 'adapter_model.bin'), 'x');
    await rejectsWith(PeftModel.fromPretrained(await loadTiny('llama-mha'), bin), 'FILE_NOT_FOUND', /adapter_model\.bin \(a pickle\)/);
    await rejectsWith(PeftModel.fromPretrained(await loadTiny('llama-mha'), path.join(tmp, 'nope')), 'FILE_NOT_FOUND', /not found/);
  });

  it('an inference-mode adapter refuses to train; an unloaded one refuses everything', async () => {
    const model = await loadTiny('llama-mha');
    const peft = await PeftModel.fromPretrained(model, fixture);
    const batch = { inputIds: [[1, 2, 3]], labels: [[1, 2, 3]] };
    await rejectsWith(peft.lossAndGradients(batch), 'PEFT_ERROR', /isTrainable: true/);
    await peft.unload();
    await rejectsWith(peft.savePretrained(path.join(tmp, 'x')), 'PEFT_ERROR', /unloaded/);
  });
});
