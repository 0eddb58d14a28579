// backward()'s contract: zeros for unreachable wrt, the seed, rules only on the wrt → loss path,
// MISSING_GRADIENT_RULE naming op and node, the function-gradient registry, frozen operands cost nothing.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { isTsFinetuneError } from '../../src/core/errors.js';
import { Graph, op, defineFunction, KERNEL_DOMAIN } from '../../src/graph/index.js';
import { backward, registerFunctionGradient } from '../../src/autodiff/index.js';
import { gradCheck } from '../../src/autodiff/grad-check.js';
import { f64, openGraph, runner } from './helpers.js';
import { bnbWeight } from './cases.js';

function code(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (isTsFinetuneError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('did not throw');
}

describe('backward', () => {
  it('returns zeros for a wrt the loss does not reach, and scales by the seed', async () => {
    const g = new Graph('z');
    const x = g.input('x', 'float64', [3]);
    const unused = g.input('unused', 'float64', [2, 2]);
    const seed = g.input('seed', 'float64', []);
    const loss = op.ReduceSum(op.Mul(x, x), undefined, false);
    const grads = backward(g, loss, [x, unused], { seed });
    g.output(grads.get(x)!, 'gx');
    g.output(grads.get(unused)!, 'gu');
    const s = await openGraph(g);
    const r = await s.run({
      x: new Tensor('float64', [3], Float64Array.from([1, 2, 3])),
      unused: Tensor.zeros('float64', [2, 2]),
      seed: new Tensor('float64', [], Float64Array.from([0.5])),
    });
    expect([...f64(r.gx)]).toEqual([1, 2, 3]); // 0.5 · 2x
    expect([...f64(r.gu)]).toEqual([0, 0, 0, 0]);
    expect(r.gu!.dims).toEqual([2, 2]);
    await s.release();
  });

  it('applies rules only on the path from wrt to loss, and names the op and node of a missing rule', () => {
    const g = new Graph('m');
    const x = g.input('x', 'float32', [4]);
    const side = g.node('Round', [x], {}, [{ dtype: 'float32', shape: [4] }])[0]!; // no rule, off the path
    g.output(side, 'side');
    const loss = op.ReduceSum(op.Exp(x), undefined, false);
    expect(() => backward(g, loss, [x])).not.toThrow();

    const g2 = new Graph('m2');
    const x2 = g2.input('x', 'float32', [4]);
    const r = g2.scope('model.layers.0', () => g2.node('Round', [op.Exp(x2)], {}, [{ dtype: 'float32', shape: [4] }])[0]!);
    const err = code(() => backward(g2, op.ReduceSum(r, undefined, false), [x2]));
    expect(err.code).toBe('MISSING_GRADIENT_RULE');
    expect(err.message).toContain('Round');
    expect(err.message).toContain("node 'model.layers.0/Round#1'");
  });

  it('does no work for operands that need no gradient (frozen weights: no dW GEMM)', () => {
    const g = new Graph('f');
    const x = g.input('x', 'float32', [2, 8, 16]);
    const w = g.initializer('w', Tensor.zeros('float32', [16, 16]));
    const loss = op.ReduceSum(op.MatMul(x, w), undefined, false);
    const before = g.nodes.length;
    backward(g, loss, [x]);
    const emitted = g.nodes.slice(before).map((n) => n.opType);
    expect(emitted.filter((t) => t === 'MatMul')).toHaveLength(1); // dx only
  });

  it('takes gradients of model-local functions from the registry', async () => {
    const fn = defineFunction({ name: 'twice_tanh', inputs: [{ name: 'x', dtype: 'float64', shape: [5] }] }, (_g, [x]) => [op.Mul(op.Tanh(x!), 2)]);
    const build = (g: Graph, x: Parameters<typeof fn.call>[1][number]) => fn.call(g, [x])[0]!;
    const g = new Graph('nofn');
    const x = g.input('x', 'float64', [5]);
    const err = code(() => backward(g, op.ReduceSum(build(g, x), undefined, false), [x]));
    expect(err.code).toBe('MISSING_GRADIENT_RULE');
    expect(err.message).toContain(`${KERNEL_DOMAIN}.twice_tanh`);

    // y = 2 tanh x   dx = dy · 2 (1 − (y/2)²)
    const restore = registerFunctionGradient(KERNEL_DOMAIN, 'twice_tanh', (c) => {
      const half = op.Mul(c.y(0), 0.5);
      return [op.Mul(c.gy, op.Mul(op.Sub(1, op.Mul(half, half)), 2))];
    });
    try {
      const res = await gradCheck([{ name: 'twice_tanh', inputs: [{ shape: [5] }], build: (gg, [xx]) => build(gg, xx!) }], runner, {
        dtype: 'float64',
        eps: 1e-6,
        rtol: 1e-6,
        atol: 1e-8,
      });
      expect(res[0]!.ok).toBe(true);
    } finally {
      restore();
    }
    expect(code(() => registerFunctionGradient('', 'Add', () => [])).code).toBe('INVALID_ARGUMENT');
  });

  it('checks the shape a rule returns, naming the rule', () => {
    const fn = defineFunction({ name: 'bad_shape', inputs: [{ name: 'x', dtype: 'float32', shape: [3] }] }, (_g, [x]) => [op.Neg(x!)]);
    const restore = registerFunctionGradient(KERNEL_DOMAIN, 'bad_shape', (c) => [op.ReduceSum(c.gy)]);
    try {
      const g = new Graph('bad');
      const x = g.input('x', 'float32', [3]);
      const err = code(() => backward(g, op.ReduceSum(fn.call(g, [x])[0]!, undefined, false), [x]));
      expect(err.code).toBe('GRAPH_ERROR');
      expect(err.message).toMatch(/bad_shape .* gave float32\[1\] for x, which is float32\[3\]/);
    } finally {
      restore();
    }
  });

  it('asks for the kernels/ dequant hook when differentiating through MatMulBnb4', () => {
    const g = new Graph('q');
    const x = g.input('x', 'float32', [2, 16]);
    const y = op.MatMulBnb4(x, g.constant(bnbWeight.packed), g.constant(bnbWeight.absmax), { K: 16, N: 4, blockSize: 16, quantType: 'nf4' });
    const err = code(() => backward(g, op.ReduceSum(y, undefined, false), [x]));
    expect(err.code).toBe('MISSING_GRADIENT_RULE');
    expect(err.message).toContain("registerFunctionGradient('com.microsoft', 'MatMulBnb4'");
  });
});
