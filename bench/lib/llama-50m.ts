// Shared by the benchmarks: the 50M-parameter Llama shape of issues 6 and 7 with random weights, a fixed
// random batch, and the CPU's FMA peak (bench/fma-peak.c compiled with g++ at bench time; AVX-512 where the
// CPU has it, because MLAS uses it and an AVX2-only peak would be a third of the true one).
// Not a benchmark itself: bench/run.ts only runs the files directly in bench/.

import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor } from '../../src/core/tensor.js';
import { CausalLM } from '../../src/models/causal-lm.js';
import { parseConfig, type CausalLMConfig } from '../../src/models/config.js';
import type { BatchFeeds } from '../../src/models/program.js';
import { shiftLabels } from '../../src/nn/loss.js';

const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

export function llamaConfig(layers = 8): CausalLMConfig {
  return parseConfig({
    model_type: 'llama',
    vocab_size: 32000,
    hidden_size: 512,
    intermediate_size: 1376,
    num_hidden_layers: layers,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
  });
}

/** Random weights (uniform, std 0.02; norms 1), xorshift-filled. */
export function randomModel(cfg: CausalLMConfig): CausalLM {
  const { hiddenSize: C, intermediateSize: F, numAttentionHeads: H, numKeyValueHeads: K, headDim: D, vocabSize: V } = cfg;
  let s = 0x9e3779b9 >>> 0;
  const a = 0.02 * Math.sqrt(3);
  const rand = (shape: number[]): Tensor<'float32'> => {
    const n = shape.reduce((x, y) => x * y, 1);
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      d[i] = ((s >>> 0) / 4294967296 - 0.5) * 2 * a;
    }
    return new Tensor('float32', shape, d);
  };
  const ones = (n: number): Tensor<'float32'> => new Tensor('float32', [n], new Float32Array(n).fill(1));
  const w = new Map<string, Tensor<'float32'>>();
  w.set('model.embed_tokens.weight', rand([V, C]));
  for (let i = 0; i < cfg.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    w.set(`${p}.input_layernorm.weight`, ones(C));
    w.set(`${p}.post_attention_layernorm.weight`, ones(C));
    w.set(`${p}.self_attn.q_proj.weight`, rand([H * D, C]));
    w.set(`${p}.self_attn.k_proj.weight`, rand([K * D, C]));
    w.set(`${p}.self_attn.v_proj.weight`, rand([K * D, C]));
    w.set(`${p}.self_attn.o_proj.weight`, rand([C, H * D]));
    w.set(`${p}.mlp.gate_proj.weight`, rand([F, C]));
    w.set(`${p}.mlp.up_proj.weight`, rand([F, C]));
    w.set(`${p}.mlp.down_proj.weight`, rand([C, F]));
  }
  w.set('model.norm.weight', ones(C));
  w.set('lm_head.weight', rand([V, C]));
  return new CausalLM(cfg, w, new Map(), 'random-llama-50m');
}

export function randomBatch(cfg: CausalLMConfig, B: number, T: number): BatchFeeds {
  let s = 12345;
  const ids = new BigInt64Array(B * T);
  for (let i = 0; i < ids.length; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    ids[i] = BigInt(s % cfg.vocabSize);
  }
  const pos = new BigInt64Array(B * T);
  for (let i = 0; i < pos.length; i++) pos[i] = BigInt(i % T);
  return {
    inputIds: ids,
    attentionMask: new BigInt64Array(B * T).fill(1n),
    positionIds: pos,
    targets: shiftLabels(ids, B, T),
    extras: { loss_scale: Tensor.fromNumbers([1 / (B * (T - 1))], []) },
    stepSeed: 0,
  };
}

export interface FmaResult {
  width: string;
  threads: number;
  wallGflops: number;
  cpuGflops: number;
}

let fmaBinary: string | undefined;
export function fmaPeak(seconds: number, threads: number): FmaResult[] {
  if (!fmaBinary) {
    fmaBinary = join(tmpdir(), `ts-finetune-fma-peak-${process.pid}`);
    const flags = ['-O2', '-mavx2', '-mfma', '-fopenmp'];
    // MLAS uses AVX-512 on CPUs that have it: without -mavx512f the "peak" would be half the true one.
    if (/\bavx512f\b/.test(readFileSync('/proc/cpuinfo', 'utf8'))) flags.push('-mavx512f');
    execFileSync('g++', [...flags, '-x', 'c', join(BENCH_DIR, 'fma-peak.c'), '-o', fmaBinary]);
    const bin = fmaBinary;
    process.on('exit', () => rmSync(bin, { force: true }));
  }
  const out = execFileSync(fmaBinary, [String(seconds), String(threads)], { encoding: 'utf8' });
  return out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as FmaResult);
}
