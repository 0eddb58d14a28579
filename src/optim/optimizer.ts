// The optimizer contract the training loop uses. Parameters, gradients and optimizer state are flat
// float32 vectors (see src/models/param-layout.ts), so every optimizer is one fused graph over pages of
// that vector (kernels/). Gradients arrive already clipped; the loop computes the pre-clip norm itself.
// Implementations: adamw.ts (adamw_torch, paged_adamw_32bit), adamw-8bit.ts (adamw_8bit, paged_adamw_8bit).

import type { Tensor } from '../core/tensor.js';

export type OptimizerName = 'adamw_torch' | 'adamw_8bit' | 'paged_adamw_32bit' | 'paged_adamw_8bit';

export interface OptimizerOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Per-element weight-decay multiplier (1 = decay, 0 = none: HF skips biases and norm weights). */
  decayMask?: Float32Array;
  /** 'cpu' | 'cuda' | 'webgpu' | 'auto' (where the update graph runs). */
  device?: 'cpu' | 'cuda' | 'webgpu' | 'auto';
  /**
   * How the 32-bit AdamW update runs: 'host' = a JS loop over the vector (the default on 'cpu': several
   * times faster than ORT's elementwise passes, bit-identical), 'graph' = the kernels/adamw.ts update graph
   * in an ORT session (the default on other devices). The 8-bit optimizers always use their graph.
   */
  engine?: 'host' | 'graph';
  /** Elements per page for paged optimizers (the state's device footprint is one page group). */
  pageSize?: number;
  /**
   * [start, end) of each trainable tensor in the flat vector (ascending, disjoint). 8-bit AdamW keeps
   * float32 state for tensors under 4096 elements and blocks of 256 per tensor, as bitsandbytes does per
   * parameter; without ranges the whole vector counts as one tensor. AdamW ignores it.
   */
  paramRanges?: readonly (readonly [number, number])[];
}

export interface Optimizer {
  readonly name: OptimizerName;
  /** Number of updates applied so far (torch's `state['step']`). */
  readonly stepCount: number;
  /** One AdamW update of `params` in place. */
  step(params: Float32Array, grads: Float32Array, lr: number): Promise<void>;
  /** Everything needed to resume bit-identically (moments, 8-bit codes and absmax, step). */
  stateDict(): Map<string, Tensor>;
  loadStateDict(state: ReadonlyMap<string, Tensor>): void;
  release(): Promise<void>;
}
