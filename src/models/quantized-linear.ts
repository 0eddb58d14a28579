// A 4-bit linear weight held in bitsandbytes' layout (packed NF4/FP4 codes + per-block absmax), as it
// enters graphs: packed bytes and absmax as initializers (or, in a CPU step graph, as inputs lent from
// these very arrays for each run: lent-weights.ts), the forward through com.microsoft.MatMulBnb4
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
import { lentWeightsOf, owning, type LendableArray } from './lent-weights.js';

/** bitsandbytes quantises every nn.Linear of the decoder; lm_head and skip-listed modules stay fp. */
export function isQuantizableLinear(weightName: string, skipModules: readonly string[]): boolean {
  if (!/^model\.layers\.\d+\.(self_attn|mlp)\.[a-z_]+_proj\.weight$/.test(weightName)) return false;
  const module = weightName.slice(0, -'.weight'.length);
  return !skipModules.some((s) => module === s || module.endsWith(`.${s}`));
}

let bnb4GradientRegistered = false;

/** A Quantized4bit as held: without the float32 absmax when the double-quant state can rebuild it. */
type Held = Omit<Quantized4bit, 'absmax'> & { absmax?: Float32Array };

/** The arrays of a held weight a step graph can take as lent inputs (src/models/lent-weights.ts). */
type LentField = 'packed' | 'absmax' | 'code' | 'nestedAbsmax';

export class QuantizedLinear implements QuantizedLinearSource {
  readonly outFeatures: number;
  readonly inFeatures: number;
  private stored: Held;
  /** Arrays of this weight now lent to a running step (detached here until it hands them back). */
  private lentOut = 0;
  private lostWith: Error | undefined;

  constructor(q: Quantized4bit) {
    if (q.shape.length !== 2) throw new TsFinetuneError('QUANT_ERROR', `4-bit weight must be 2-D, got [${q.shape.join(', ')}]`);
    this.outFeatures = q.shape[0]!;
    this.inFeatures = q.shape[1]!;
    if (q.nested) {
      const { absmax: _rebuilt, ...rest } = q;
      this.stored = rest;
    } else this.stored = q;
  }

  /** The held arrays, refused while a running step has them or after they were lost with its worker. */
  private get held(): Held {
    if (this.lostWith) {
      throw new TsFinetuneError('RUNTIME_ERROR', `This 4-bit weight was lost with the session worker that crashed while a step ran (${this.lostWith.message}): load the model again`);
    }
    if (this.lentOut > 0) throw new TsFinetuneError('RUNTIME_ERROR', 'This 4-bit weight is in use by a running training step: await the step first');
    return this.stored;
  }

  private static fieldDType(f: LentField): 'uint8' | 'float32' {
    return f === 'packed' || f === 'code' ? 'uint8' : 'float32';
  }

  private read(f: LentField): Uint8Array | Float32Array {
    const h = this.stored;
    const a = f === 'packed' ? h.packed : f === 'absmax' ? h.absmax : f === 'code' ? h.nested?.code : h.nested?.nestedAbsmax;
    if (!a) throw new TsFinetuneError('GRAPH_ERROR', `4-bit weight has no ${f} array`);
    return a;
  }

  private write(f: LentField, a: Uint8Array | Float32Array): void {
    const h = this.stored;
    if (f === 'packed') this.stored = { ...h, packed: a as Uint8Array };
    else if (f === 'absmax') this.stored = { ...h, absmax: a as Float32Array };
    else if (f === 'code') this.stored = { ...h, nested: { ...h.nested!, code: a as Uint8Array } };
    else this.stored = { ...h, nested: { ...h.nested!, nestedAbsmax: a as Float32Array } };
  }

  /** One of this weight's arrays as a lent graph input (it must own its buffer: copied once if it does not). */
  private lendable(f: LentField): LendableArray {
    const dtype = QuantizedLinear.fieldDType(f);
    return {
      dtype,
      dims: [this.read(f).length],
      take: () => {
        if (this.lostWith) void this.held; // throws, naming the crash
        const a = owning(dtype, this.read(f));
        this.write(f, a);
        this.lentOut++;
        return a;
      },
      give: (a) => {
        this.write(f, a as Uint8Array | Float32Array);
        this.lentOut--;
      },
      lose: (why) => {
        this.lostWith = why;
        this.lentOut = 0;
      },
    };
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
    // A lending graph (a step on the CPU) takes the arrays as inputs the host lends for each run.
    const lent = lentWeightsOf(g);
    const init = (suffix: string, f: LentField): Value => {
      const name = `${weightName}.${suffix}`;
      if (lent) return lent.input(g, name, this.lendable(f));
      const a = this.read(f);
      return g.initializers.get(name)?.value ?? g.initializer(name, new Tensor(QuantizedLinear.fieldDType(f), [a.length], a), { qualified: true });
    };
    const h = this.held;
    const packed = init('packed', 'packed');
    let absmax: Value;
    if (h.absmax) absmax = init('absmax', 'absmax');
    else {
      const n = h.nested!;
      absmax = nestedAbsmaxGraph(
        init('absmax_code', 'code'),
        init('nested_absmax', 'nestedAbsmax'),
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
