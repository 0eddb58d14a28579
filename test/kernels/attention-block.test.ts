// kernels/attention-block.ts: its backward (dP − rowsum(dctx ⊙ ctx), the scale on the small results)
// against central differences, for a block whose keys are the queries' own (E = R) and a later block that
// also reads earlier keys (E > R), with GQA stacking (G = 2) and masked (−1e9 / −2e9) scores. float32: the
// function is float32-only, so the tolerance is rules-f32's: |a − n| ≤ 1e-3 + 1e-2·max(|a|, |n|), h = 3e-3.
import { describe, expect, it } from 'vitest';
import { attentionBlock } from '../../kernels/attention-block.js';
import { attentionTiles } from '../../kernels/attention-tiles.js';
import { gradCheck, type GradCheckCase } from '../../src/autodiff/grad-check.js';
import { Tensor } from '../../src/core/index.js';
import type { Graph, Value } from '../../src/graph/index.js';
import { runner } from '../autodiff/helpers.js';

const NEG = -1e9;

/** Causal mask of queries [E − R, E) over keys [0, E), row 1 of the batch with its first key padded. */
function bias(g: Graph, B: number, R: number, E: number): Value {
  const b = new Float32Array(B * R * E);
  for (let n = 0; n < B; n++) {
    for (let i = 0; i < R; i++) {
      for (let j = 0; j < E; j++) {
        const future = j > E - R + i;
        b[(n * R + i) * E + j] = (future ? 2 * NEG : 0) + (n === 1 && j === 0 ? NEG : 0);
      }
    }
  }
  return g.constant(new Tensor('float32', [B, 1, 1, R, E], b));
}

function blockCase(name: string, B: number, K: number, G: number, R: number, E: number, D: number): GradCheckCase {
  return {
    name,
    inputs: [{ shape: [B, K, G * R, D] }, { shape: [B, K, E, D] }, { shape: [B, K, E, D] }],
    build: (g, [q, k, v]) => attentionBlock(g, q!, k!, v!, bias(g, B, R, E), G, 1 / Math.sqrt(D)),
  };
}

describe('attentionBlock gradient', () => {
  it('matches central differences for dq, dk and dv', async () => {
    const cases = [blockCase('diagonal block (E = R)', 2, 2, 2, 3, 3, 4), blockCase('later block (E = 2R)', 2, 2, 2, 3, 6, 4), blockCase('MHA (G = 1)', 1, 3, 1, 4, 8, 2)];
    const res = await gradCheck(cases, runner, { dtype: 'float32', eps: 3e-3, rtol: 1e-2, atol: 1e-3, seed: 5 });
    const bad = res.filter((r) => !r.ok).map((r) => `${r.name}: ${JSON.stringify(r.worst)}`);
    expect(bad).toEqual([]);
    expect(res.every((r) => r.coords > 0)).toBe(true);
    expect(Math.max(...res.map((r) => r.worst.error / r.worst.tolerance))).toBeLessThan(0.5);
  });

  it('in key tiles (kernels/attention-tiles.ts): matches central differences', async () => {
    const tiles = (name: string, B: number, K: number, G: number, R: number, n: number, D: number): GradCheckCase => ({
      name,
      inputs: [{ shape: [B, K, G * R, D] }, { shape: [B, K, n * R, D] }, { shape: [B, K, n * R, D] }],
      build: (g, [q, k, v]) => attentionTiles(q!, k!, v!, bias(g, B, R, n * R), G, 1 / Math.sqrt(D), R),
    });
    const cases = [tiles('2 tiles, GQA', 2, 2, 2, 3, 2, 4), tiles('3 tiles, MHA', 1, 2, 1, 2, 3, 2)];
    const res = await gradCheck(cases, runner, { dtype: 'float32', eps: 3e-3, rtol: 1e-2, atol: 1e-3, seed: 6 });
    expect(res.filter((r) => !r.ok).map((r) => `${r.name}: ${JSON.stringify(r.worst)}`)).toEqual([]);
    expect(Math.max(...res.map((r) => r.worst.error / r.worst.tolerance))).toBeLessThan(0.5);
  });

  it('names the shapes that do not fit', async () => {
    const { Graph } = await import('../../src/graph/index.js');
    const g = new Graph('bad');
    const q = g.input('q', 'float32', [1, 2, 6, 4]);
    const k = g.input('k', 'float32', [1, 2, 5, 4]);
    expect(() => attentionBlock(g, q, k, k, bias(g, 1, 3, 4), 2, 0.5)).toThrow(/bias \[1, 1, 1, 3, 4\]/);
    expect(() => attentionTiles(q, k, k, bias(g, 1, 3, 5), 2, 0.5, 3)).toThrow(/E a multiple of 3/);
  });
});
