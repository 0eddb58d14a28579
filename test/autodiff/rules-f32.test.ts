// Finite-difference checks of the rules whose ops have no float64 kernel on ORT's CPU EP (Erf, Softplus,
// com.microsoft RotaryEmbedding and MatMulBnb4) and of the float64 → float32 Cast.
// Tolerance (float32): |analytic − numeric| ≤ 1e-3 + 1e-2·max(|analytic|, |numeric|), h = 3e-3.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gradCheck } from '../../src/autodiff/grad-check.js';
import { matMulBnb4Gradient, registerFunctionGradient } from '../../src/autodiff/index.js';
import { bnbWeight, float32Cases } from './cases.js';
import { runner } from './helpers.js';

describe('gradient rules against central differences (float32)', () => {
  let restore: () => void = () => {};
  // kernels/ owns the real NF4 dequant; the test's hook returns the weight it quantised on the host.
  beforeAll(() => {
    restore = registerFunctionGradient('com.microsoft', 'MatMulBnb4', matMulBnb4Gradient((g) => g.constant(bnbWeight.dense)));
  });
  afterAll(() => restore());

  it('Erf, Softplus, Cast, RotaryEmbedding, MatMulBnb4', async () => {
    const res = await gradCheck(float32Cases, runner, { dtype: 'float32', eps: 3e-3, rtol: 1e-2, atol: 1e-3, seed: 11 });
    const bad = res.filter((r) => !r.ok).map((r) => `${r.name}: ${JSON.stringify(r.worst)}`);
    expect(bad).toEqual([]);
    // Tighter than the tolerance in practice: report the worst ratio so regressions show.
    const worst = Math.max(...res.map((r) => r.worst.error / r.worst.tolerance));
    expect(worst).toBeLessThan(0.5);
  });
});
