// `ts-finetune sft` in-process: the embedded default (assets/tiny-chat on assets/data/instructions.jsonl,
// LoRA) for a couple of steps from a --config YAML with key=value overrides; the before/after sample lines,
// the adapter, tokenizer and checkpoint files; how config file, flags and key=value combine; and the errors
// for an unknown flag or a mistyped training key.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { TsFinetuneError } from '../../src/core/errors.js';
import { resolveRunConfig } from '../../src/cli/run-config.js';
import { runCli } from '../../src/cli/run.js';
import { SFT_DEFAULTS, sftCommand } from '../../src/cli/sft.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tsft-sft-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function capture(f: () => Promise<number>): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return { code: await f(), out };
  } finally {
    spy.mockRestore();
    err.mockRestore();
  }
}

async function rejects(p: Promise<unknown>): Promise<TsFinetuneError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(TsFinetuneError);
    return e as TsFinetuneError;
  }
  throw new Error('expected an error');
}

describe('ts-finetune sft', () => {
  it('trains the embedded default: sample before and after, adapter and checkpoint on disk', async () => {
    const out = path.join(dir, 'run');
    const cfg = path.join(dir, 'run.yaml');
    // The file asks for 50 steps; the key=value override wins.
    writeFileSync(cfg, 'max_steps: 50\nlogging_steps: 1\nsave_steps: 2\nmax_new_tokens: 4\nlora:\n  r: 4\n');
    const { code, out: text } = await capture(() => sftCommand(['--config', cfg, 'max_steps=2', `output_dir=${out}`, 'report_to=jsonl']));
    expect(code).toBe(0);
    expect(text).toMatch(/ts-finetune sft: model .*assets[/\\]tiny-chat, dataset .*instructions\.jsonl \(train\), output /);
    expect(text).toMatch(/\nBefore training — user: What does a cow say\?\n {2}assistant: ".*"\n/);
    expect(text).toMatch(/\nAfter training — user: What does a cow say\?\n {2}assistant: ".*"\n/);
    expect(text).toMatch(/Trained 2 steps \(final loss \d+\.\d{4}\)\./);
    expect(text).toContain(`Adapter saved to ${out} (adapter_config.json, adapter_model.safetensors)`);
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'trainer_state.json', 'logs/metrics.jsonl', 'checkpoint-2/optimizer.safetensors']) {
      expect(existsSync(path.join(out, f)), f).toBe(true);
    }
    const adapter = JSON.parse(readFileSync(path.join(out, 'adapter_config.json'), 'utf8'));
    expect(adapter).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 32 }); // r from the file, alpha from the defaults
    const state = JSON.parse(readFileSync(path.join(out, 'trainer_state.json'), 'utf8'));
    expect(state.global_step).toBe(2);
    expect(state.log_history.filter((e: { loss?: number }) => e.loss !== undefined).length).toBe(2); // logging_steps 1 from the file
  });

  it('combines defaults < config file < flags < key=value', async () => {
    const cfg = path.join(dir, 'prec.yaml');
    writeFileSync(cfg, 'learning_rate: 0.001\nmax_steps: 5\nargs:\n  logging_steps: 3\nlora:\n  r: 4\nsample_prompt: Hi?\n');
    const r = await resolveRunConfig(['--config', cfg, '--output-dir', 'from-flag', 'max_steps=7', 'lora.lora_dropout=0.1'], SFT_DEFAULTS);
    expect(r.args).toMatchObject({
      learning_rate: 0.001, // file (top level moves under args)
      logging_steps: 3, // file, under args
      max_steps: 7, // key=value over the file
      output_dir: 'from-flag', // flag
      per_device_train_batch_size: 8, // default
    });
    expect(r.lora).toMatchObject({ r: 4, loraAlpha: 32, loraDropout: 0.1 });
    expect(r.samplePrompt).toBe('Hi?');
    const r2 = await resolveRunConfig(['--output-dir', 'from-flag', 'output_dir=from-kv', 'lora=false'], SFT_DEFAULTS);
    expect(r2.args.output_dir).toBe('from-kv');
    expect(r2.lora).toBeNull(); // full fine-tuning
  });

  it('rejects an unknown flag, a mistyped training key and a missing config file', async () => {
    const flag = await rejects(sftCommand(['--bogus', 'x']));
    expect(flag.code).toBe('UNKNOWN_CONFIG_KEY');
    expect(flag.message).toMatch(/Unknown flag --bogus/);
    const key = await rejects(sftCommand(['learning_rat=1e-3', `output_dir=${path.join(dir, 'typo')}`]));
    expect(key.message).toMatch(/learning_rat/);
    expect(key.message).toMatch(/learning_rate/); // suggests the close name
    const missing = await rejects(sftCommand(['--config', path.join(dir, 'nope.yaml')]));
    expect(missing.code).toBe('FILE_NOT_FOUND');
    const stray = await rejects(runCli(['sft', 'stray-word']));
    expect(stray.message).toMatch(/Unexpected argument 'stray-word'/);
  });
});
