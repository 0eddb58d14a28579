// fromPretrained on broken inputs: each failure is a TsFinetuneError with a stable code whose message names
// the thing that is wrong (file, field, tensor, expected and found shapes, the device and how to fix it).
// Each case is a copy of test/fixtures/models/llama-gqa in a temp folder with one thing broken.
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTsFinetuneError, type Tensor, type TsFinetuneError } from '../../src/core/index.js';
import { readSafetensors, saveSafetensors } from '../../src/io/index.js';
import { AutoModelForCausalLM, CausalLM, readConfig, loadWeights } from '../../src/models/index.js';
import { BitsAndBytesConfig } from '../../src/quant/index.js';
import { epPrecheck } from '../../src/runtime/devices.js';

const GQA = 'test/fixtures/models/llama-gqa';
let tmp: string;
let config: Record<string, unknown>;
let tensors: Map<string, Tensor>;

beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-bad-'));
  config = JSON.parse(await fsp.readFile(path.join(GQA, 'config.json'), 'utf8')) as Record<string, unknown>;
  tensors = await readSafetensors(path.join(GQA, 'model.safetensors'));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

let n = 0;
/** A copy of llama-gqa with `edit` applied to its config (object or raw text) and tensors. */
async function variant(edit: { config?: (c: Record<string, unknown>) => Record<string, unknown> | string; tensors?: (t: Map<string, Tensor>) => void }): Promise<string> {
  const dir = path.join(tmp, `v${n++}`);
  await fsp.mkdir(dir);
  const c = edit.config ? edit.config(structuredClone(config)) : config;
  await fsp.writeFile(path.join(dir, 'config.json'), typeof c === 'string' ? c : JSON.stringify(c, null, 2));
  const t = new Map(tensors);
  edit.tensors?.(t);
  await saveSafetensors(path.join(dir, 'model.safetensors'), t, { format: 'pt' });
  return dir;
}

async function failure(p: Promise<unknown>): Promise<TsFinetuneError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(isTsFinetuneError(e), `expected a TsFinetuneError, got ${String(e)}`).toBe(true);
  return e as TsFinetuneError;
}

describe('fromPretrained: bad checkpoints and configs', () => {
  it('unsupported model_type: UNSUPPORTED_MODEL listing the supported ones', async () => {
    const dir = await variant({ config: (c) => ({ ...c, model_type: 'gpt2' }) });
    const e = await failure(AutoModelForCausalLM.fromPretrained(dir));
    expect(e.code).toBe('UNSUPPORTED_MODEL');
    expect(e.message).toContain("model_type 'gpt2' is not supported");
    expect(e.message).toContain('supported: llama, mistral, qwen2, qwen3');
    expect(e.message).toContain(path.join(dir, 'config.json'));
  });

  it('a checkpoint missing a tensor: MISSING_TENSOR naming it', async () => {
    const dir = await variant({ tensors: (t) => t.delete('model.layers.1.mlp.up_proj.weight') });
    const e = await failure(AutoModelForCausalLM.fromPretrained(dir));
    expect(e.code).toBe('MISSING_TENSOR');
    expect(e.message).toContain("'model.layers.1.mlp.up_proj.weight'");
    expect(e.details.tensor).toBe('model.layers.1.mlp.up_proj.weight');
    // a tied checkpoint needs no lm_head, an untied one does
    const noHead = await variant({ tensors: (t) => t.delete('lm_head.weight') });
    expect((await failure(AutoModelForCausalLM.fromPretrained(noHead))).message).toContain("'lm_head.weight'");
    const tied = await variant({ config: (c) => ({ ...c, tie_word_embeddings: true }), tensors: (t) => t.delete('lm_head.weight') });
    expect((await AutoModelForCausalLM.fromPretrained(tied)).stateDict().has('lm_head.weight')).toBe(false);
  });

  it('a tensor with the wrong shape: SHAPE_MISMATCH naming it, the expected and the found shape (also when loading 4-bit)', async () => {
    const k = tensors.get('model.layers.0.self_attn.k_proj.weight')!;
    // k_proj of 4 kv heads instead of 2: [64, 64] where the config implies [32, 64]
    const dir = await variant({ tensors: (t) => t.set('model.layers.0.self_attn.k_proj.weight', tensors.get('model.layers.0.self_attn.q_proj.weight')!) });
    expect(k.dims).toEqual([32, 64]);
    for (const opts of [{}, { quantizationConfig: new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4' }) }]) {
      const e = await failure(AutoModelForCausalLM.fromPretrained(dir, opts));
      expect(e.code).toBe('SHAPE_MISMATCH');
      expect(e.message).toContain("tensor 'model.layers.0.self_attn.k_proj.weight' has shape [64, 64], expected [32, 64]");
      expect(e.details).toMatchObject({ tensor: 'model.layers.0.self_attn.k_proj.weight', expected: [32, 64], found: [64, 64] });
    }
  });

  it('a pre-quantized weight whose quant_state shape disagrees with config.json: SHAPE_MISMATCH', async () => {
    const m = await AutoModelForCausalLM.fromPretrained(GQA, { quantizationConfig: new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4' }) });
    const dir = path.join(tmp, 'prequant-bad');
    await m.savePretrained(dir);
    const c = JSON.parse(await fsp.readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...c, intermediate_size: 80 }));
    const e = await failure(AutoModelForCausalLM.fromPretrained(dir));
    expect(e.code).toBe('SHAPE_MISMATCH');
    expect(e.message).toMatch(/4-bit tensor 'model\.layers\.\d\.mlp\.(gate|up|down)_proj\.weight' has shape \[(96, 64|64, 96)\] \(its quant_state\), expected \[(80, 64|64, 80)\]/);
  });

  it('config.json missing a required field: INVALID_CONFIG naming the field and the file', async () => {
    for (const key of ['hidden_size', 'vocab_size', 'num_hidden_layers', 'intermediate_size', 'num_attention_heads']) {
      const dir = await variant({
        config: (c) => {
          delete c[key];
          return c;
        },
      });
      const e = await failure(AutoModelForCausalLM.fromPretrained(dir));
      expect(e.code, key).toBe('INVALID_CONFIG');
      expect(e.message).toContain(`required field '${key}' is missing`);
      expect(e.message).toContain(path.join(dir, 'config.json'));
    }
    const noType = await variant({
      config: (c) => {
        delete c.model_type;
        return c;
      },
    });
    expect((await failure(AutoModelForCausalLM.fromPretrained(noType))).code).toBe('UNSUPPORTED_MODEL');
  });

  it('config.json that is not JSON, or not an object: INVALID_CONFIG naming the file', async () => {
    for (const text of ['{"model_type": "llama",', '[1, 2]']) {
      const dir = await variant({ config: () => text });
      const e = await failure(AutoModelForCausalLM.fromPretrained(dir));
      expect(e.code).toBe('INVALID_CONFIG');
      expect(e.message).toContain(path.join(dir, 'config.json'));
    }
    // readConfig alone says the same
    const dir = await variant({ config: () => 'not json' });
    const e = await failure(readConfig(dir));
    expect(e.message).toMatch(/config\.json is not valid JSON/);
  });

  it('a quantization_config of another method: INVALID_CONFIG naming quant_method', async () => {
    const dir = await variant({ config: (c) => ({ ...c, quantization_config: { quant_method: 'gptq', bits: 4 } }) });
    const e = await failure(AutoModelForCausalLM.fromPretrained(dir));
    expect(e.code).toBe('INVALID_CONFIG');
    expect(e.message).toContain('quant_method');
    expect(e.message).toContain('gptq');
  });

  it('no folder, no config.json, no weights: FILE_NOT_FOUND naming the path', async () => {
    const missing = path.join(tmp, 'does-not-exist');
    const e1 = await failure(AutoModelForCausalLM.fromPretrained(missing));
    expect([e1.code, e1.message.includes(missing)]).toEqual(['FILE_NOT_FOUND', true]);
    const empty = path.join(tmp, 'empty');
    await fsp.mkdir(empty);
    const e2 = await failure(AutoModelForCausalLM.fromPretrained(empty));
    expect([e2.code, e2.message]).toEqual(['FILE_NOT_FOUND', `No config.json in ${empty}`]);
    await fsp.copyFile(path.join(GQA, 'config.json'), path.join(empty, 'config.json'));
    const e3 = await failure(AutoModelForCausalLM.fromPretrained(empty));
    expect(e3.code).toBe('FILE_NOT_FOUND');
    expect(e3.message).toContain('model.safetensors');
  });

  it('options: unknown key, dtype, device are checked before anything is read', async () => {
    const bogus = path.join(tmp, 'never-read');
    expect((await failure(AutoModelForCausalLM.fromPretrained(bogus, { torch_dtype: 'float32' } as never))).code).toBe('UNKNOWN_CONFIG_KEY');
    const d = await failure(AutoModelForCausalLM.fromPretrained(bogus, { dtype: 'float64' as never }));
    expect([d.code, d.message]).toEqual(['INVALID_ARGUMENT', "fromPretrained: dtype 'float64' is not one of float32, bfloat16, float16, auto"]);
    const v = await failure(AutoModelForCausalLM.fromPretrained(bogus, { device: 'tpu' as never }));
    expect([v.code, v.message]).toEqual(['INVALID_ARGUMENT', "fromPretrained: device 'tpu' is not one of cpu, cuda, webgpu, auto"]);
  });
});

describe("device: 'cuda' without ORT's CUDA provider", () => {
  const cudaMissing = epPrecheck('cuda') !== undefined;

  it.skipIf(!cudaMissing)('fails at load, before reading weights, with EP_UNAVAILABLE and the runtime\'s fix', async () => {
    const e = await failure(AutoModelForCausalLM.fromPretrained(path.join(tmp, 'never-read'), { device: 'cuda' }));
    expect(e.code).toBe('EP_UNAVAILABLE');
    expect(e.details.device).toBe('cuda');
    expect(e.message).toContain('The CUDA execution provider is not available');
    expect(e.message).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node');
    expect(e.message).toContain("Or use device: 'cpu' / 'auto'");
  });

  it.skipIf(!cudaMissing)('a model that holds device cuda anyway fails at its first forward with the same error (and can retry)', async () => {
    const cfg = await readConfig(GQA);
    const w = await loadWeights(GQA, cfg);
    const m = new CausalLM(cfg, w.dense, new Map(), GQA, 'cuda');
    m.sessionOptions = { worker: false };
    for (let i = 0; i < 2; i++) {
      const e = await failure(m.forward({ inputIds: [[1, 2, 3]] }));
      expect(e.code).toBe('EP_UNAVAILABLE');
      expect(e.message).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12');
    }
    await m.release();
  });
});
