// Shared by the peft tests: loading the tiny fixture models and the golden LoRA files, and the normwise
// relative error the tolerance is stated in.
import { readFileSync } from 'node:fs';
import { readSafetensors } from '../../src/io/index.js';
import { readConfig } from '../../src/models/config.js';
import { loadWeights } from '../../src/models/weights.js';
import { CausalLM } from '../../src/models/causal-lm.js';
import type { Tensor } from '../../src/core/index.js';

export const FIXTURES = 'test/fixtures';

export async function loadTiny(name: string): Promise<CausalLM> {
  const dir = `${FIXTURES}/models/${name}`;
  const cfg = await readConfig(dir);
  const w = await loadWeights(dir, cfg);
  return new CausalLM(cfg, w.dense, new Map(), dir);
}

export interface LoraGolden {
  tensors: Map<string, Tensor>;
  meta: { case: string; model_dir: string; adapter_dir: string; loss: number; scaling: number };
  inputIds: number[][];
  attentionMask: number[][];
  labels: number[][];
}

function rows(t: Tensor): number[][] {
  const [B, T] = t.dims as [number, number];
  const d = t.data as BigInt64Array;
  return Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, i) => Number(d[b * T + i]!)));
}

export async function loadLoraGolden(name: string): Promise<LoraGolden> {
  const tensors = await readSafetensors(`${FIXTURES}/golden/lora-${name}.safetensors`);
  const meta = JSON.parse(readFileSync(`${FIXTURES}/golden/lora-${name}.json`, 'utf8'));
  return {
    tensors,
    meta,
    inputIds: rows(tensors.get('input_ids')!),
    attentionMask: rows(tensors.get('attention_mask')!),
    labels: rows(tensors.get('labels')!),
  };
}

/** ||a − b|| / ||b|| */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num) / Math.sqrt(den);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, skip?: (i: number) => boolean): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) if (!skip?.(i)) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

import { StepProgram } from '../../src/models/program.js';
import { causalLmObjective } from '../../src/models/step-graph.js';
import { makeFeeds } from '../../src/models/batch.js';
import { Tensor as T } from '../../src/core/index.js';

/** Session options that keep the tests fast: ORT in this thread, no graph optimisation passes. */
export const FAST = { worker: false, graphOptimizationLevel: 'disabled' } as const;

/** Logits of a plain CausalLM through a frozen step program compiled with FAST options. */
export async function baseLogits(model: CausalLM, batch: { inputIds: number[][]; attentionMask?: number[][] }): Promise<Float32Array> {
  const { feeds, B, T: len } = makeFeeds(batch);
  const prog = await StepProgram.compile(model.asFrozen(), { B, T: len, objective: causalLmObjective, withGrad: false, withLogits: true }, FAST);
  const res = await prog.run({ ...feeds, extras: { loss_scale: T.fromNumbers([0], []) } });
  await prog.release();
  return res.logits!.data;
}
