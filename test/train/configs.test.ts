import { describe, expect, it } from 'vitest';
import { TsFinetuneError } from '../../src/core/errors.js';
import { DPOConfig } from '../../src/train/dpo-config.js';
import { ORPOConfig } from '../../src/train/orpo-config.js';
import { SFTConfig } from '../../src/train/sft-config.js';
import { TrainingArguments } from '../../src/train/training-args.js';

function err(f: () => unknown): TsFinetuneError {
  try {
    f();
  } catch (e) {
    if (e instanceof TsFinetuneError) return e;
    throw e;
  }
  throw new Error('expected a TsFinetuneError');
}

describe('SFTConfig', () => {
  it("has TRL's defaults on top of TrainingArguments", () => {
    const c = new SFTConfig();
    expect(c).toBeInstanceOf(TrainingArguments);
    expect(c).toMatchObject({
      learningRate: 2e-5,
      loggingSteps: 10,
      gradientCheckpointing: true,
      datasetTextField: 'text',
      maxLength: 1024,
      packing: false,
      packingStrategy: 'bfd',
      completionOnlyLoss: null,
      assistantOnlyLoss: false,
      datasetNumProc: null,
      eosToken: null,
      padToken: null,
      perDeviceTrainBatchSize: 8,
      saveSteps: 500,
    });
  });

  it('accepts maxSeqLength / max_seq_length as maxLength', () => {
    expect(new SFTConfig({ maxSeqLength: 4096 }).maxLength).toBe(4096);
    const c = new SFTConfig({ max_seq_length: 512 });
    expect(c.maxSeqLength).toBe(512);
    c.maxSeqLength = 256;
    expect(c.maxLength).toBe(256);
    expect(err(() => new SFTConfig({ maxSeqLength: 512, maxLength: 1024 })).code).toBe('INVALID_CONFIG');
    expect(c.toJSON()['max_length']).toBe(256);
  });

  it('suggests SFT field names and checks SFT rules', () => {
    const e = err(() => new SFTConfig({ dataset_text_feild: 'content' } as never));
    expect(e.code).toBe('UNKNOWN_CONFIG_KEY');
    expect(e.details).toMatchObject({ suggestion: 'dataset_text_field', className: 'SFTConfig' });
    expect(e.message).toContain('SFTConfig');
    expect(err(() => new SFTConfig({ packing: true, maxLength: null })).details['key']).toBe('maxLength');
    expect(err(() => new SFTConfig({ packingStrategy: 'wrapped' } as never)).code).toBe('INVALID_CONFIG');
    expect(err(() => new SFTConfig({ completionOnlyLoss: 'auto' } as never)).details['key']).toBe('completionOnlyLoss');
  });

  it('round-trips through JSON as an SFTConfig', () => {
    const c = new SFTConfig({ outputDir: 'o', packing: true, completionOnlyLoss: false, learningRate: 1e-4 });
    const back = SFTConfig.fromJSON(JSON.stringify(c));
    expect(back).toBeInstanceOf(SFTConfig);
    expect(back.toJSON()).toEqual(c.toJSON());
    expect(c.toJSON()).toMatchObject({ dataset_text_field: 'text', completion_only_loss: false, packing: true });
    expect(c.clone({ packing: false })).toBeInstanceOf(SFTConfig);
  });
});

describe('DPOConfig', () => {
  it("has TRL's defaults", () => {
    expect(new DPOConfig()).toMatchObject({
      beta: 0.1,
      lossType: 'sigmoid',
      labelSmoothing: 0,
      maxLength: 1024,
      maxPromptLength: 512,
      maxCompletionLength: null,
      truncationMode: 'keep_end',
      precomputeRefLogProbs: false,
      referenceFree: false,
      disableDropout: true,
      learningRate: 1e-6,
      loggingSteps: 10,
      gradientCheckpointing: true,
    });
  });

  it('checks loss type, label smoothing, beta and lengths', () => {
    expect(new DPOConfig({ loss_type: ['ipo'] } as never).lossType).toBe('ipo'); // newer TRL writes a list
    expect(err(() => new DPOConfig({ lossType: 'kto_pair' } as never)).details['key']).toBe('lossType');
    expect(err(() => new DPOConfig({ lossType: 'hinge', labelSmoothing: 0.1 })).details['key']).toBe('labelSmoothing');
    expect(new DPOConfig({ labelSmoothing: 0.1 }).labelSmoothing).toBe(0.1);
    expect(err(() => new DPOConfig({ labelSmoothing: 0.6 })).details['key']).toBe('labelSmoothing');
    expect(err(() => new DPOConfig({ beta: 0 })).details['key']).toBe('beta');
    expect(err(() => new DPOConfig({ maxLength: 256, maxPromptLength: 256 })).details['key']).toBe('maxPromptLength');
    expect(new DPOConfig({ maxLength: null }).maxPromptLength).toBe(512);
  });
});

describe('ORPOConfig', () => {
  it("has TRL's defaults and our NLL switch", () => {
    const c = new ORPOConfig({ outputDir: 'o' });
    expect(c).toMatchObject({ beta: 0.1, maxLength: 1024, maxPromptLength: 512, orpoNllOverPrompt: false, learningRate: 1e-6, disableDropout: true });
    expect(new ORPOConfig({ orpo_nll_over_prompt: true } as never).orpoNllOverPrompt).toBe(true);
    expect(ORPOConfig.fromJSON(c.toJSON())).toBeInstanceOf(ORPOConfig);
    expect(err(() => new ORPOConfig({ lossType: 'sigmoid' } as never)).code).toBe('UNKNOWN_CONFIG_KEY');
  });
});
