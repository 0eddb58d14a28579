// kernels/ordering.ts: sumInOrder gives the plain sum, and builds part k only from an input that waits for
// the sum of parts < k, so ORT cannot run every part first and keep them all alive (the 16-bit head's
// dlogits·W in lm-head-loss.ts and half-linear.ts's dx, checked here on their function bodies).
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/index.js';
import { Graph, op, type Value } from '../../src/graph/index.js';
import type { FunctionProto } from '../../src/onnx/proto.js';
import { backward } from '../../src/autodiff/index.js';
import { sumInOrder } from '../../kernels/ordering.js';
import { halfLinear } from '../../kernels/half-linear.js';
import { lmHeadLoss } from '../../kernels/lm-head-loss.js';
import { runOnce } from '../autodiff/helpers.js';

/** Whether node output `to` depends on node output `from` inside one function body (or graph). */
function dependsOn(nodes: FunctionProto['node'], to: string, from: string): boolean {
  const producer = new Map<string, FunctionProto['node'][number]>();
  for (const n of nodes) for (const o of n.output) producer.set(o, n);
  const seen = new Set<string>();
  const stack = [to];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (v === from) return true;
    if (seen.has(v)) continue;
    seen.add(v);
    for (const i of producer.get(v)?.input ?? []) if (i) stack.push(i);
  }
  return false;
}

/** In a body, each of the MatMuls `mm` after the first depends on the Add that summed the ones before it. */
function expectChained(f: FunctionProto, mm: FunctionProto['node']): void {
  const adds = f.node.filter((n) => n.opType === 'Add');
  expect(mm.length).toBeGreaterThan(2);
  for (let k = 2; k < mm.length; k++) {
    const sumBefore = adds.find((a) => dependsOn(f.node, a.output[0]!, mm[k - 1]!.output[0]!) && !dependsOn(f.node, a.output[0]!, mm[k]!.output[0]!));
    expect(sumBefore, `MatMul ${k} has a sum of the parts before it`).toBeDefined();
    expect(dependsOn(f.node, mm[k]!.output[0]!, sumBefore!.output[0]!), `MatMul ${k} waits for the sum before it`).toBe(true);
  }
}

describe('kernels/ordering sumInOrder', () => {
  it('equals the plain sum, and part k reads an input that waits for parts < k', async () => {
    const g = new Graph('sum');
    const x = g.input('x', 'float32', [3]);
    const parts: Value[] = [];
    const srcs: Value[] = [];
    const s = sumInOrder(g, x, x, 4, (k, src) => {
      srcs.push(src);
      const p = op.Mul(src, k + 1);
      parts.push(p);
      return p;
    });
    g.output(s, 's');
    const out = await runOnce(g, { x: new Tensor('float32', [3], Float32Array.from([1, 2, 3])) });
    expect(Array.from(out.s!.data as Float32Array)).toEqual([10, 20, 30]); // (1 + 2 + 3 + 4) · x
    const depends = (v: Value, on: Value): boolean => v === on || (v.producer?.inputs ?? []).some((i) => i !== null && depends(i, on));
    for (let k = 1; k < 4; k++) expect(depends(srcs[k]!, parts[k - 1]!)).toBe(true);
  });

  it('half-linear dx sums its 16-bit row chunks one at a time', () => {
    const g = new Graph('half');
    const x = g.input('x', 'float32', [4, 8]);
    const w = g.initializer('w', new Tensor('float32', [12, 8], new Float32Array(96).fill(0.5)).to('float16'));
    const y = halfLinear(g, x, w, { chunkBytes: 3 * 4 * 8 });
    backward(g, op.ReduceSum(y, undefined, false), [x]);
    const dx = [...g.functions.values()].find((f) => f.name.startsWith('HalfLinearDx'))!;
    expectChained(dx, dx.node.filter((n) => n.opType === 'MatMul'));
  });

  it('the chunked head computes dlogits·W of a 16-bit head one row block at a time', () => {
    const g = new Graph('head');
    const h = g.input('h', 'float32', [4, 8]);
    const targets = g.input('targets', 'int64', [4]);
    // W is cast in 4 MiB float32 row blocks (131,072 rows of 8): V = 3.5 blocks.
    const V = 3.5 * 131072;
    const w = g.input('w', 'float16', [V, 8]);
    lmHeadLoss(g, h, w, targets);
    const f = [...g.functions.values()].find((fn) => fn.name.startsWith('LmHeadLoss'))!;
    const transposed = new Set(f.node.filter((n) => n.opType === 'Transpose').flatMap((n) => n.output));
    const dlogitsTimesW = f.node.filter((n) => n.opType === 'MatMul' && !transposed.has(n.input[1]!)); // not h·Wᵀ
    expectChained(f, dlogitsTimesW);
  });
});
