// Shared by the SFT / trainer-loop tests: the tiny Llama fixture with LoRA, a character tokenizer whose ids
// fit its 128-entry vocabulary (from dpo-helpers), quiet SFT arguments, text rows of different lengths, and
// file helpers (adapter bytes, temp folders, a trainer that records the dataset rows of each micro-batch).
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { AutoModelForCausalLM, ParamLayout, type CausalLM, type TrainableModel } from '../../src/models/index.js';
import { LoraConfig, type LoraConfigInit } from '../../src/peft/index.js';
import { SFTConfig, SFTTrainer, type MicroBatch, type SFTTrainerInit } from '../../src/train/index.js';
import type { TokenizedExample } from '../../src/train/collator.js';
import type { SessionOptions } from '../../src/runtime/index.js';
import { FAST, charTokenizer } from './dpo-helpers.js';
import { tempDir } from '../helpers/temp-dir.js';

export { FAST, charTokenizer };
export const GQA = 'test/fixtures/models/llama-gqa';

/** A temp folder removed after the calling test file (see helpers/temp-dir.ts). */
export function tmp(prefix: string): string {
  return tempDir(`tsft-${prefix}-`);
}

/** Text rows of clearly different lengths (5 … 40 tokens with the char tokenizer), so label-token
 * normalisation and padding matter. */
export const TEXTS = [
  'a cow says moo',
  'hi',
  'the grass is green and the sky is blue',
  'two plus two is four',
  'ducks quack',
  'bees buzz in the hive all day long',
  'ok then',
  'a hen lives in a coop',
];

export async function gqa(): Promise<CausalLM> {
  return AutoModelForCausalLM.fromPretrained(GQA, { device: 'cpu' });
}

export function lora(init: LoraConfigInit = {}): LoraConfig {
  return new LoraConfig({ r: 8, loraAlpha: 16, targetModules: 'all-linear', loraDropout: 0, ...init });
}

/** No logging sinks, no progress bar, no checkpoints, no recomputation, CPU, one graph length. */
export function quietArgs(over: Record<string, unknown>): SFTConfig {
  return new SFTConfig({
    reportTo: 'none',
    disableTqdm: true,
    saveStrategy: 'no',
    gradientCheckpointing: false,
    device: 'cpu',
    maxLength: 48,
    padToMultipleOf: 48,
    loggingSteps: 1,
    ...over,
  } as never);
}

/** The trained values of a trainer's model, flat, in its own layout order. */
export function trainedValues(model: TrainableModel): Float32Array {
  return model.trainableValues(new ParamLayout(model.trainableParams()));
}

export function fileBytes(...parts: string[]): Buffer {
  return readFileSync(path.join(...parts));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * An SFTTrainer that records the dataset rows of every training micro-batch, exposes its examples, and
 * compiles its step graphs without ORT's graph optimisations (3× faster to build; every comparison in these
 * tests is between runs compiled the same way).
 */
export class RecordingSFTTrainer extends SFTTrainer {
  readonly seen: number[][] = [];
  constructor(init: SFTTrainerInit) {
    super(init);
  }
  protected override stepSessionOptions(): SessionOptions {
    return { ...super.stepSessionOptions(), ...FAST };
  }
  protected override async makeBatch(examples: TokenizedExample[], rows: number[], B: number, training?: boolean): Promise<MicroBatch> {
    if (training !== false) this.seen.push([...rows]);
    return super.makeBatch(examples, rows, B);
  }
  async examples(): Promise<{ train: TokenizedExample[]; eval: TokenizedExample[] }> {
    await this.ensurePrepared();
    return { train: this.trainExamples, eval: this.evalExamples };
  }
}
