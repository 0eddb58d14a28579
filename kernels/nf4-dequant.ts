// NF4 / FP4 dequantisation of bitsandbytes-layout 4-bit weights as ONNX model-local functions (domain
// 'ts_finetune'), bit-exact with src/quant's dequantize4bit: codebook[nibble] · absmax[block] in float32,
// first element of each byte in the high nibble, reshaped to the torch shape. With double quantisation
// the absmax is first rebuilt in-graph as nestedQuantMap[code] · nestedAbsmax[block of 256] + offset.
// The backward of com.microsoft.MatMulBnb4 (dx = dy · W) uses it through `bnb4Dequant`.
// Not here: the TS quantiser (src/quant), the forward matmul (MatMulBnb4, src/graph).
// Layout: bitsandbytes functional.dequantize_4bit / csrc/kernels.cu kDequantizeBlockwise.
//
// Body (per shape; functions are shape-specialised, the shape is in the name):
//   packed u8 [B] → Cast int32 → Gather from a [256, 2] table (row b = [code[b >> 4], code[b & 15]])
//   → [B, 2] → flat [2B] → (Pad to blocks·blocksize) → [blocks, blocksize] · absmax[:, None]
//   → flat → (Slice to n) → Reshape to shape.
// One Gather on a byte-indexed pair table replaces BitShift / BitwiseAnd / Concat: fewer nodes, and only
// ops every execution provider implements for these dtypes (uint8 bit ops are not everywhere).

import { Tensor, TsFinetuneError } from '../src/core/index.js';
import { defineFunction, op, type DefinedFunction, type Graph, type Value } from '../src/graph/index.js';
import { codebook4bit, type QuantType4bit } from '../src/quant/index.js';
import { matMulBnb4Gradient, registerFunctionGradient, type Bnb4Dequant } from '../src/autodiff/index.js';

export type DequantOutDType = 'float32' | 'float16' | 'bfloat16';

export interface Dequant4bitGraphOptions {
  /** torch shape of the weight, e.g. [out, in]. */
  shape: readonly number[];
  blocksize: number;
  quantType: QuantType4bit;
  /** Cast the float32 result to this dtype (bitsandbytes computes in float32, then casts). Default float32. */
  dtype?: DequantOutDType;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** [256, 2] float32: row b holds the codes of byte b's high and low nibbles. */
function pairTable(quantType: QuantType4bit): Tensor<'float32'> {
  const cb = codebook4bit(quantType);
  const t = new Float32Array(512);
  for (let b = 0; b < 256; b++) {
    t[2 * b] = cb[b >> 4]!;
    t[2 * b + 1] = cb[b & 15]!;
  }
  return new Tensor('float32', [256, 2], t);
}

/** codebook values [2·bytes] (flat, element order) of packed bytes, in float32. */
function decodeNibbles(g: Graph, packed: Value, quantType: QuantType4bit): Value {
  const idx = op.Cast(packed, 'int32'); // [B]
  const pairs = op.Gather(g.constant(pairTable(quantType)), idx, 0); // [B, 2]
  return op.Reshape(pairs, [packed.shape[0]! * 2]); // [2B]
}

/**
 * Multiply `values` [≥ n] block by block with `scale` [blocks] and keep the first n: pads to whole blocks
 * when the last one is partial (the padding is cut again) so one broadcast Mul covers the tail block.
 */
function scaleBlocks(values: Value, scale: Value, n: number, blocksize: number): Value {
  const blocks = scale.shape[0]!;
  const full = blocks * blocksize;
  const have = values.shape[0]!;
  const v = have === full ? values : have < full ? op.Pad(values, [0, full - have]) : op.Slice(values, [0], [full], [0]);
  const scaled = op.Mul(op.Reshape(v, [blocks, blocksize]), op.Unsqueeze(scale, [1])); // [blocks, blocksize]
  const flat = op.Reshape(scaled, [full]);
  return full === n ? flat : op.Slice(flat, [0], [n], [0]);
}

/**
 * decodeNibbles + scaleBlocks for a weight of whole blocks (n = blocks · blocksize, blocksize even): the
 * byte indices are viewed as [blocks, blocksize / 2] first, so the Gather yields [blocks, blocksize / 2, 2] and the
 * absmax Mul reads it with no Reshape between, which lets ORT write the product into the Gather's buffer:
 * one float32 copy of W in flight instead of two (the backward's peak of QLoRA: bench/lora-memory.ts).
 */
function decodeScaledWholeBlocks(g: Graph, packed: Value, absmax: Value, blocksize: number, quantType: QuantType4bit): Value {
  const blocks = absmax.shape[0]!;
  // Cast, then Reshape: a Reshape straight on `packed` (itself an anchoring Reshape in the backward) made ORT
  // 1.30's Reshape fusion emit a node reading a name it had removed.
  const idx = op.Reshape(op.Cast(packed, 'int32'), [blocks, blocksize / 2]); // [blocks, bs/2]
  const pairs = op.Gather(g.constant(pairTable(quantType)), idx, 0); // [blocks, bs/2, 2]
  return op.Mul(pairs, op.Reshape(absmax, [blocks, 1, 1])); // [blocks, bs/2, 2]
}

/** The dequantised values [n] in element order, scaled block by block. */
function dequantValues(g: Graph, packed: Value, absmax: Value, n: number, blocksize: number, quantType: QuantType4bit): Value {
  if (blocksize % 2 === 0 && absmax.shape[0]! * blocksize === n) return decodeScaledWholeBlocks(g, packed, absmax, blocksize, quantType);
  return scaleBlocks(decodeNibbles(g, packed, quantType), absmax, n, blocksize);
}

const cache = new Map<string, DefinedFunction>();

function cached(name: string, make: () => DefinedFunction): DefinedFunction {
  let f = cache.get(name);
  if (f === undefined) {
    f = make();
    cache.set(name, f);
  }
  return f;
}

/** The function `(packed u8 [⌈n/2⌉], absmax f32 [⌈n/bs⌉]) → f32 shape` for one weight shape. */
export function dequant4bitFunction(opts: Omit<Dequant4bitGraphOptions, 'dtype'>): DefinedFunction {
  const { shape, blocksize, quantType } = opts;
  const n = numel(shape);
  const name = `Bnb4Dequant_${quantType}_b${blocksize}_${shape.join('x')}`;
  return cached(name, () =>
    defineFunction(
      {
        name,
        inputs: [
          { name: 'packed', dtype: 'uint8', shape: [Math.ceil(n / 2)] },
          { name: 'absmax', dtype: 'float32', shape: [Math.ceil(n / blocksize)] },
        ],
        docString: `bitsandbytes ${quantType.toUpperCase()} dequantisation, blocksize ${blocksize}, shape [${shape.join(', ')}]`,
      },
      (g, [packed, absmax]) => {
        return [op.Reshape(dequantValues(g, packed!, absmax!, n, blocksize, quantType), shape)];
      },
    ),
  );
}

/**
 * The double-quant function `(packed, absmaxCode u8 [blocks], nestedAbsmax f32 [⌈blocks/256⌉],
 * nestedQuantMap f32 [256], offset f32 []) → f32 shape`.
 */
export function dequant4bitNestedFunction(opts: Omit<Dequant4bitGraphOptions, 'dtype'> & { nestedBlocksize?: number }): DefinedFunction {
  const { shape, blocksize, quantType } = opts;
  const nestedBlocksize = opts.nestedBlocksize ?? 256;
  const n = numel(shape);
  const blocks = Math.ceil(n / blocksize);
  const name = `Bnb4DequantNested_${quantType}_b${blocksize}_nb${nestedBlocksize}_${shape.join('x')}`;
  return cached(name, () =>
    defineFunction(
      {
        name,
        inputs: [
          { name: 'packed', dtype: 'uint8', shape: [Math.ceil(n / 2)] },
          { name: 'absmax_code', dtype: 'uint8', shape: [blocks] },
          { name: 'nested_absmax', dtype: 'float32', shape: [Math.ceil(blocks / nestedBlocksize)] },
          { name: 'nested_quant_map', dtype: 'float32', shape: [256] },
          { name: 'nested_offset', dtype: 'float32', shape: [] },
        ],
        docString: `bitsandbytes ${quantType.toUpperCase()} dequantisation with double-quantised absmax, blocksize ${blocksize}, shape [${shape.join(', ')}]`,
      },
      (g, [packed, code, nestedAbsmax, quantMap, offset]) => {
        const absmax = nestedAbsmaxGraph(code!, nestedAbsmax!, quantMap!, offset!, nestedBlocksize); // [blocks]
        return [op.Reshape(dequantValues(g, packed!, absmax, n, blocksize, quantType), shape)];
      },
    ),
  );
}

/**
 * The float32 absmax [blocks] of a double-quantised weight, `nestedQuantMap[code] · nestedAbsmax[block of
 * nestedBlocksize] + offset`, bit-exact with src/quant's dequantizeNestedAbsmax: a 4-bit model keeps only
 * the 8-bit codes (as bitsandbytes does) and rebuilds the scales in the graph.
 */
export function nestedAbsmaxGraph(code: Value, nestedAbsmax: Value, nestedQuantMap: Value, offset: Value, nestedBlocksize: number): Value {
  const blocks = code.shape[0]!;
  const mapped = op.Gather(nestedQuantMap, op.Cast(code, 'int32'), 0); // [blocks]
  return op.Add(scaleBlocks(mapped, nestedAbsmax, blocks, nestedBlocksize), offset); // [blocks]
}

function castOut(v: Value, dtype: DequantOutDType | undefined): Value {
  return dtype === undefined || dtype === 'float32' ? v : op.Cast(v, dtype);
}

/** Emit the dequantised weight: a call of the shape's function (registered in `g` on first use). */
export function dequantize4bitGraph(g: Graph, packed: Value, absmax: Value, opts: Dequant4bitGraphOptions): Value {
  return castOut(dequant4bitFunction(opts).call(g, [packed, absmax])[0]!, opts.dtype);
}

/** Emit the dequantised weight of a double-quantised 4-bit weight (bnb's stored form, undone in-graph). */
export function dequantize4bitNestedGraph(
  g: Graph,
  inputs: { packed: Value; absmaxCode: Value; nestedAbsmax: Value; nestedQuantMap: Value; nestedOffset: Value },
  opts: Dequant4bitGraphOptions & { nestedBlocksize?: number },
): Value {
  const fn = dequant4bitNestedFunction(opts);
  const [w] = fn.call(g, [inputs.packed, inputs.absmaxCode, inputs.nestedAbsmax, inputs.nestedQuantMap, inputs.nestedOffset]);
  return castOut(w!, opts.dtype);
}

/** The dequantiser autodiff's MatMulBnb4 rule takes: W [N, K] in the input's dtype. */
export const bnb4Dequant: Bnb4Dequant = (g, packed, absmax, meta, dtype) => {
  if (dtype !== 'float32' && dtype !== 'float16' && dtype !== 'bfloat16') {
    throw new TsFinetuneError('GRAPH_ERROR', `bnb4Dequant: MatMulBnb4 input dtype ${dtype} is not float32, float16 or bfloat16`);
  }
  return dequantize4bitGraph(g, packed, absmax, { shape: [meta.N, meta.K], blocksize: meta.blockSize, quantType: meta.quantType, dtype });
};

/**
 * Give com.microsoft.MatMulBnb4 its gradient (dx = dy · dequant(W)) in autodiff's registry. Call once
 * before building a backward through 4-bit weights; returns the function that undoes it.
 */
export function registerBnb4Gradient(): () => void {
  return registerFunctionGradient('com.microsoft', 'MatMulBnb4', matMulBnb4Gradient(bnb4Dequant));
}
