// kernels/nf4-dequant through the real runtime (onnxruntime-node, CPU EP): bit-exact with src/quant's
// dequantize4bit on the golden weights of scripts/golden_quant.py (tail blocks, odd counts, zero and
// subnormal blocks, FP4's −0, double quant with a partial nested block), and MatMulBnb4's backward.
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/index.js';
import { Graph, op } from '../../src/graph/index.js';
import { backward } from '../../src/autodiff/index.js';
import { dequantize4bit, quantize4bit, type Quantized4bit, type QuantType4bit } from '../../src/quant/index.js';
import { dequant4bitFunction, dequantize4bitGraph, dequantize4bitNestedGraph, registerBnb4Gradient } from '../../kernels/nf4-dequant.js';
import { bits, f32, genWeight, golden } from '../quant/golden.js';
import { runOnce } from '../autodiff/helpers.js';

const run = runOnce;

function plainGraph(q: Quantized4bit, dtype?: 'float16'): Graph {
  const g = new Graph('dequant');
  const packed = g.input('packed', 'uint8', [q.packed.length]);
  const absmax = g.input('absmax', 'float32', [q.absmax.length]);
  g.output(dequantize4bitGraph(g, packed, absmax, { shape: q.shape, blocksize: q.blocksize, quantType: q.quantType, dtype }), 'w');
  return g;
}

const feeds = (q: Quantized4bit) => ({
  packed: new Tensor('uint8', [q.packed.length], q.packed),
  absmax: new Tensor('float32', [q.absmax.length], q.absmax),
});

const restore = registerBnb4Gradient();
afterAll(() => restore());

describe('kernels/nf4-dequant', () => {
  const special = f32(golden.special);
  const cases: [string, Float32Array, number[], QuantType4bit, number][] = [
    ['NF4 [48, 70] bs64 (tail, zero, subnormal, threshold blocks)', special, [48, 70], 'nf4', 64],
    ['FP4 [48, 70] bs64 (−0 codes)', special, [48, 70], 'fp4', 64],
    ['NF4 [48, 70] bs128', special, [48, 70], 'nf4', 128],
    ['FP4 [7, 9] bs32 (odd count)', f32(golden.odd1), [7, 9], 'fp4', 32],
    ['NF4 [5, 13] bs32 (odd count, zero tail block)', f32(golden.odd2), [5, 13], 'nf4', 32],
  ];
  for (const [name, x, shape, quantType, blocksize] of cases) {
    it(`${name}: equals dequantize4bit bit for bit`, async () => {
      const q = quantize4bit(x, { shape, quantType, blocksize });
      const out = await run(plainGraph(q), feeds(q));
      expect(out.w!.dims).toEqual(shape);
      expect(bits(out.w!.data as Float32Array)).toEqual(bits(dequantize4bit(q)));
    });
  }

  it('double quant (387 blocks: one full and one partial nested block) undone in-graph, bit for bit', async () => {
    const g0 = golden.bigGen;
    const x = genWeight(g0.rows, g0.cols, g0.seed);
    const q = quantize4bit(x, { shape: [g0.rows, g0.cols], quantType: 'nf4', doubleQuant: true });
    const nested = q.nested!;
    const g = new Graph('dequant_dq');
    const inputs = {
      packed: g.input('packed', 'uint8', [q.packed.length]),
      absmaxCode: g.input('code', 'uint8', [nested.code.length]),
      nestedAbsmax: g.input('nested_absmax', 'float32', [nested.nestedAbsmax.length]),
      nestedQuantMap: g.input('nested_quant_map', 'float32', [256]),
      nestedOffset: g.input('nested_offset', 'float32', []),
    };
    g.output(dequantize4bitNestedGraph(g, inputs, { shape: q.shape, blocksize: 64, quantType: 'nf4' }), 'w');
    const out = await run(g, {
      packed: new Tensor('uint8', [q.packed.length], q.packed),
      code: new Tensor('uint8', [nested.code.length], nested.code),
      nested_absmax: new Tensor('float32', [nested.nestedAbsmax.length], nested.nestedAbsmax),
      nested_quant_map: new Tensor('float32', [256], nested.quantMap),
      nested_offset: new Tensor('float32', [], Float32Array.of(nested.offset)),
    });
    expect(bits(out.w!.data as Float32Array)).toEqual(bits(dequantize4bit(q)));
  });

  it('casts to the compute dtype after dequantising in float32', async () => {
    const q = quantize4bit(genWeight(4, 32, 1), { shape: [4, 32], quantType: 'nf4' });
    const out = await run(plainGraph(q, 'float16'), feeds(q));
    expect(out.w!.dtype).toBe('float16');
    expect(out.w!.data).toEqual(new Tensor('float32', [4, 32], dequantize4bit(q)).to('float16').data);
  });

  it('is one shape-specialised function per weight shape, registered once per graph', () => {
    const opts = { shape: [48, 70], blocksize: 64, quantType: 'nf4' as const };
    const fn = dequant4bitFunction(opts);
    expect(fn.proto.domain).toBe('ts_finetune');
    expect(fn.proto.name).toBe('Bnb4Dequant_nf4_b64_48x70');
    const ops = fn.proto.node.map((n) => n.opType);
    // the [256, 2] table and the shape/pad/slice arguments come first as Constant nodes
    expect(ops.filter((o) => o !== 'Constant')).toEqual(['Cast', 'Gather', 'Reshape', 'Pad', 'Reshape', 'Unsqueeze', 'Mul', 'Reshape', 'Slice', 'Reshape']);
    expect(ops.slice(0, ops.indexOf('Cast')).every((o) => o === 'Constant')).toBe(true);
    expect(dequant4bitFunction(opts)).toBe(fn);
    const g = new Graph('twice');
    const p = g.input('p', 'uint8', [1680]);
    const a = g.input('a', 'float32', [53]);
    dequantize4bitGraph(g, p, a, opts);
    dequantize4bitGraph(g, p, a, opts);
    expect(g.functions.size).toBe(1);
    expect(() => dequantize4bitGraph(g, p, g.input('a2', 'float32', [52]), opts)).toThrow(/expected float32\[53\]/);
  });

  it("gives MatMulBnb4 its backward: dx = dy · dequant(W), through ORT's own forward", async () => {
    const [N, K, B] = [24, 64, 3];
    const q = quantize4bit(genWeight(N, K, 8), { shape: [N, K], quantType: 'nf4' });
    const g = new Graph('bnb4_grad');
    const x = g.input('x', 'float32', [B, K]);
    const packed = g.initializer('w.packed', new Tensor('uint8', [q.packed.length], q.packed));
    const absmax = g.initializer('w.absmax', new Tensor('float32', [q.absmax.length], q.absmax));
    const y = op.MatMulBnb4(x, packed, absmax, { K, N, blockSize: 64, quantType: 'nf4' }); // [B, N]
    const dy = g.input('dy', 'float32', [B, N]);
    const loss = op.ReduceSum(op.Mul(y, dy), undefined, false);
    const dx = backward(g, loss, [x]).get(x)!;
    g.output(y, 'y');
    g.output(dx, 'dx');
    const xs = Float32Array.from({ length: B * K }, (_, i) => Math.sin(i));
    const dys = Float32Array.from({ length: B * N }, (_, i) => Math.cos(i * 0.3));
    const out = await run(g, { x: new Tensor('float32', [B, K], xs), dy: new Tensor('float32', [B, N], dys) });
    const w = dequantize4bit(q);
    const dxRef = new Float64Array(B * K);
    const yRef = new Float64Array(B * N);
    for (let b = 0; b < B; b++) {
      for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) dxRef[b * K + k]! += dys[b * N + n]! * w[n * K + k]!;
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) yRef[b * N + n]! += xs[b * K + k]! * w[n * K + k]!;
    }
    const dxOut = out.dx!.data as Float32Array;
    const yOut = out.y!.data as Float32Array;
    for (let i = 0; i < dxRef.length; i++) expect(Math.abs(dxOut[i]! - dxRef[i]!)).toBeLessThan(1e-4);
    for (let i = 0; i < yRef.length; i++) expect(Math.abs(yOut[i]! - yRef[i]!)).toBeLessThan(1e-4);
  });
});
