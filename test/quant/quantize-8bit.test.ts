import { describe, expect, it } from 'vitest';
import {
  dequantizeBlockwise8bit,
  dynamicMap,
  quantize8bitValueCuda,
  quantizeBlockwise8bit,
  type Kernel8bit,
} from '../../src/quant/index.js';
import { bits, f32, golden, u8 } from './golden.js';

describe('blockwise 8-bit quantisation', () => {
  for (const c of golden.cases8bit as any[]) {
    it(`matches the golden ${c.map} map, ${c.kernel} kernel (midpoint ties, zero block, tail block)`, () => {
      const x = f32(golden[`input8bit_${c.map}`]);
      const q = quantizeBlockwise8bit(x, { code: c.map, blocksize: 256, kernel: c.kernel as Kernel8bit });
      expect(q.codes).toEqual(u8(c.codes));
      expect(bits(q.absmax)).toEqual(bits(f32(c.absmax)));
      expect(q.code[0]).toBe(c.code0);
      expect(bits(dequantizeBlockwise8bit(q))).toEqual(bits(f32(c.dequant)));
    });
  }

  it('the two kernels really differ on ties (so the choice matters)', () => {
    const x = f32(golden.input8bit_signed);
    const a = quantizeBlockwise8bit(x, { kernel: 'cpu' }).codes;
    const b = quantizeBlockwise8bit(x, { kernel: 'cuda' }).codes;
    let differ = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differ++;
    expect(differ).toBeGreaterThan(0);
  });

  it('reconstructs within half a map gap of the block absmax and never touches the caller map', () => {
    const m = Float32Array.from(dynamicMap(true));
    const x = Float32Array.from({ length: 700 }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 5)));
    const q = quantizeBlockwise8bit(x, { code: m, kernel: 'cpu' });
    expect(m[0]).toBe(Math.fround(-0.99296875));
    const d = dequantizeBlockwise8bit(q);
    const halfGap = Math.max(...[...q.code].slice(1).map((v, i) => v - q.code[i]!)) / 2; // ≈ 0.0105, at −1
    for (let i = 0; i < x.length; i++) {
      expect(Math.abs(d[i]! - x[i]!)).toBeLessThanOrEqual(q.absmax[Math.floor(i / 256)]! * halfGap * (1 + 1e-6));
    }
  });

  it('dQuantize walks NaN down to index 0', () => {
    expect(quantize8bitValueCuda(dynamicMap(true), NaN)).toBe(0);
    expect(quantize8bitValueCuda(dynamicMap(true), 1)).toBe(255);
    expect(quantize8bitValueCuda(dynamicMap(true), 0)).toBe(127);
  });

  it('rejects bad maps, block sizes and kernels with a clear error', () => {
    const x = new Float32Array(10);
    expect(() => quantizeBlockwise8bit(x, { code: new Float32Array(255) })).toThrow(/256-entry/);
    expect(() => quantizeBlockwise8bit(x, { code: new Float32Array(256) })).toThrow(/strictly increasing/);
    expect(() => quantizeBlockwise8bit(x, { blocksize: 100 })).toThrow(/blocksize 100/);
    expect(() => quantizeBlockwise8bit(x, { kernel: 'gpu' as Kernel8bit })).toThrow(/kernel/);
    const q = quantizeBlockwise8bit(x);
    expect(() => dequantizeBlockwise8bit({ ...q, absmax: new Float32Array(2) })).toThrow(/absmax/);
  });
});
