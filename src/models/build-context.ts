// Resolves HF parameter names to graph values for one graph: trainable parameters come in as graph
// inputs (the caller made them), frozen ones become initializers (external data when large, so the
// protobuf stays small), and 4-bit linears become their packed form. Cached per graph, so a weight
// used twice (tied embeddings) is one initializer.

import { TsFinetuneError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { Graph, Value } from '../graph/index.js';
import type { BuildContext, LinearAdapter, LinearWeight, QuantizedWeight } from '../nn/context.js';

/** How a 4-bit weight puts itself into a graph (implemented with src/quant + kernels/). */
export interface QuantizedLinearSource {
  outFeatures: number;
  inFeatures: number;
  toGraph(g: Graph, weightName: string): QuantizedWeight;
}

export interface WeightSource {
  dense: ReadonlyMap<string, Tensor<'float32'>>;
  quantized: ReadonlyMap<string, QuantizedLinearSource>;
}

export interface ContextOptions {
  /** Parameters fed as graph inputs (by HF name). */
  trainable?: ReadonlyMap<string, Value>;
  adapters?: ReadonlyMap<string, LinearAdapter>;
  adaptersEnabled?: boolean;
  training?: boolean;
  /** Initializers at least this many bytes go to external data (default 1 MiB). */
  externalBytes?: number;
}

export function createBuildContext(g: Graph, weights: WeightSource, opts: ContextOptions = {}): BuildContext {
  const values = new Map<string, Value>();
  const quantValues = new Map<string, QuantizedWeight>();
  const externalBytes = opts.externalBytes ?? 1 << 20;
  const param = (name: string): Value => {
    const t = opts.trainable?.get(name);
    if (t) return t;
    const hit = values.get(name) ?? g.initializers.get(name)?.value; // a second pass over the same graph shares weights
    if (hit) return hit;
    const tensor = weights.dense.get(name);
    if (!tensor) {
      const hint = weights.quantized.has(name) ? ' (it is stored 4-bit: use linearWeight)' : '';
      throw new TsFinetuneError('MISSING_TENSOR', `Model has no parameter '${name}'${hint}`, { tensor: name });
    }
    const v = g.initializer(name, tensor, { qualified: true, external: tensor.byteLength >= externalBytes });
    values.set(name, v);
    return v;
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
    adapters: opts.adapters ?? new Map(),
    adaptersEnabled: opts.adaptersEnabled ?? true,
    training: opts.training ?? false,
  };
}
