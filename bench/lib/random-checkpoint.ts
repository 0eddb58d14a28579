// Random Llama-shaped checkpoints for the memory benchmarks: HF tensor names and shapes in the order
// transformers saves them, and cheap deterministic values (the loaders do not care about them); the
// config.json of such a model, the ≥ 300M shape issues 6 and 7 measure on (`shapeFromArgs`), and the
// bench scripts' `--name value` argument reader.
// Not a benchmark itself: bench/run.ts only runs the files directly in bench/.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../../src/core/index.js';
import { saveSafetensors } from '../../src/io/index.js';

export interface Shape {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
}

/** `--name value` from argv (a following `--flag` is not a value). */
export function argOf(argv: readonly string[], name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? argv[i + 1] : undefined;
  return v !== undefined && !v.startsWith('--') ? v : dflt;
}

/**
 * The Llama shape of the memory benchmarks, from `--layers --hidden --intermediate --vocab`: by default
 * 24 layers, C=1024, H=16, K=8 (D=64), F=2816, V=32000 untied = 348.7M parameters (issues 6 and 7 ask for
 * ≥ 300M).
 */
export function shapeFromArgs(argv: readonly string[]): Shape {
  const hidden = Number(argOf(argv, 'hidden', '1024'));
  return {
    layers: Number(argOf(argv, 'layers', '24')),
    hidden,
    heads: hidden / 64,
    kvHeads: hidden / 128,
    intermediate: Number(argOf(argv, 'intermediate', String(Math.round((hidden * 11) / 4 / 64) * 64))),
    vocab: Number(argOf(argv, 'vocab', '32000')),
  };
}

/** config.json of a Llama with shape `s` (untied lm_head, fp32 on disk). */
export function llamaConfigJson(s: Shape): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    head_dim: s.hidden / s.heads,
    vocab_size: s.vocab,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    bos_token_id: 1,
    eos_token_id: 2,
  };
}

export function describeShape(s: Shape): string {
  return `Llama ${s.layers} layers, C=${s.hidden}, H=${s.heads}, K=${s.kvHeads}, F=${s.intermediate}, V=${s.vocab}, untied`;
}

/** HF names and shapes in the order transformers saves them. */
export function tensorSpecs(s: Shape): [string, number[]][] {
  const D = s.hidden / s.heads;
  const out: [string, number[]][] = [['model.embed_tokens.weight', [s.vocab, s.hidden]]];
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      [`${p}.input_layernorm.weight`, [s.hidden]],
      [`${p}.self_attn.q_proj.weight`, [s.heads * D, s.hidden]],
      [`${p}.self_attn.k_proj.weight`, [s.kvHeads * D, s.hidden]],
      [`${p}.self_attn.v_proj.weight`, [s.kvHeads * D, s.hidden]],
      [`${p}.self_attn.o_proj.weight`, [s.hidden, s.heads * D]],
      [`${p}.post_attention_layernorm.weight`, [s.hidden]],
      [`${p}.mlp.gate_proj.weight`, [s.intermediate, s.hidden]],
      [`${p}.mlp.up_proj.weight`, [s.intermediate, s.hidden]],
      [`${p}.mlp.down_proj.weight`, [s.hidden, s.intermediate]],
    );
  }
  out.push(['model.norm.weight', [s.hidden]], ['lm_head.weight', [s.vocab, s.hidden]]);
  return out;
}

/** Cheap deterministic noise (xorshift32), uniform in ±0.05: the loader does not care about the values. */
export function randomTensor(dims: number[], seed: number): Tensor<'float32'> {
  const n = dims.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    d[i] = (x / 4294967296) * 0.1;
  }
  return new Tensor('float32', dims, d);
}

/** Parameters and fp32 bytes of a checkpoint of shape `s` (for a folder written by an earlier run). */
export function checkpointSize(s: Shape): { bytes: number; params: number; shardBytes: number[] } {
  const params = tensorSpecs(s).reduce((a, [, d]) => a + d.reduce((x, y) => x * y, 1), 0);
  return { bytes: params * 4, params, shardBytes: [params * 4] };
}

/** Write the checkpoint shard by shard (greedy by byte size, as transformers' shard_checkpoint), holding one shard in memory. */
export async function writeRandomCheckpoint(
  dir: string,
  s: Shape,
  dtype: 'float32' | 'bfloat16',
  shards: number,
  config: Record<string, unknown>,
): Promise<{ bytes: number; params: number; shardBytes: number[] }> {
  const specs = tensorSpecs(s);
  const el = dtype === 'float32' ? 4 : 2;
  const total = specs.reduce((a, [, d]) => a + d.reduce((x, y) => x * y, 1) * el, 0);
  // A little slack so that greedy filling gives `shards` shards, not one more with the remainder.
  const limit = Math.ceil((total / shards) * 1.1);
  const groups: [string, number[]][][] = [[]];
  let size = 0;
  for (const spec of specs) {
    const b = spec[1].reduce((x, y) => x * y, 1) * el;
    if (size + b > limit && groups[groups.length - 1]!.length > 0) {
      groups.push([]);
      size = 0;
    }
    groups[groups.length - 1]!.push(spec);
    size += b;
  }
  const names = groups.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.safetensors`);
  const weightMap: Record<string, string> = {};
  const shardBytes: number[] = [];
  for (let g = 0; g < groups.length; g++) {
    const m = new Map<string, Tensor>();
    let sb = 0;
    for (const [name, dims] of groups[g]!) {
      // The seed depends on the name only, so the fp32 and bf16 checkpoints hold the same weights.
      let seed = 0;
      for (const c of name) seed = (Math.imul(seed, 31) + c.charCodeAt(0)) | 0;
      const t = randomTensor(dims, seed);
      m.set(name, dtype === 'float32' ? t : t.to('bfloat16'));
      weightMap[name] = names[g]!;
      sb += t.size * el;
    }
    await saveSafetensors(join(dir, names[g]!), m, { format: 'pt' });
    shardBytes.push(sb);
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return { bytes: total, params: total / el, shardBytes };
}
