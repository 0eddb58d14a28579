// Random Llama-shaped checkpoints for the memory benchmarks: HF tensor names and shapes in the order
// transformers saves them, and cheap deterministic values (the loaders do not care about them).
// Not a benchmark itself: bench/run.ts only runs the files directly in bench/.

import { Tensor } from '../../src/core/index.js';

export interface Shape {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
}

export /** HF names and shapes in the order transformers saves them. */
function tensorSpecs(s: Shape): [string, number[]][] {
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
