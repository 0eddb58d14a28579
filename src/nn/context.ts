// What a block needs to build itself: the graph, where each HF parameter comes from (a frozen initializer,
// a trainable graph input, or a 4-bit packed weight), and the adapters that wrap linear layers (LoRA).
// Adapters are an interface here so src/peft can implement them without src/nn knowing about PEFT.

import type { Graph, Value } from '../graph/index.js';

/** A 4-bit bitsandbytes-layout linear weight, as graph values. */
export interface QuantizedWeight {
  kind: 'bnb4';
  packed: Value; // uint8 [ceil(N·K / 2)]
  absmax: Value; // float32 [ceil(N·K / blockSize)] (double quant already undone at load or in-graph)
  outFeatures: number; // N
  inFeatures: number; // K
  blockSize: number;
  quantType: 'nf4' | 'fp4';
  /** Emit the dequantised weight [N, K] (used by the backward dx = dy·W and by merges). */
  dequantize(g: Graph): Value;
}

export type LinearWeight = { kind: 'dense'; weight: Value } | QuantizedWeight;

/** Wraps a linear layer: gets its input and the base output, returns the new output (PEFT's LoRA layer). */
export interface LinearAdapter {
  apply(ctx: BuildContext, modulePath: string, x: Value, base: Value, weight: LinearWeight): Value;
}

export interface BuildContext {
  readonly g: Graph;
  /** The Value of HF parameter `name` (e.g. 'model.norm.weight'). Throws naming it when missing. */
  param(name: string): Value;
  hasParam(name: string): boolean;
  /** The weight of linear module `modulePath` (without '.weight'): dense or 4-bit. */
  linearWeight(modulePath: string): LinearWeight;
  /** Adapters by module path, e.g. 'model.layers.0.self_attn.q_proj'. */
  readonly adapters: ReadonlyMap<string, LinearAdapter>;
  /** Whether adapters are active (false = PEFT's disable_adapter(), e.g. the DPO reference pass). */
  readonly adaptersEnabled: boolean;
  /** Dropout is applied only when training. */
  readonly training: boolean;
}
