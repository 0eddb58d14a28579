// `ts-finetune generate` end to end on a tiny random Llama whose vocabulary fits the tiny BPE tokenizer:
// the printed completion is the tokenizer's decoding of model.generate's new tokens (chat template on).
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import { saveSafetensors } from '../../src/io/index.js';
import { AutoModelForCausalLM, expectedParameters, generate, parseConfig } from '../../src/models/index.js';
import { LoraConfig, getPeftModel } from '../../src/peft/index.js';
import { AutoTokenizer } from '../../src/tokenizers/index.js';
import { generateCommand } from '../../src/cli/generate.js';

const TOK = 'test/fixtures/tokenizers/tiny-bpe';
let dir = '';

beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-gen-cli-'));
  const raw = {
    model_type: 'llama', vocab_size: 858, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1,
    num_attention_heads: 2, num_key_value_heads: 1, head_dim: 16, rms_norm_eps: 1e-5, bos_token_id: 856, eos_token_id: 857,
  };
  const rng = new Rng(3);
  const tensors = new Map<string, Tensor>();
  for (const [name, shape] of expectedParameters(parseConfig(raw))) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = name.endsWith('norm.weight') ? new Float32Array(n).fill(1) : Float32Array.from({ length: n }, () => rng.normal(0, 0.3));
    tensors.set(name, new Tensor('float32', shape, data));
  }
  await saveSafetensors(path.join(dir, 'model.safetensors'), tensors);
  await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify(raw));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await fsp.copyFile(path.join(TOK, f), path.join(dir, f));
});

afterAll(async () => {
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

function captureStdout(): { text: () => string; restore: () => void } {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  });
  return { text: () => out, restore: () => spy.mockRestore() };
}

describe('ts-finetune generate', () => {
  it('prints the completion of a chat prompt', async () => {
    const cap = captureStdout();
    let code: number;
    try {
      code = await generateCommand(['--model', dir, '--prompt', 'hello there', '--chat', '--max-new-tokens', '6']);
    } finally {
      cap.restore();
    }
    expect(code).toBe(0);
    const tok = await AutoTokenizer.fromPretrained(dir);
    const ids = tok.applyChatTemplate([{ role: 'user', content: 'hello there' }], { addGenerationPrompt: true });
    const model = await AutoModelForCausalLM.fromPretrained(dir);
    const [seq] = await model.generate([ids], { maxNewTokens: 6, eosTokenId: 857 });
    await model.release();
    const fresh = seq!.slice(ids.length).filter((t) => t !== 857);
    expect(fresh.length).toBeGreaterThan(0);
    expect(cap.text()).toBe(`${tok.decode(fresh, { skipSpecialTokens: true })}\n`);
  });

  it('applies --adapter (the completion of generate on the PeftModel)', async () => {
    const model = await AutoModelForCausalLM.fromPretrained(dir);
    const peft = getPeftModel(model, new LoraConfig({ r: 2, loraAlpha: 4, targetModules: ['q_proj', 'o_proj'] }));
    const rng = new Rng(11);
    for (const [k, t] of peft.adapterWeights) if (k.includes('lora_B')) for (let i = 0; i < t.size; i++) t.data[i] = rng.normal(0, 1);
    const adapterDir = path.join(dir, 'adapter');
    await peft.savePretrained(adapterDir);
    const tok = await AutoTokenizer.fromPretrained(dir);
    const ids = tok.encode('hello');
    const [withAdapter] = await generate(peft, [ids], { maxNewTokens: 5, eosTokenId: 857 });
    const [without] = await model.generate([ids], { maxNewTokens: 5, eosTokenId: 857 });
    await peft.release();
    await model.release();
    expect(withAdapter).not.toEqual(without);
    const cap = captureStdout();
    try {
      expect(await generateCommand(['--model', dir, '--adapter', adapterDir, '--prompt', 'hello', '--max-new-tokens=5'])).toBe(0);
    } finally {
      cap.restore();
    }
    const fresh = withAdapter!.slice(ids.length).filter((t) => t !== 857);
    expect(cap.text()).toBe(`${tok.decode(fresh, { skipSpecialTokens: true })}\n`);
  });

  it('rejects unknown flags and missing values with the usage', async () => {
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await generateCommand(['--model', dir, '--promt', 'x'])).toBe(2);
      expect(String(err.mock.calls[0]![0])).toMatch(/unknown option '--promt' \(did you mean '--prompt'\?\)/);
      expect(await generateCommand(['--model', dir, '--prompt', 'x', '--top-k', 'many'])).toBe(2);
      expect(String(err.mock.calls[1]![0])).toMatch(/--top-k needs an integer, got 'many'/);
    } finally {
      err.mockRestore();
    }
  });
});
