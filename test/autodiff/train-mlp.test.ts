// End to end: a small MLP with softmax cross-entropy in DESIGN.md's fast form (LogSoftmax +
// GatherElements at the labels, whose gradient fuses into p − onehot) trains with plain SGD in JS
// through one built graph (forward + backward), and the loss falls.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import { Graph, op } from '../../src/graph/index.js';
import { backward } from '../../src/autodiff/index.js';
import { openGraph } from './helpers.js';

describe('end-to-end training', () => {
  it('an MLP with LogSoftmax + GatherElements cross-entropy learns 3 Gaussian blobs with SGD', async () => {
    const N = 96;
    const Din = 4;
    const Hd = 16;
    const K = 3;
    const rng = new Rng(3);
    const x = new Float32Array(N * Din);
    const labels = new BigInt64Array(N);
    for (let i = 0; i < N; i++) {
      const c = i % K;
      labels[i] = BigInt(c);
      for (let j = 0; j < Din; j++) x[i * Din + j] = (j === c ? 2 : 0) + rng.normal() * 0.7;
    }
    const g = new Graph('mlp');
    const xv = g.input('x', 'float32', [N, Din]);
    const yv = g.input('labels', 'int64', [N, 1]);
    const shapes: Record<string, number[]> = { w1: [Din, Hd], b1: [Hd], w2: [Hd, K], b2: [K] };
    const params = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, g.input(k, 'float32', s)]));
    const h = op.Tanh(op.Add(op.MatMul(xv, params.w1!), params.b1!)); // [N, H]
    const logits = op.Add(op.MatMul(h, params.w2!), params.b2!); // [N, K]
    const picked = op.GatherElements(op.LogSoftmax(logits, -1), yv, 1); // [N, 1] log p(label)
    const loss = op.Neg(op.ReduceMean(picked, undefined, false));
    g.output(loss, 'loss');
    const wrt = Object.values(params);
    const grads = backward(g, loss, wrt);
    for (const [k, v] of Object.entries(params)) g.output(grads.get(v)!, `grad.${k}`);
    // The CE gradient is one scatter-add of −1 into p = exp(log p) (then × the row's −dy), not a scatter
    // into a dense zero tensor.
    const scatters = g.nodes.filter((n) => n.opType === 'ScatterElements');
    expect(scatters).toHaveLength(1);
    expect(scatters[0]!.in(0).producer?.opType).toBe('Exp');

    const values: Record<string, Float32Array> = {};
    for (const [k, s] of Object.entries(shapes)) {
      const n = s.reduce((a, b) => a * b, 1);
      values[k] = Float32Array.from({ length: n }, () => (k.startsWith('w') ? rng.normal() / Math.sqrt(s[0]!) : 0));
    }
    const s = await openGraph(g);
    const losses: number[] = [];
    const lr = 0.5;
    for (let step = 0; step < 50; step++) {
      const feeds: Record<string, Tensor> = { x: new Tensor('float32', [N, Din], x), labels: new Tensor('int64', [N, 1], labels) };
      for (const [k, v] of Object.entries(values)) feeds[k] = new Tensor('float32', shapes[k]!, v);
      const r = await s.run(feeds);
      losses.push((r.loss!.data as Float32Array)[0]!);
      for (const [k, v] of Object.entries(values)) {
        const gr = r[`grad.${k}`]!.data as Float32Array;
        for (let i = 0; i < v.length; i++) v[i] = v[i]! - lr * gr[i]!;
      }
    }
    await s.release();
    expect(losses[0]).toBeGreaterThan(0.9); // ≈ ln 3 at the start
    expect(losses[49]!).toBeLessThan(0.25 * losses[0]!);
    for (let i = 10; i < 50; i += 10) expect(losses[i]!).toBeLessThan(losses[i - 10]!);
  });
});
