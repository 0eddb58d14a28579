import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/index.js';
import { codebook4bit, dequantize4bit, quantize4bit, type QuantType4bit } from '../../src/quant/index.js';
import { meanF32 } from '../../src/quant/quantize-4bit.js';
import { bits, f32, fnv1a, genWeight, golden, u8 } from './golden.js';

function input(name: string): Float32Array {
  if (name.startsWith('special')) return f32(golden.special);
  if (name.startsWith('odd1')) return f32(golden.odd1);
  if (name.startsWith('odd2')) return f32(golden.odd2);
  const g = golden.bigGen;
  const w = genWeight(g.rows, g.cols, g.seed);
  w.fill(0, g.zeroBlock64 * 64, (g.zeroBlock64 + 1) * 64);
  return w;
}

describe('4-bit quantisation, golden vectors', () => {
  it('the weight generator mirrors the script', () => {
    const g = golden.gen[0];
    expect(bits(genWeight(g.rows, g.cols, g.seed))).toEqual(bits(f32(g.values)));
  });

  for (const c of golden.cases4bit as any[]) {
    it(`${c.name}: codes, absmax${c.doubleQuant ? ', nested state' : ''} and dequantised values bit-exact`, () => {
      const x = input(c.name);
      const q = quantize4bit(x, { shape: c.shape, quantType: c.quantType, blocksize: c.blocksize, doubleQuant: c.doubleQuant });
      expect(q.packed).toEqual(u8(c.packed));
      if (c.doubleQuant) {
        expect(q.nested!.offset).toBe(c.offset);
        // torch's float32 mean may differ in the last bits (reduction order); it is recorded for reference
        expect(Math.abs(c.offsetTorchFloat32Mean - c.offset)).toBeLessThanOrEqual(c.offset * 2 ** -21);
        expect(q.nested!.code).toEqual(u8(c.nestedCode));
        expect(bits(q.nested!.nestedAbsmax)).toEqual(bits(f32(c.nestedAbsmax)));
        expect(bits(q.absmax)).toEqual(bits(f32(c.dequantAbsmax)));
      } else {
        expect(bits(q.absmax)).toEqual(bits(f32(c.absmax)));
      }
      const d = dequantize4bit(q);
      expect(fnv1a(d)).toBe(c.dequantFnv1a);
      if (c.dequant) expect(bits(d)).toEqual(bits(f32(c.dequant)));
      else {
        const every = d.filter((_, i) => i % 97 === 0);
        expect(bits(every)).toEqual(bits(f32(c.dequantEvery97)));
      }
    });
  }
});

describe('4-bit quantisation, semantics', () => {
  const x = genWeight(16, 40, 9);

  for (const quantType of ['nf4', 'fp4'] as QuantType4bit[]) {
    it(`${quantType}: every value within half the widest code gap of its block absmax`, () => {
      const q = quantize4bit(x, { quantType, shape: [16, 40] });
      const d = dequantize4bit(q);
      const sorted = [...codebook4bit(quantType)].sort((a, b) => a - b);
      const halfGap = Math.max(...sorted.slice(1).map((v, i) => v - sorted[i]!)) / 2;
      for (let i = 0; i < x.length; i++) {
        expect(Math.abs(d[i]! - x[i]!)).toBeLessThanOrEqual(q.absmax[Math.floor(i / 64)]! * halfGap * (1 + 1e-6));
      }
    });
  }

  it('packs the first element into the high nibble and pads an odd count', () => {
    const q = quantize4bit(Float32Array.from([1, -1, 0]), { quantType: 'nf4', blocksize: 32 });
    expect([...q.packed]).toEqual([0xf0, 0x77]); // 1 → 15, −1 → 0; 0 → 7 and the pad is the code of 0
    expect(q.shape).toEqual([3]);
  });

  it('double quant reconstructs each absmax to within a map step', () => {
    const big = genWeight(64, 300, 2);
    const plain = quantize4bit(big, { quantType: 'nf4', shape: [64, 300] });
    const dq = quantize4bit(big, { quantType: 'nf4', shape: [64, 300], doubleQuant: true });
    expect(dq.packed).toEqual(plain.packed); // codes come from the exact absmax
    expect(dq.nested!.offset).toBe(meanF32(plain.absmax));
    expect(dq.nested!.code.length).toBe(plain.absmax.length);
    expect(dq.nested!.nestedAbsmax.length).toBe(Math.ceil(plain.absmax.length / 256));
    // the signed dynamic map's widest step is 0.9/64 (top decade), so the error is under half of it
    for (let b = 0; b < plain.absmax.length; b++) {
      expect(Math.abs(dq.absmax[b]! - plain.absmax[b]!)).toBeLessThan((0.9 / 128) * dq.nested!.nestedAbsmax[b >> 8]! + 1e-7);
    }
    const pinned = quantize4bit(big, { quantType: 'nf4', shape: [64, 300], doubleQuant: true, offset: 0.5 });
    expect(pinned.nested!.offset).toBe(0.5);
  });

  it('takes bf16 tensors (quantising their float32 values) and records the dtype', () => {
    const t = Tensor.fromNumbers(x, [16, 40], 'bfloat16');
    const q = quantize4bit(t, { quantType: 'nf4' });
    expect(q.dtype).toBe('bfloat16');
    expect(q.shape).toEqual([16, 40]);
    expect(q.packed).toEqual(quantize4bit(t.toFloat32(), { quantType: 'nf4', shape: [16, 40] }).packed);
  });

  it('rejects bad input with errors naming the problem', () => {
    expect(() => quantize4bit(x, { quantType: 'nf4', blocksize: 48 })).toThrow(/blocksize 48/);
    expect(() => quantize4bit(x, { quantType: 'nf4', shape: [3, 3] })).toThrow(/shape \[3, 3\]/);
    expect(() => quantize4bit(x, { quantType: 'int4' as QuantType4bit })).toThrow(/quantType/);
    expect(() => quantize4bit(Tensor.int64([1, 2], [2]), { quantType: 'nf4' })).toThrow(/int64/);
    expect(() => quantize4bit(new Float32Array(0), { quantType: 'nf4' })).toThrow(/empty/);
    const q = quantize4bit(x, { quantType: 'nf4', shape: [16, 40] });
    expect(() => dequantize4bit({ ...q, shape: [16, 41] })).toThrow(/packed bytes/);
  });
});
