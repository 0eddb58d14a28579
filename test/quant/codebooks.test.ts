import { describe, expect, it } from 'vitest';
import {
  createDynamicMap,
  dynamicMap,
  FP4_CODE,
  NF4_CODE,
  quantizeFp4Value,
  quantizeNf4Value,
} from '../../src/quant/index.js';
import { torchLinspaceF32 } from '../../src/quant/codebooks.js';
import { bits, f32, golden } from './golden.js';

describe('4-bit codebooks', () => {
  it('equal bitsandbytes get_4bit_type bit for bit (FP4 index 8 is -0)', () => {
    expect(bits(Float32Array.from(NF4_CODE))).toEqual(bits(f32(golden.nf4)));
    expect(bits(Float32Array.from(FP4_CODE))).toEqual(bits(f32(golden.fp4)));
    expect(Object.is(FP4_CODE[8], -0)).toBe(true);
  });

  it('quantise each code value to its own index, thresholds to the lower code, NaN to 0', () => {
    for (let i = 0; i < 16; i++) expect(quantizeNf4Value(NF4_CODE[i]!)).toBe(i);
    // 0.8614784181118011f is the 14|15 threshold: exactly on it stays 14, one ulp above goes to 15
    const t = Math.fround(0.8614784181118011);
    expect(quantizeNf4Value(t)).toBe(14);
    expect(quantizeNf4Value(Math.fround(t + 2 ** -24))).toBe(15);
    expect(quantizeNf4Value(NaN)).toBe(0);
    for (let i = 0; i < 16; i++) if (i !== 8) expect(quantizeFp4Value(FP4_CODE[i]!)).toBe(i);
    expect(quantizeFp4Value(-0)).toBe(0); // the sign bit only for x < 0
    expect(quantizeFp4Value(-1e-6)).toBe(8);
    expect(quantizeFp4Value(NaN)).toBe(0);
    expect(quantizeFp4Value(2)).toBe(0b0011); // values beyond ±1 saturate (no clamp in the kernel)
  });
});

describe('dynamic 8-bit maps', () => {
  it('equal bitsandbytes create_dynamic_map as run by torch (AVX2 linspace) bit for bit', () => {
    expect(bits(createDynamicMap(true))).toEqual(bits(f32(golden.dynamicSigned)));
    expect(bits(createDynamicMap(false))).toEqual(bits(f32(golden.dynamicUnsigned)));
  });

  it('have the documented range and are strictly increasing', () => {
    for (const signed of [true, false]) {
      const m = dynamicMap(signed);
      expect(m.length).toBe(256);
      for (let i = 1; i < 256; i++) expect(m[i]!).toBeGreaterThan(m[i - 1]!);
      expect(m[255]).toBe(1);
    }
    expect(dynamicMap(true)[0]).toBe(Math.fround(-0.99296875));
    expect(dynamicMap(false)[0]).toBe(0);
    expect(dynamicMap(true)[127]).toBe(0);
  });

  it('model the AVX-512 linspace as a last-bit variant, not a different map', () => {
    const a = createDynamicMap(true);
    const b = createDynamicMap(true, { linspaceVectorWidth: 16 });
    let differ = 0;
    for (let i = 0; i < 256; i++) {
      if (a[i] !== b[i]) differ++;
      expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(Math.abs(a[i]!) * 2 ** -22);
    }
    expect(differ).toBeGreaterThan(0);
  });

  it('linspace keeps its endpoints', () => {
    const l = torchLinspaceF32(0.1, 1, 129);
    expect(l[0]).toBe(Math.fround(0.1));
    expect(l[128]).toBe(1);
    expect(torchLinspaceF32(0.1, 1, 1)[0]).toBe(Math.fround(0.1));
  });
});
