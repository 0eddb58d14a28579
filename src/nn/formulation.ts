// Which ONNX formulation the nn blocks emit for a graph, where more than one computes the same function:
// RoPE and RMSNorm as fused ORT ops or from primitives, and the layout of the training attention. The
// defaults are the forms measured fastest (bench/lora-step.ts, docs/performance.md); the alternatives stay
// so the bench can measure A/B in one process, and so a regression can be bisected.
// Set per graph (by buildStepGraph from StepGraphOptions.formulation), read by the blocks in src/nn.
// Not here: session options (src/autodiff/session-options.ts), the gradient rules of the fused ops
// (src/autodiff/rules-nn.ts).

import type { Graph } from '../graph/index.js';

export interface NnFormulation {
  /** 'fused': com.microsoft RotaryEmbedding (backward: the same op with −sin); 'primitives': Split/Neg/Concat/Mul/Add. */
  rope: 'fused' | 'primitives';
  /** 'fused': SimplifiedLayerNormalization (its inv_std_var reused by the backward); 'primitives': ReduceMean/Sqrt/… */
  rmsNorm: 'fused' | 'primitives';
  /**
   * Training attention (no KV cache): 'stacked' multiplies [B, K, G·T, D] query rows by each KV head (no
   * broadcast operand, so no ReduceSum over the G axis in the backward); 'grouped' multiplies
   * [B, K, G, T, D] by K/V broadcast as [B, K, 1, T, D].
   */
  attention: 'stacked' | 'grouped';
  /**
   * 'stacked' attention in causal query blocks of this many tokens (rounded down to a divisor of T), each
   * reading only the keys up to its last query; 0 = one block of all T.
   */
  attentionBlock: number;
  /**
   * 'stacked' attention's softmax(q kᵀ) v per block: 'function' is kernels/attention-block.ts (one call with
   * a FlashAttention-style backward); 'primitives' is MatMul / Add / Softmax / MatMul differentiated op by op.
   */
  attentionCore: 'function' | 'primitives';
  /**
   * With 'function' and blocks: a block reads its key prefix in tiles of the block's own size
   * (kernels/attention-tiles.ts), so every block's score and probability tensors have one shape.
   */
  attentionKeyTiles: boolean;
  /**
   * LoRA on modules that read the same input (q/k/v, gate/up): 'shared' computes x·Aᵀ of the siblings in one
   * GEMM (src/peft/shared-input.ts); 'separate' does one thin GEMM per module.
   */
  loraInput: 'shared' | 'separate';
  /**
   * The causal-LM head + loss of a training step through a frozen head (LoRA / QLoRA), without gradient
   * checkpointing: 'chunked' is kernels/lm-head-loss.ts (token chunks whose dh is computed in the forward),
   * 'plain' the [B, T, V] logits and src/nn/loss.ts differentiated op by op. With checkpointing it is always
   * 'chunked' (memory).
   */
  lmHeadLoss: 'chunked' | 'plain';
  /** Largest float32 logits chunk of the chunked head + loss, in bytes. */
  lmHeadChunkBytes: number;
}

export const DEFAULT_NN_FORMULATION: Readonly<NnFormulation> = Object.freeze({
  rope: 'fused',
  rmsNorm: 'fused',
  attention: 'stacked',
  attentionBlock: 0,
  attentionCore: 'function',
  attentionKeyTiles: true,
  loraInput: 'shared',
  lmHeadLoss: 'plain',
  lmHeadChunkBytes: 32 * 2 ** 20,
});

const byGraph = new WeakMap<Graph, NnFormulation>();

/** Override some choices for graph `g` (before its blocks are built). */
export function setNnFormulation(g: Graph, f: Partial<NnFormulation>): void {
  byGraph.set(g, { ...nnFormulation(g), ...f });
}

export function nnFormulation(g: Graph): Readonly<NnFormulation> {
  return byGraph.get(g) ?? DEFAULT_NN_FORMULATION;
}
