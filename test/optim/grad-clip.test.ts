import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { clipCoefficient, clipGradNorm, globalL2Norm } from '../../src/optim/grad-clip.js';

const golden = JSON.parse(readFileSync(new URL('../fixtures/optim/grad_clip.json', import.meta.url), 'utf8')) as {
  inputs: number[][];
  cases: { max_norm: number; norm: number; clipped: number[][] }[];
};

describe('grad clipping', () => {
  it('computes the global L2 norm over many arrays', () => {
    expect(globalL2Norm([new Float32Array([3]), new Float32Array([4])])).toBe(5);
    expect(globalL2Norm([])).toBe(0);
    // float64 accumulation: a float32 running sum of 1e6 squares would be off by ~1e-4 relative.
    const want = 1000 * Math.fround(1e-4);
    expect(Math.abs(globalL2Norm([new Float32Array(1_000_000).fill(1e-4)]) - want) / want).toBeLessThan(1e-9);
  });

  it('matches torch.nn.utils.clip_grad_norm_', () => {
    for (const c of golden.cases) {
      const grads = golden.inputs.map((a) => Float32Array.from(a));
      const r = clipGradNorm(grads, c.max_norm);
      expect(r.norm).toBeCloseTo(c.norm, 4);
      expect(Math.abs(r.norm - c.norm) / c.norm).toBeLessThan(1e-6);
      expect(r.clipped).toBe(c.max_norm < c.norm);
      // Bit for bit: the coefficient and the products are float32, as in torch (the norms agree once
      // rounded to float32 here; in general they may differ in the last float32 bit).
      grads.forEach((g, k) => expect(Array.from(g)).toEqual(c.clipped[k]));
    }
  });

  it('leaves gradients alone under the limit or with maxNorm 0, and follows torch on non-finite norms', () => {
    const g = [new Float32Array([0.3, 0.4])];
    expect(clipGradNorm(g, 1)).toEqual({ norm: expect.closeTo(0.5, 7), coefficient: 1, clipped: false });
    expect(Array.from(g[0]!)).toEqual([Math.fround(0.3), Math.fround(0.4)]);
    expect(clipGradNorm([new Float32Array([30, 40])], 0)).toMatchObject({ norm: 50, clipped: false });
    expect(clipCoefficient(Infinity, 1)).toBe(0);
    expect(clipCoefficient(NaN, 1)).toBeNaN();
    const inf = [new Float32Array([Infinity, 1])];
    const r = clipGradNorm(inf, 1);
    expect(r.norm).toBe(Infinity);
    expect(Number.isNaN(inf[0]![0]!)).toBe(true); // inf * 0, as torch
    expect(inf[0]![1]).toBe(0);
  });
});
