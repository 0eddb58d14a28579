import { describe, expect, it } from 'vitest';
import type { TsFinetuneError } from '../../src/core/index.js';
import { BitsAndBytesConfig, type BitsAndBytesConfigInit } from '../../src/quant/index.js';

function err(fn: () => unknown): TsFinetuneError {
  try {
    fn();
  } catch (e) {
    return e as TsFinetuneError;
  }
  throw new Error('expected an error');
}

// quantization_config of a published *-bnb-4bit checkpoint (transformers writes it with sorted keys)
const HUB_CONFIG = {
  _load_in_4bit: true,
  _load_in_8bit: false,
  bnb_4bit_compute_dtype: 'bfloat16',
  bnb_4bit_quant_storage: 'uint8',
  bnb_4bit_quant_type: 'nf4',
  bnb_4bit_use_double_quant: true,
  llm_int8_enable_fp32_cpu_offload: false,
  llm_int8_has_fp16_weight: false,
  llm_int8_skip_modules: null,
  llm_int8_threshold: 6.0,
  load_in_4bit: true,
  load_in_8bit: false,
  quant_method: 'bitsandbytes',
};

describe('BitsAndBytesConfig', () => {
  it('has transformers defaults', () => {
    const c = new BitsAndBytesConfig({ loadIn4bit: true });
    expect(c.bnb4bitQuantType).toBe('fp4');
    expect(c.bnb4bitComputeDtype).toBe('float32');
    expect(c.bnb4bitUseDoubleQuant).toBe(false);
    expect(c.bnb4bitQuantStorage).toBe('uint8');
    expect(c.llmInt8SkipModules).toBeNull();
    expect(c.isQuantized).toBe(true);
    expect(new BitsAndBytesConfig().isQuantized).toBe(false);
  });

  it('writes the quantization_config transformers writes, and reads it back', () => {
    const c = new BitsAndBytesConfig({
      loadIn4bit: true,
      bnb4bitQuantType: 'nf4',
      bnb4bitComputeDtype: 'bfloat16',
      bnb4bitUseDoubleQuant: true,
    });
    expect(JSON.stringify(c.toJSON())).toBe(JSON.stringify(HUB_CONFIG));
    const back = BitsAndBytesConfig.fromJSON(HUB_CONFIG);
    expect(back.toJSON()).toEqual(c.toJSON());
    expect(back.unusedKeys).toEqual([]);
  });

  it('reads older configs with only one form of the load flags, and keeps unknown keys aside', () => {
    const c = BitsAndBytesConfig.fromJSON({ load_in_4bit: true, bnb_4bit_quant_type: 'nf4', some_future_key: 1 });
    expect(c.loadIn4bit).toBe(true);
    expect(c.unusedKeys).toEqual(['some_future_key']);
    expect(BitsAndBytesConfig.fromJSON({ _load_in_4bit: true }).loadIn4bit).toBe(true);
    expect(err(() => BitsAndBytesConfig.fromJSON({ _load_in_4bit: true, load_in_4bit: false })).message).toMatch(/disagree/);
  });

  it('says clearly that 8-bit loading is unsupported', () => {
    const e = err(() => new BitsAndBytesConfig({ loadIn8bit: true }));
    expect(e.code).toBe('INVALID_CONFIG');
    expect(e.message).toMatch(/loadIn8bit.*not supported.*loadIn4bit: true/);
    expect(err(() => new BitsAndBytesConfig({ loadIn8bit: true, loadIn4bit: true })).message).toMatch(/both true/);
    expect(err(() => BitsAndBytesConfig.fromJSON({ load_in_8bit: true })).message).toMatch(/quantization_config\.load_in_8bit/);
  });

  it('rejects unknown options with a suggestion', () => {
    const e = err(() => new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantTyp: 'nf4' } as BitsAndBytesConfigInit));
    expect(e.code).toBe('UNKNOWN_CONFIG_KEY');
    expect(e.message).toMatch(/'bnb4bitQuantTyp'.*did you mean 'bnb4bitQuantType'/);
  });

  it('validates values, naming the key (camelCase in code, snake_case from JSON)', () => {
    const bad: [BitsAndBytesConfigInit, RegExp][] = [
      [{ bnb4bitQuantType: 'int4' as 'nf4' }, /bnb4bitQuantType: must be one of 'nf4', 'fp4', got "int4"/],
      [{ bnb4bitComputeDtype: 'float64' as 'float32' }, /bnb4bitComputeDtype/],
      [{ bnb4bitUseDoubleQuant: 'yes' as unknown as boolean }, /bnb4bitUseDoubleQuant: must be a boolean/],
      [{ bnb4bitQuantStorage: 'int4' as 'uint8' }, /bnb4bitQuantStorage/],
      [{ llmInt8SkipModules: 'lm_head' as unknown as string[] }, /llmInt8SkipModules/],
      [{ llmInt8Threshold: NaN }, /llmInt8Threshold/],
    ];
    for (const [init, re] of bad) {
      const e = err(() => new BitsAndBytesConfig({ loadIn4bit: true, ...init }));
      expect(e.code).toBe('INVALID_CONFIG');
      expect(e.message).toMatch(re);
    }
    const j = err(() => BitsAndBytesConfig.fromJSON({ ...HUB_CONFIG, bnb_4bit_compute_dtype: 'float8' }));
    expect(j.message).toMatch(/^quantization_config\.bnb_4bit_compute_dtype: must be one of/);
    expect(j.details['key']).toBe('bnb_4bit_compute_dtype');
    expect(err(() => BitsAndBytesConfig.fromJSON({ quant_method: 'gptq' })).message).toMatch(/gptq.*bitsandbytes/);
    expect(err(() => BitsAndBytesConfig.fromJSON([])).code).toBe('INVALID_CONFIG');
  });

  it('matches skipped modules by whole dotted components', () => {
    const c = new BitsAndBytesConfig({ loadIn4bit: true, llmInt8SkipModules: ['lm_head', 'mlp.down_proj', 'model.layers.3'] });
    expect(c.skipsModule('lm_head')).toBe(true);
    expect(c.skipsModule('model.layers.0.mlp.down_proj')).toBe(true);
    expect(c.skipsModule('model.layers.3.self_attn.q_proj')).toBe(true);
    expect(c.skipsModule('model.layers.30.self_attn.q_proj')).toBe(false);
    expect(c.skipsModule('model.layers.0.mlp.up_proj')).toBe(false);
    expect(new BitsAndBytesConfig({ loadIn4bit: true }).skipsModule('lm_head')).toBe(false);
  });
});
