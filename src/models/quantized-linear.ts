// A 4-bit linear weight held in bitsandbytes' layout (packed NF4/FP4 codes + per-block absmax), as it
// enters graphs: packed bytes and absmax as initializers, the forward through com.microsoft.MatMulBnb4
// (transB=1), and a dequantised [N, K] value for the backward (dx = dy·W) and merges.

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import type { Graph } from '../graph/index.js';
import type { QuantizedWeight } from '../nn/context.js';
import {
  dequantize4bit,
  parsePrequantized4bit,
  quantize4bit,
  serializeQuantized4bit,
  type Quantized4bit,
  type QuantType4bit,
} from '../quant/index.js';
import { dequantize4bitGraph, registerBnb4Gradient } from '../../kernels/nf4-dequant.js';
import type { QuantizedLinearSource } from './build-context.js';

/** bitsandbytes quantises every nn.Linear of the decoder; lm_head and skip-listed modules stay fp. */
export function isQuantizableLinear(weightName: string, skipModules: readonly string[]): boolean {
  if (!/^model\.layers\.\d+\.(self_attn|mlp)\.[a-z_]+_proj\.weight$/.test(weightName)) return false;
  const module = weightName.slice(0, -'.weight'.length);
  return !skipModules.some((s) => module === s || module.endsWith(`.${s}`));
}

let bnb4GradientRegistered = false;

export class QuantizedLinear implements QuantizedLinearSource {
  readonly outFeatures: number;
  readonly inFeatures: number;

  constructor(readonly q: Quantized4bit) {
    if (q.shape.length !== 2) throw new TsFinetuneError('QUANT_ERROR', `4-bit weight must be 2-D, got [${q.shape.join(', ')}]`);
    this.outFeatures = q.shape[0]!;
    this.inFeatures = q.shape[1]!;
  }

  static quantize(name: string, t: Tensor, opts: { quantType: QuantType4bit; doubleQuant: boolean }): QuantizedLinear {
    try {
      return new QuantizedLinear(quantize4bit(t, { quantType: opts.quantType, doubleQuant: opts.doubleQuant, blocksize: 64 }));
    } catch (e) {
      throw new TsFinetuneError('QUANT_ERROR', `Quantising '${name}': ${(e as Error).message}`, { tensor: name }, { cause: e });
    }
  }

  static fromSerialized(name: string, parts: Map<string, Tensor>): QuantizedLinear {
    const m = new Map<string, Tensor>();
    for (const [suffix, t] of parts) m.set(`${name}${suffix}`, t);
    return new QuantizedLinear(parsePrequantized4bit(m, name));
  }

  get quantType(): QuantType4bit {
    return this.q.quantType;
  }

  /** The fp32 weight [out, in]. */
  dequantize(): Tensor<'float32'> {
    return new Tensor('float32', [this.outFeatures, this.inFeatures], dequantize4bit(this.q));
  }

  stateDict(weightName: string): Map<string, Tensor> {
    return serializeQuantized4bit(weightName, this.q);
  }

  toGraph(g: Graph, weightName: string): QuantizedWeight {
    // The backward through MatMulBnb4 (dx = dy · dequant(W)) lives in kernels/; register it on first use.
    if (!bnb4GradientRegistered) {
      registerBnb4Gradient();
      bnb4GradientRegistered = true;
    }
    // A second pass over the same graph (e.g. the DPO reference forward) reuses the same initializers.
    const packed =
      g.initializers.get(`${weightName}.packed`)?.value ??
      g.initializer(`${weightName}.packed`, new Tensor('uint8', [this.q.packed.length], this.q.packed), {
        qualified: true,
        external: this.q.packed.length >= 1 << 20,
      });
    const absmax =
      g.initializers.get(`${weightName}.absmax`)?.value ??
      g.initializer(`${weightName}.absmax`, new Tensor('float32', [this.q.absmax.length], this.q.absmax), { qualified: true });
    const { outFeatures, inFeatures } = this;
    const { blocksize, quantType } = this.q;
    return {
      kind: 'bnb4',
      packed,
      absmax,
      outFeatures: this.outFeatures,
      inFeatures: this.inFeatures,
      blockSize: this.q.blocksize,
      quantType: this.q.quantType,
      dequantize: (graph: Graph) =>
        dequantize4bitGraph(graph, packed, absmax, { shape: [outFeatures, inFeatures], blocksize, quantType }),
    };
  }
}
