import { describe, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';
import { isTsFinetuneError } from '../../src/core/index.js';
import { parseConfig } from '../../src/models/config.js';
import { findAllLinearNames, LoraConfig, selectTargetModules } from '../../src/peft/index.js';
import { patternValue } from '../../src/peft/target-modules.js';

const raw = (name: string): Record<string, unknown> => JSON.parse(readFileSync(`test/fixtures/models/${name}/config.json`, 'utf8'));
const llama = parseConfig(raw('llama-mha'));
const tied = parseConfig(raw('llama-tied'));

function throwsCode(fn: () => unknown, code: string, re: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(isTsFinetuneError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    expect((e as Error).message).toMatch(re);
    return;
  }
  throw new Error('expected a throw');
}

describe('LoraConfig', () => {
  it('has PEFT defaults', () => {
    const c = new LoraConfig();
    expect([c.r, c.loraAlpha, c.loraDropout, c.bias, c.useRslora, c.useDora, c.initLoraWeights, c.fanInFanOut]).toEqual([8, 8, 0, 'none', false, false, true, false]);
    expect(c.targetModules).toBeUndefined();
    expect(c.scaling()).toBe(1);
    expect(new LoraConfig({ r: 16, loraAlpha: 32, useRslora: true }).scaling()).toBe(8);
  });

  it('round-trips the PEFT fixture config byte for byte', () => {
    for (const name of ['llama-mha', 'dora', 'rslora']) {
      const text = readFileSync(`test/fixtures/golden/adapters/${name}/adapter_config.json`, 'utf8');
      expect(LoraConfig.fromJSON(JSON.parse(text)).toJSONString()).toBe(text);
    }
  });

  it('writes floats as Python does and lists from sets sorted', () => {
    const j = JSON.parse(new LoraConfig({ loraDropout: 0.05, targetModules: ['v_proj', 'q_proj', 'q_proj'] }).toJSONString());
    expect(j.target_modules).toEqual(['q_proj', 'v_proj']);
    expect(new LoraConfig({ loraDropout: 0.05 }).toJSONString()).toContain('"lora_dropout": 0.05,');
    expect(new LoraConfig().toJSONString()).toContain('"lora_dropout": 0.0,');
  });

  it('rejects bad values, naming the field', () => {
    throwsCode(() => new LoraConfig({ r: 0 }), 'INVALID_CONFIG', /`r` should be a positive integer value but the value passed is 0/);
    throwsCode(() => new LoraConfig({ r: -4 }), 'INVALID_CONFIG', /`r`/);
    throwsCode(() => new LoraConfig({ r: 2.5 }), 'INVALID_CONFIG', /`r`/);
    throwsCode(() => new LoraConfig({ loraDropout: 1 }), 'INVALID_CONFIG', /loraDropout/);
    throwsCode(() => new LoraConfig({ bias: 'some' as never }), 'INVALID_CONFIG', /bias/);
    throwsCode(() => new LoraConfig({ initLoraWeights: 'pissa' as never }), 'PEFT_ERROR', /pissa.*not supported/);
    throwsCode(() => new LoraConfig({ layersPattern: 'layers' }), 'INVALID_CONFIG', /layersToTransform/);
    throwsCode(() => new LoraConfig({ targetModules: '.*proj', layersToTransform: [0] }), 'INVALID_CONFIG', /str/);
    throwsCode(() => new LoraConfig({ rankPattern: { q_proj: 0 } }), 'INVALID_CONFIG', /rankPattern\['q_proj'\]/);
    throwsCode(() => new LoraConfig({ taskType: 'CAUSAL' as never }), 'INVALID_CONFIG', /taskType/);
  });

  it('suggests the closest name for an unknown option', () => {
    throwsCode(() => new LoraConfig({ loraAplha: 16 } as never), 'UNKNOWN_CONFIG_KEY', /unknown option 'loraAplha' \(did you mean 'loraAlpha'\?\)/);
    throwsCode(() => new LoraConfig({ target_modules: ['q_proj'] } as never), 'UNKNOWN_CONFIG_KEY', /did you mean 'targetModules'/);
  });

  it('reads adapter_config.json: other PEFT types and unimplemented features fail, unknown fields warn', () => {
    const base = JSON.parse(readFileSync('test/fixtures/golden/adapters/llama-mha/adapter_config.json', 'utf8'));
    throwsCode(() => LoraConfig.fromJSON({ ...base, peft_type: 'IA3' }), 'PEFT_ERROR', /only LoRA/);
    throwsCode(() => LoraConfig.fromJSON({ ...base, use_qalora: true }), 'PEFT_ERROR', /use_qalora/);
    throwsCode(() => LoraConfig.fromJSON({ ...base, r: 0 }, 'x/adapter_config.json'), 'INVALID_CONFIG', /x\/adapter_config.json: .*`r`/);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const c = LoraConfig.fromJSON({ ...base, some_future_field: 3, other_null: null });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toContain('some_future_field');
    warn.mockRestore();
    expect(c.r).toBe(4);
    expect(c.targetModules).toHaveLength(7);
  });
});

describe('target modules', () => {
  const names = (c: LoraConfig, cfg = llama): string[] => selectTargetModules(c, cfg);

  it('defaults to q_proj and v_proj for llama; all-linear takes every linear but lm_head', () => {
    expect(names(new LoraConfig())).toEqual([
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.v_proj',
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.self_attn.v_proj',
    ]);
    const all = names(new LoraConfig({ targetModules: 'all-linear' }));
    expect(all).toHaveLength(14);
    expect(all).not.toContain('lm_head');
    expect(findAllLinearNames({ config: llama })).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
  });

  it('matches list entries exactly or as a dotted suffix, a string as a full regex', () => {
    expect(names(new LoraConfig({ targetModules: ['layers.0.mlp.down_proj'] }))).toEqual(['model.layers.0.mlp.down_proj']);
    expect(names(new LoraConfig({ targetModules: ['lm_head'] }))).toEqual(['lm_head']);
    expect(names(new LoraConfig({ targetModules: 'model\\.layers\\.1\\.self_attn\\.(q|k)_proj' }))).toEqual([
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.self_attn.k_proj',
    ]);
    // 'roj' is not a dotted suffix of anything
    throwsCode(() => names(new LoraConfig({ targetModules: ['roj'] })), 'PEFT_ERROR', /not found/);
  });

  it('honours layersToTransform / layersPattern and excludeModules', () => {
    expect(names(new LoraConfig({ targetModules: ['q_proj'], layersToTransform: 1 }))).toEqual(['model.layers.1.self_attn.q_proj']);
    expect(names(new LoraConfig({ targetModules: ['q_proj'], layersToTransform: [0], layersPattern: 'layers' }))).toEqual(['model.layers.0.self_attn.q_proj']);
    expect(names(new LoraConfig({ targetModules: 'all-linear', excludeModules: ['mlp.down_proj', 'o_proj'] }))).toHaveLength(10);
  });

  it('a target matching nothing lists the linear module names', () => {
    throwsCode(
      () => names(new LoraConfig({ targetModules: ['c_attn'] })),
      'PEFT_ERROR',
      /Target modules \['c_attn'\] not found in the base model \(llama, 2 layers\)\. Its linear modules are: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head/,
    );
    throwsCode(() => names(new LoraConfig({ targetModules: 'q_proj' })), 'PEFT_ERROR', /'q_proj' not found/);
    throwsCode(() => names(new LoraConfig({ targetModules: ['q_proj'], layersToTransform: [7] })), 'PEFT_ERROR', /layersToTransform \[7\]/);
  });

  it('refuses modules that are not linear layers, saying why', () => {
    throwsCode(() => names(new LoraConfig({ targetModules: ['embed_tokens'] })), 'PEFT_ERROR', /Embedding/);
    throwsCode(() => names(new LoraConfig({ targetModules: ['lm_head'] }), tied), 'PEFT_ERROR', /tie_word_embeddings/);
    throwsCode(() => names(new LoraConfig({ targetModules: ['mlp'] })), 'PEFT_ERROR', /not a Linear layer/);
  });

  it('rank and alpha patterns match the end of the module name', () => {
    const p = { down_proj: 2, 'layers\\.1\\.self_attn\\.q_proj': 16 };
    expect(patternValue(p, 'model.layers.0.mlp.down_proj', 8)).toBe(2);
    expect(patternValue(p, 'model.layers.1.self_attn.q_proj', 8)).toBe(16);
    expect(patternValue(p, 'model.layers.0.self_attn.q_proj', 8)).toBe(8);
  });
});
