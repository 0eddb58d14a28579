// The segment schedule: gradients with chaining and with recompute equal the plain backward, the backward
// never reads a checkpointed segment's internal activations, and ORT (with trainingSessionOptions) keeps
// the recomputed nodes instead of merging them back into the forward.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeModel } from '../../src/onnx/decode.js';
import { attr, Graph, op, type Value } from '../../src/graph/index.js';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import { backward } from '../../src/autodiff/index.js';
import { buildStack, type StackOptions } from './stack.js';
import { openGraph } from './helpers.js';

const small: Omit<StackOptions, 'schedule'> = { layers: 3, B: 1, T: 8, C: 16, H: 2, F: 32, lora: 0 };

async function gradsOf(o: StackOptions): Promise<Map<string, Float32Array>> {
  const s = buildStack(o);
  const sess = await openGraph(s.g);
  const r = await sess.run(s.feeds);
  await sess.release();
  return new Map(['loss', ...s.gradNames].map((n) => [n, r[n]!.data as Float32Array]));
}

describe('checkpointing schedule', () => {
  for (const lora of [0, 4]) {
    it(`gives the plain backward's gradients (${lora ? `LoRA r=${lora}` : 'all weights'})`, async () => {
      const plain = await gradsOf({ ...small, lora, schedule: 'plain' });
      for (const schedule of ['chain', 'checkpoint'] as const) {
        const other = await gradsOf({ ...small, lora, schedule });
        expect([...other.keys()]).toEqual([...plain.keys()]);
        let maxDiff = 0;
        for (const [k, a] of plain) {
          const b2 = other.get(k)!;
          for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b2[i]!) / Math.max(1, Math.abs(a[i]!)));
        }
        expect(maxDiff, schedule).toBeLessThanOrEqual(1e-6);
      }
    });
  }

  it('reads a frozen weight’s transpose as it is: ORT folds it into the recomputed GEMM, which pre-packs W', async () => {
    const rng = new Rng(3);
    const wData = new Tensor('float32', [6, 8], Float32Array.from({ length: 48 }, () => rng.uniform(-1, 1)));
    const build = (ckpt: boolean): { g: Graph; a: Value } => {
      const g = new Graph('frozen-w');
      const x = g.input('x', 'float32', [4, 8]);
      const a = g.input('a', 'float32', [8]);
      const w = g.initializer('w', wData);
      const h = g.markSegment('seg', () => op.Tanh(op.MatMul(op.Mul(x, a), op.Transpose(w, [1, 0])))); // [4, 6]
      const loss = op.ReduceSum(op.Mul(h, h), undefined, false);
      g.output(loss, 'loss');
      g.output(backward(g, loss, [a], ckpt ? { checkpoint: {} } : {}).get(a)!, 'da');
      return { g, a };
    };
    const ck = build(true).g;
    const recomputed = ck.nodes.filter((n) => n.name.includes('recompute')).map((n) => n.opType);
    expect(recomputed).toContain('MatMul');
    expect(recomputed).not.toContain('Transpose');
    const feeds = {
      x: new Tensor('float32', [4, 8], Float32Array.from({ length: 32 }, () => rng.uniform(-1, 1))),
      a: new Tensor('float32', [8], Float32Array.from({ length: 8 }, () => rng.uniform(0.5, 1.5))),
    };
    const run = async (g: Graph): Promise<Float32Array> => {
      const s = await openGraph(g);
      const r = await s.run(feeds);
      await s.release();
      return r['da']!.data as Float32Array;
    };
    const [plain, ckpt] = [await run(build(false).g), await run(ck)];
    for (let i = 0; i < 8; i++) expect(Math.abs(ckpt[i]! - plain[i]!)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(plain[i]!)));
  });

  it('never lets the backward read a checkpointed segment’s internal activations', () => {
    const { g } = buildStack({ ...small, schedule: 'checkpoint' });
    const loss = g.outputs.find((o) => o.name === 'loss')!.value.producer!.inputs[0]!;
    const forwardEnd = loss.producer!.index + 1;
    const usedAfter = new Map<Value, number>(); // last forward consumer index
    for (const n of g.nodes.slice(0, forwardEnd)) for (const v of n.inputs) if (v) usedAfter.set(v, n.index);
    let reads = 0;
    let recomputed = 0;
    for (const seg of g.segments) {
      const internal = new Set(
        g.nodes.slice(seg.start, seg.end).flatMap((n) => n.outputs.filter((o) => (usedAfter.get(o) ?? -1) < seg.end)),
      );
      for (const n of g.nodes.slice(forwardEnd)) {
        if (n.inputs.some((v) => v && internal.has(v))) reads++;
        if (n.name.includes(`recompute.${seg.name}/`)) recomputed++;
      }
    }
    expect(reads).toBe(0);
    expect(recomputed).toBeGreaterThan(0);
  });

  it('keeps the recompute and its ordering edges through ORT’s optimizers with trainingSessionOptions', async () => {
    const { g, feeds } = buildStack({ ...small, schedule: 'checkpoint' });
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
    const optimized = async (disableOptimizers: string[]): Promise<{ gemms: number; shapes: number }> => {
      const file = join(dir, `${disableOptimizers.length}.onnx`);
      const s = await openGraph(g, { disableOptimizers, optimizedModelFilePath: file });
      await s.run(feeds);
      await s.release();
      const nodes = decodeModel(new Uint8Array(readFileSync(file))).graph.node;
      return { gemms: nodes.filter((n) => /MatMul/.test(n.opType)).length, shapes: nodes.filter((n) => n.opType === 'Shape').length };
    };
    try {
      const ours = { gemms: g.nodes.filter((n) => n.opType === 'MatMul').length, shapes: g.nodes.filter((n) => n.opType === 'Shape').length };
      expect(ours.shapes).toBeGreaterThan(0);
      expect(await optimized(['CommonSubexpressionElimination', 'ConstantFolding'])).toEqual(ours);
      // ConstantFolding knows every static shape: it folds the ordering edges away (schedule.ts).
      expect((await optimized([])).shapes).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('orders a weight gradient before the next segment’s backward with a data edge', () => {
    // Two segments y = x·W1·W2: segment 0's incoming gradient must depend on dW2.
    const g = new Graph('order');
    const x = g.input('x', 'float32', [4, 4]);
    const w1 = g.input('w1', 'float32', [4, 4]);
    const w2 = g.input('w2', 'float32', [4, 4]);
    const h = g.markSegment('s0', () => op.Tanh(op.MatMul(x, w1)));
    const y = g.markSegment('s1', () => op.Tanh(op.MatMul(h, w2)));
    const grads = backward(g, op.ReduceSum(y, undefined, false), [w1, w2], { checkpoint: { recompute: 'none' } });
    const dw2 = grads.get(w2)!;
    const dw1 = grads.get(w1)!;
    const ancestors = new Set<Value>();
    const stack: Value[] = [dw1];
    while (stack.length) {
      const v = stack.pop()!;
      if (ancestors.has(v)) continue;
      ancestors.add(v);
      for (const i of v.producer?.inputs ?? []) if (i) stack.push(i);
    }
    expect(ancestors.has(dw2)).toBe(true);
  });

  it('refuses nested or duplicate segments, unknown names in a plan, and random ops in a recompute', () => {
    const g = new Graph('bad');
    const x = g.input('x', 'float32', [4]);
    expect(() => g.markSegment('a', () => g.markSegment('b', () => op.Neg(x)))).toThrow(/do not nest/);
    const h = g.markSegment('s', () => op.Tanh(x));
    expect(() => g.markSegment('s', () => op.Neg(h))).toThrow(/Duplicate segment/);
    const loss = op.ReduceSum(h, undefined, false);
    expect(() => backward(g, loss, [x], { checkpoint: { recompute: ['nope'] } })).toThrow(/segment 'nope'/);

    const g2 = new Graph('rand');
    const x2 = g2.input('x', 'float32', [4]);
    const noise = (): Value => g2.node('RandomUniform', [], { shape: attr.ints([4]) }, [{ dtype: 'float32', shape: [4] }])[0]!;
    const y2 = g2.markSegment('drop', () => op.Mul(x2, noise()));
    expect(() => backward(g2, op.ReduceSum(op.Tanh(y2), undefined, false), [x2], { checkpoint: {} })).toThrow(/is random/);
    expect(() => backward(g2, op.ReduceSum(op.Tanh(y2), undefined, false), [x2], { checkpoint: { recompute: 'none' } })).not.toThrow();
  });
});
