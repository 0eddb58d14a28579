// bitsandbytes' 8-bit blockwise AdamW step (csrc kOptimizerStatic8bit2StateBlockwise, OPTIMIZER = ADAM with
// decoupled weight decay) as an ONNX model-local function over a page of N elements (N a multiple of 256):
//   s1 = code1[c1]·absmax1[block], s2 = code2[c2]·absmax2[block]          dequantise (signed / unsigned map)
//   s2 = s2·β2 + ((1−β2)·g)·g;  s1 = s1·β1 + (1−β1)·g                       in float32, in bnb's order
//   (a non-finite g leaves p alone and zeroes both states, as bnb does)
//   absmax' = max |s| per block of 256;  p += step_size·(s1 / (sqrt(s2) + c2·eps));  p *= 1 − lr·wd
//   c1', c2' = the codes of s/absmax' (adamw-8bit-codes.ts: bnb's nearest rule, sign-keeping for s1)
// The update reads the new float32 states, not their re-quantised values (bnb does the same: it quantises
// only what it stores). Scalars come from bnb32AdamwHyper (kernels/adamw.ts), the same as bnb's 32-bit path.
// Where we cannot follow the GPU kernel bit for bit: it divides with __fdividef (≈ 2 ulp) and nvcc may fuse
// multiply-adds; we use IEEE division and separate roundings (the CPU reading of the C source).
// Blocks: the page is [N/256, 256]; the caller lays each tensor out padded to whole blocks, with padding
// loaded as bnb loads out-of-range items (g = 0, c1 = 128, c2 = 0), so tail blocks match too.
// Not here: the layout and paging (src/optim/adamw-8bit.ts), the 32-bit path for small tensors (adamw.ts).

import { Tensor, TsFinetuneError } from '../src/core/index.js';
import { attr, defineFunction, op, type DefinedFunction, type Graph, type Value } from '../src/graph/index.js';
import { dynamicMap } from '../src/quant/index.js';
import { ADAMW_HYPER, maskedDecay, splitHyper } from './adamw.js';
import { codeTable, type CodeTable } from './adamw-8bit-codes.js';

/** bnb's block size for 8-bit optimizer state (BLOCKSIZE_2STATE). */
export const STATE_BLOCKSIZE = 256;
/** Codes bnb loads for items past a tensor's end (first / second moment). */
export const PAD_CODE1 = 128;
export const PAD_CODE2 = 0;

export interface Adamw8bitKernelOptions {
  /** Elements per call: a multiple of 256. */
  n: number;
  /** A per-element weight-decay multiplier input `wd_mask` [n]. */
  mask: boolean;
}

/** The hyper layout: the same scalars as bnb's 32-bit AdamW (bnb32AdamwHyper). */
export const ADAMW8BIT_HYPER = ADAMW_HYPER.bnb32;

/** BitCast (opset 26): the IEEE bits of a float32 as int32. */
function bitsOf(x: Value): Value {
  x.graph.useOpset('', 26);
  return x.graph.node('BitCast', [x], { to: attr.int(6) }, [{ dtype: 'int32', shape: x.shape }])[0]!;
}

/** code[c]·absmax per block: c uint8 [B, 256], absmax [B] → float32 [B, 256]. */
function dequantize(g: Graph, c: Value, absmax: Value, code: Readonly<Float32Array>): Value {
  const values = op.Gather(g.constant(new Tensor('float32', [256], Float32Array.from(code))), op.Cast(c, 'int32'), 0);
  return op.Mul(values, op.Unsqueeze(absmax, [1]));
}

/** The int32 code of x [B, 256] by table lookup: base[key] + (x > thr[key]), key = trunc(bits(x) / 2^shift). */
function lookup(g: Graph, x: Value, t: CodeTable): Value {
  const key = op.Div(bitsOf(x), g.scalar(2 ** t.shift, 'int32')); // negative keys index from the end
  const rows = t.base.length;
  const base = op.Gather(g.constant(new Tensor('int32', [rows], t.base)), key, 0);
  const thr = op.Gather(g.constant(new Tensor('float32', [rows], t.thr)), key, 0);
  return op.Add(base, op.Cast(op.Greater(x, thr), 'int32'));
}

/**
 * Codes and new absmax of state s [B, 256]. A block whose values are all zero has absmax 0 and bnb divides
 * 0/0: NaN takes code 0, which its sign step turns into 255 for +0 (signed map). We divide by 1 there
 * instead (codes 127 for +0, 126 for −0) and map 127 → 255, 126 → 0 with c·(1 + 254z) − 32130z, z = 1
 * in such blocks.
 */
function quantize(g: Graph, s: Value, absmax: Value, signed: boolean): Value {
  const zero = op.Equal(absmax, 0); // [B]
  const divisor = op.Where(zero, 1, absmax);
  let c = lookup(g, op.Div(s, op.Unsqueeze(divisor, [1])), codeTable(signed)); // [B, 256] int32
  if (signed) {
    const z = op.Unsqueeze(op.Cast(zero, 'int32'), [1]); // [B, 1]
    c = op.Add(op.Mul(c, op.Add(op.Mul(z, 254), 1)), op.Mul(z, -32130));
  }
  return op.Cast(c, 'uint8');
}

type Spec = { name: string; dtype: 'float32' | 'uint8'; shape: number[] };

/** The function's inputs, in order. */
function inputSpecs(o: Adamw8bitKernelOptions): Spec[] {
  const v = (name: string, dtype: 'float32' | 'uint8'): Spec => ({ name, dtype, shape: [o.n] });
  const b = (name: string): Spec => ({ name, dtype: 'float32', shape: [o.n / STATE_BLOCKSIZE] });
  return [
    v('param', 'float32'),
    v('grad', 'float32'),
    v('state1', 'uint8'),
    v('state2', 'uint8'),
    b('absmax1'),
    b('absmax2'),
    ...(o.mask ? [v('wd_mask', 'float32')] : []),
    { name: 'hyper', dtype: 'float32', shape: [ADAMW8BIT_HYPER.length] },
  ];
}

const cache = new Map<string, DefinedFunction>();

/**
 * `(param, grad, state1, state2, absmax1, absmax2[, wd_mask], hyper) →
 *  (param', state1', state2', absmax1', absmax2')` for one page size.
 */
export function adamw8bitFunction(o: Adamw8bitKernelOptions): DefinedFunction {
  if (!Number.isInteger(o.n) || o.n <= 0 || o.n % STATE_BLOCKSIZE !== 0) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `adamw8bitFunction: n must be a positive multiple of ${STATE_BLOCKSIZE}, got ${o.n}`);
  }
  const name = `AdamW8bit${o.mask ? '_masked' : ''}_n${o.n}`;
  let fn = cache.get(name);
  if (fn !== undefined) return fn;
  const n = o.n;
  const blocks = n / STATE_BLOCKSIZE;
  const inputs = inputSpecs(o);
  fn = defineFunction(
    { name, inputs, docString: `bitsandbytes 8-bit blockwise AdamW over ${n} elements; hyper = [${ADAMW8BIT_HYPER.join(', ')}]` },
    (g, ins) => {
      const bs = [blocks, STATE_BLOCKSIZE];
      const [p0, g0, c1, c2, a1, a2] = ins as [Value, Value, Value, Value, Value, Value];
      const mask = o.mask ? op.Reshape(ins[6]!, bs) : undefined;
      const [beta1, oneMinusBeta1, beta2, oneMinusBeta2, epsC2, stepSize, decay] = splitHyper(ins[ins.length - 1]!, 7) as [Value, Value, Value, Value, Value, Value, Value];
      const p = op.Reshape(p0, bs);
      const grad = op.Reshape(g0, bs);
      const finite = op.Less(op.Abs(grad), Infinity); // false for ±inf and NaN
      const s2old = dequantize(g, op.Reshape(c2, bs), a2, dynamicMap(false));
      const s1old = dequantize(g, op.Reshape(c1, bs), a1, dynamicMap(true));
      const s2 = op.Where(finite, op.Add(op.Mul(s2old, beta2), op.Mul(op.Mul(oneMinusBeta2, grad), grad)), 0);
      const s1 = op.Where(finite, op.Add(op.Mul(s1old, beta1), op.Mul(oneMinusBeta1, grad)), 0);
      const absmax1 = op.ReduceMax(op.Abs(s1), [1], false); // [B]
      const absmax2 = op.ReduceMax(s2, [1], false); // s2 ≥ +0 already
      const step = op.Mul(stepSize, op.Div(s1, op.Add(op.Sqrt(s2), epsC2)));
      const p1 = op.Where(finite, op.Mul(op.Add(p, step), maskedDecay(decay, mask)), p);
      const q1 = quantize(g, s1, absmax1, true);
      const q2 = quantize(g, s2, absmax2, false);
      return [op.Reshape(p1, [n]), op.Reshape(q1, [n]), op.Reshape(q2, [n]), absmax1, absmax2];
    },
  );
  cache.set(name, fn);
  return fn;
}

/** An update graph around one call: the function's inputs as graph inputs, outputs `<name>_out`. */
export function buildAdamw8bitGraph(g: Graph, o: Adamw8bitKernelOptions): void {
  const ins = inputSpecs(o).map((spec) => g.input(spec.name, spec.dtype, spec.shape));
  const outs = adamw8bitFunction(o).call(g, ins);
  ['param_out', 'state1_out', 'state2_out', 'absmax1_out', 'absmax2_out'].forEach((name, i) => g.output(outs[i]!, name));
}
