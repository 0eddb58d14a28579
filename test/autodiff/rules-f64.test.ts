// Finite-difference checks of every rule that ORT's CPU EP can run in float64: one session per family.
// Tolerance: |analytic − numeric| ≤ 1e-8 + 1e-6·max(|analytic|, |numeric|), central differences, h = 1e-6
// (cases that read a float32 value say so and widen it).
import { describe, expect, it } from 'vitest';
import { gradCheck, type GradCheckCase } from '../../src/autodiff/grad-check.js';
import { elementwiseCases, indexCases, matmulCases, nnCases, reduceCases, shapeCases } from './cases.js';
import { runner } from './helpers.js';

const families: [string, GradCheckCase[]][] = [
  ['elementwise', elementwiseCases],
  ['reduce', reduceCases],
  ['shape', shapeCases],
  ['index', indexCases],
  ['matmul', matmulCases],
  ['nn', nnCases],
];

describe('gradient rules against central differences (float64)', () => {
  for (const [family, cases] of families) {
    it(family, async () => {
      const res = await gradCheck(cases, runner, { dtype: 'float64', eps: 1e-6, rtol: 1e-6, atol: 1e-8, seed: 7 });
      const bad = res.filter((r) => !r.ok).map((r) => `${r.name}: ${JSON.stringify(r.worst)}`);
      expect(bad).toEqual([]);
      expect(res.every((r) => r.coords > 0)).toBe(true);
    });
  }
});
