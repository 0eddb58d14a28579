// kernels/lm-head-loss through the real runtime (CPU EP): loss sum, token count, argmax hits and dh of the
// chunked head + loss equal src/nn/loss.ts causalLmLoss on the plain head's logits differentiated by
// autodiff, with ignored (−100) targets, in one chunk and in several, for a float32 and a 16-bit head;
// its dh comes from the forward (no recomputed logits in the backward).
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/index.js';
import { Graph, op, type Value } from '../../src/graph/index.js';
import { backward } from '../../src/autodiff/index.js';
import { causalLmLoss } from '../../src/nn/loss.js';
import { lmHeadLoss } from '../../kernels/lm-head-loss.js';
import { runOnce } from '../autodiff/helpers.js';

const N = 10;
const C = 8;
const V = 24;

const run = runOnce;

/** loss sum, count, correct and dh of one formulation, scaled by 0.37 before the backward. */
async function evaluate(w: Tensor, feeds: Record<string, Tensor>, fused: boolean, chunkBytes?: number): Promise<Record<string, Tensor>> {
  const g = new Graph(fused ? 'fused' : 'plain');
  const h = g.input('h', 'float32', [N, C]);
  const targets = g.input('targets', 'int64', [N]);
  const wv = g.initializer('w', w);
  let l: { lossSum: Value; count: Value; correct: Value };
  if (fused) l = lmHeadLoss(g, h, wv, targets, chunkBytes === undefined ? {} : { chunkBytes });
  else {
    const wf = wv.dtype === 'float32' ? wv : op.Cast(wv, 'float32');
    l = causalLmLoss(op.Reshape(op.MatMul(h, op.Transpose(wf, [1, 0])), [1, N, V]), op.Reshape(targets, [1, N]));
  }
  const dh = backward(g, op.Mul(l.lossSum, g.scalar(0.37)), [h]).get(h)!;
  g.output(l.lossSum, 'loss_sum');
  g.output(l.count, 'count');
  g.output(l.correct, 'correct');
  g.output(dh, 'dh');
  return run(g, feeds);
}

describe('kernels/lm-head-loss', () => {
  for (const dtype of ['float32', 'float16'] as const) {
    for (const [chunkBytes, what] of [[undefined, 'one chunk'], [4 * V * 3, '4 chunks of 3 rows (the last 1)']] as const) {
      it(`${dtype} head, ${what}: equals causalLmLoss + autodiff`, async () => {
        const rng = new Rng(5);
        const w = new Tensor('float32', [V, C], Float32Array.from({ length: V * C }, () => rng.normal())).to(dtype);
        // targets: some ignored, one that is the argmax of its row is likely among 10
        const t = [3, -100, 7, 0, 23, -100, 11, 5, 19, 2];
        const feeds = {
          h: new Tensor('float32', [N, C], Float32Array.from({ length: N * C }, () => rng.normal())),
          targets: Tensor.int64(t, [N]),
        };
        const a = await evaluate(w, feeds, true, chunkBytes);
        const b = await evaluate(w, feeds, false);
        for (const k of ['loss_sum', 'count', 'correct'] as const) {
          expect(Math.abs((a[k]!.data as Float32Array)[0]! - (b[k]!.data as Float32Array)[0]!), k).toBeLessThan(1e-5);
        }
        expect((a.count!.data as Float32Array)[0]).toBe(8);
        const da = a.dh!.data as Float32Array;
        const db = b.dh!.data as Float32Array;
        let err = 0;
        let norm = 0;
        for (let i = 0; i < db.length; i++) {
          err = Math.max(err, Math.abs(da[i]! - db[i]!));
          norm = Math.max(norm, Math.abs(db[i]!));
        }
        expect(norm).toBeGreaterThan(0.01);
        expect(err / norm).toBeLessThan(1e-5);
        // ignored rows get no gradient
        for (const row of [1, 5]) expect(Array.from(da.subarray(row * C, row * C + C)).every((v) => v === 0)).toBe(true);
      });
    }
  }

  it('computes dh in the forward: the backward adds one Mul by the upstream gradient, no GEMM', () => {
    const g = new Graph('no-recompute');
    const h = g.input('h', 'float32', [N, C]);
    const w = g.initializer('w', new Tensor('float32', [V, C], new Float32Array(V * C)));
    const l = lmHeadLoss(g, h, w, g.input('targets', 'int64', [N]), { chunkBytes: 4 * V * 3 });
    const before = g.nodes.length;
    backward(g, op.Mul(l.lossSum, g.scalar(0.5)), [h]);
    const added = g.nodes.slice(before).map((n) => n.opType);
    expect(added.filter((o) => o.startsWith('LmHeadLoss'))).toEqual([]);
    expect(added).not.toContain('MatMul');
    expect([...g.functions.keys()].filter((k) => k.includes('LmHeadLoss'))).toHaveLength(1);
  });

  it('refuses a trainable head (it differentiates the hidden states only)', () => {
    const g = new Graph('bad');
    const h = g.input('h', 'float32', [N, C]);
    const w = g.input('w', 'float32', [V, C]);
    const l = lmHeadLoss(g, h, w, g.input('targets', 'int64', [N]));
    expect(() => backward(g, l.lossSum, [h, w])).toThrow(/head weight is trainable/);
  });
});
