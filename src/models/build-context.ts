// Resolves HF parameter names to graph values for one graph: trainable parameters come in as graph
// inputs (the caller made them), frozen ones become initializers, and 4-bit linears become their packed
// form. A frozen weight stored in 16 bits (a 4-bit model's embeddings, norms, lm_head: float-weights.ts)
// stays 16-bit as an initializer and is cast to float32 in the graph where it is used (DESIGN.md: the CPU
// computes in float32): the embedding casts the gathered rows, lm_head goes through kernels/half-linear.ts
// (no float32 copy of the head lives between forward and backward), small ones are cast whole.
// Cached per graph, so a weight used twice (tied embeddings, the DPO reference pass) is one initializer.
// How initializers travel to ORT (external data) is decided when the graph is compiled (program.ts).

import { TsFinetuneError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { op, type Graph, type Value } from '../graph/index.js';
import type { BuildContext, LinearAdapter, LinearWeight, QuantizedWeight } from '../nn/context.js';
import { halfLinear } from '../../kernels/half-linear.js';
import { FloatWeights, type StoredFloat } from './float-weights.js';
import { lentWeightsOf } from './lent-weights.js';

/** How a 4-bit weight puts itself into a graph (implemented with src/quant + kernels/). */
export interface QuantizedLinearSource {
  outFeatures: number;
  inFeatures: number;
  toGraph(g: Graph, weightName: string): QuantizedWeight;
}

export interface WeightSource {
  /** float32 tensors, or a FloatWeights whose entries may be stored in 16 bits. */
  dense: ReadonlyMap<string, Tensor<'float32'>> | FloatWeights;
  quantized: ReadonlyMap<string, QuantizedLinearSource>;
}

export interface ContextOptions {
  /** Parameters fed as graph inputs (by HF name). */
  trainable?: ReadonlyMap<string, Value>;
  adapters?: ReadonlyMap<string, LinearAdapter>;
  adaptersEnabled?: boolean;
  training?: boolean;
}

/** The nn BuildContext plus what the model's own builders (decoder.ts) do with 16-bit weights. */
export interface ModelBuildContext extends BuildContext {
  /** Embedding lookup ids [B, T] → [B, T, C] float32 (a 16-bit table is gathered, then the rows cast). */
  embed(name: string, ids: Value): Value;
  /** x [..., C] · W[name]ᵀ → [..., N] float32 for a dense weight [N, C] (16-bit: kernels/half-linear.ts). */
  matmulT(name: string, x: Value): Value;
  /** Whether `name` is a 4-bit weight used frozen (linearWeight gives its packed form). */
  quantizedHas(name: string): boolean;
  /** The initializer of a frozen dense weight as stored (float32 or 16-bit); undefined when trainable or 4-bit. */
  frozenWeight(name: string): Value | undefined;
}

function isHalf(v: Value): boolean {
  return v.dtype === 'float16' || v.dtype === 'bfloat16';
}

export function createBuildContext(g: Graph, weights: WeightSource, opts: ContextOptions = {}): ModelBuildContext {
  const casts = new Map<string, Value>();
  const lent = lentWeightsOf(g);
  const quantValues = new Map<string, QuantizedWeight>();
  const stored = (name: string): StoredFloat | undefined =>
    weights.dense instanceof FloatWeights ? weights.dense.stored(name) : weights.dense.get(name);
  /** The value as stored: a trainable input (float32), or the initializer (float32 or 16-bit). */
  const raw = (name: string): Value => {
    const t = opts.trainable?.get(name);
    if (t) return t;
    const hit = g.initializers.get(name)?.value; // a second pass over the same graph shares weights
    if (hit) return hit;
    // A lending graph (a step on the CPU) takes float16 weights (and float32 ones where ORT does not
    // pre-pack) as inputs the host lends for each run.
    const lendable = lent && weights.dense instanceof FloatWeights ? weights.dense.lendable(name, lent.float32) : undefined;
    if (lent && lendable) return lent.input(g, name, lendable);
    const tensor = stored(name);
    if (!tensor) {
      const hint = weights.quantized.has(name) ? ' (it is stored 4-bit: use linearWeight)' : '';
      throw new TsFinetuneError('MISSING_TENSOR', `Model has no parameter '${name}'${hint}`, { tensor: name });
    }
    return g.initializer(name, tensor, { qualified: true });
  };
  const param = (name: string): Value => {
    const v = raw(name);
    if (!isHalf(v)) return v;
    let c = casts.get(name);
    if (!c) {
      c = op.Cast(v, 'float32');
      casts.set(name, c);
    }
    return c;
  };
  return {
    g,
    param,
    hasParam: (name) => (opts.trainable?.has(name) ?? false) || weights.dense.has(name) || weights.quantized.has(name),
    linearWeight(modulePath: string): LinearWeight {
      const name = `${modulePath}.weight`;
      const q = weights.quantized.get(name);
      if (q && !opts.trainable?.has(name)) {
        let qv = quantValues.get(name);
        if (!qv) {
          qv = q.toGraph(g, name);
          quantValues.set(name, qv);
        }
        return qv;
      }
      return { kind: 'dense', weight: param(name) };
    },
    embed(name: string, ids: Value): Value {
      const w = raw(name);
      const rows = op.Gather(w, ids, 0); // [B, T, C]
      return isHalf(w) ? op.Cast(rows, 'float32') : rows;
    },
    matmulT(name: string, x: Value): Value {
      const w = raw(name);
      return isHalf(w) ? halfLinear(g, x, w) : op.MatMul(x, op.Transpose(w, [1, 0]));
    },
    quantizedHas: (name) => weights.quantized.has(name) && !opts.trainable?.has(name),
    frozenWeight: (name) => (opts.trainable?.has(name) || weights.quantized.has(name) ? undefined : raw(name)),
    adapters: opts.adapters ?? new Map(),
    adaptersEnabled: opts.adaptersEnabled ?? true,
    training: opts.training ?? false,
  };
}
