// A 4-bit linear weight held in bitsandbytes' layout (packed NF4/FP4 codes + per-block absmax), as it
// enters graphs: packed bytes and absmax as initializers, the forward through com.microsoft.MatMulBnb4
// (transB=1), and a dequantised [N, K] value for the backward (dx = dy·W) and merges.
// With double quantisation only what bitsandbytes stores is held — the 8-bit absmax codes, the nested
// absmax, map and offset (≈ 0.127 bits per weight) — and the float32 absmax (0.5 bits per weight) is
// rebuilt where it is used: in the graph (kernels/nf4-dequant.ts nestedAbsmaxGraph) and on the host by `q`.

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import type { Graph, Value } from '../graph/index.js';
import type { QuantizedWeight } from '../nn/context.js';
import {
  dequantize4bit,
  dequantizeNestedAbsmax,
  parsePrequantized4bit,
  quantize4bit,
  serializeQuantized4bit,
  type Quantized4bit,
  type QuantType4bit,
} from '../quant/index.js';
import { dequantize4bitGraph, nestedAbsmaxGraph, registerBnb4Gradient } from '../../kernels/nf4-dequant.js';
import type { QuantizedLinearSource } from './build-context.js';

/** bitsandbytes quantises every nn.Linear of the decoder; lm_head and skip-listed modules stay fp. */
export function isQuantizableLinear(weightName: string, skipModules: readonly string[]): boolean {
  if (!/^model\.layers\.\d+\.(self_attn|mlp)\.[a-z_]+_proj\.weight$/.test(weightName)) return false;
  const module = weightName.slice(0, -'.weight'.length);
  return !skipModules.some((s) => module === s || module.endsWith(`.${s}`));
}

let bnb4GradientRegistered = false;

/** A Quantized4bit as held: without the float32 absmax when the double-quant state can rebuild it. */
type Held = Omit<Quantized4bit, 'absmax'> & { absmax?: Float32Array };

export class QuantizedLinear implements QuantizedLinearSource {
  readonly outFeatures: number;
  readonly inFeatures: number;
  private readonly held: Held;

  constructor(q: Quantized4bit) {
    if (q.shape.length !== 2) throw new TsFinetuneError('QUANT_ERROR', `4-bit weight must be 2-D, got [${q.shape.join(', ')}]`);
    this.outFeatures = q.shape[0]!;
    this.inFeatures = q.shape[1]!;
    if (q.nested) {
      const { absmax: _rebuilt, ...rest } = q;
      this.held = rest;
    } else this.held = q;
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

  /** The full bitsandbytes state (a double-quantised weight's float32 absmax is rebuilt on each call). */
  get q(): Quantized4bit {
    const h = this.held;
    if (h.absmax) return { ...h, absmax: h.absmax };
    return { ...h, absmax: dequantizeNestedAbsmax(h.nested!) };
  }

  get quantType(): QuantType4bit {
    return this.held.quantType;
  }

  /** Bytes held on the host. */
  get byteLength(): number {
    const n = this.held.nested;
    return this.held.packed.byteLength + (this.held.absmax?.byteLength ?? 0) + (n ? n.code.byteLength + n.nestedAbsmax.byteLength + n.quantMap.byteLength : 0);
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
    const init = (suffix: string, t: Tensor): Value => g.initializers.get(`${weightName}.${suffix}`)?.value ?? g.initializer(`${weightName}.${suffix}`, t, { qualified: true });
    const h = this.held;
    const packed = init('packed', new Tensor('uint8', [h.packed.length], h.packed));
    let absmax: Value;
    if (h.absmax) absmax = init('absmax', new Tensor('float32', [h.absmax.length], h.absmax));
    else {
      const n = h.nested!;
      absmax = nestedAbsmaxGraph(
        init('absmax_code', new Tensor('uint8', [n.code.length], n.code)),
        init('nested_absmax', new Tensor('float32', [n.nestedAbsmax.length], n.nestedAbsmax)),
        g.constant(new Tensor('float32', [n.quantMap.length], n.quantMap)), // the same map for every weight: one constant
        g.scalar(n.offset),
        n.blocksize,
      ); // [blocks] float32
    }
    const { outFeatures, inFeatures } = this;
    const { blocksize, quantType } = h;
    return {
      kind: 'bnb4',
      packed,
      absmax,
      outFeatures,
      inFeatures,
      blockSize: blocksize,
      quantType,
      dequantize: (graph: Graph) => dequantize4bitGraph(graph, packed, absmax, { shape: [outFeatures, inFeatures], blocksize, quantType }),
    };
  }
}
