import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { Graph, op, dumpGraph, toModelProto, defineFunction } from '../../src/graph/index.js';

describe('graph builder', () => {
  it('infers static shapes with broadcasting, matmul batching and reshape', () => {
    const g = new Graph('t');
    const x = g.input('x', 'float32', [2, 3, 4]);
    const w = g.scope('model', () => g.scope('proj', () => g.initializer('weight', Tensor.zeros('float32', [5, 4]))));
    expect(w.name).toBe('model.proj.weight');
    const y = op.MatMul(x, op.Transpose(w)); // [2,3,5]
    expect(y.shape).toEqual([2, 3, 5]);
    const z = op.Add(y, 1);
    expect(z.shape).toEqual([2, 3, 5]);
    expect(op.Reshape(z, [0, -1]).shape).toEqual([2, 15]);
    expect(op.ReduceSum(z, [-1], false).shape).toEqual([2, 3]);
    expect(op.Mul(z, op.ReduceMean(z, [1])).shape).toEqual([2, 3, 5]);
    expect(op.Slice(z, [1], [-1], [2]).shape).toEqual([2, 3, 3]);
    expect(op.Split(z, [2, 3], -1).map((v) => v.shape)).toEqual([[2, 3, 2], [2, 3, 3]]);
    expect(op.Gather(w, g.input('ids', 'int64', [2, 7]), 0).shape).toEqual([2, 7, 4]);
    expect(() => op.Add(x, g.input('bad', 'float32', [3]))).toThrow(/broadcast/);
    expect(() => op.MatMul(x, g.input('bad2', 'float32', [5, 6]))).toThrow(/inner dimensions/);
  });

  it('names constants once and dumps readably', () => {
    const g = new Graph('d');
    const x = g.input('x', 'float32', [2]);
    const a = op.Mul(x, 2);
    const b = op.Mul(a, 2);
    g.output(b, 'y');
    expect(g.initializers.size).toBe(1); // the scalar 2 is shared
    expect(dumpGraph(g)).toMatchInlineSnapshot(`
      "graph d
        input %x: float32[2]
        init %const_0: float32[]
        %Mul_0: float32[2] = Mul(%x, %const_0)
        %Mul_1: float32[2] = Mul(%Mul_0, %const_0)
        %y: float32[2] = Identity(%Mul_1)
        output %y"
    `);
  });

  it('lays out external initializers aligned and keeps small ones inline', () => {
    const g = new Graph('e');
    const x = g.input('x', 'float32', [3]);
    const big = g.initializer('big', Tensor.fromNumbers([1, 2, 3], [3]), { external: true });
    const big2 = g.initializer('big2', Tensor.fromNumbers([4, 5, 6], [3]), { external: true });
    g.output(op.Add(op.Add(x, big), big2), 'y');
    const { model, externalData } = toModelProto(g);
    expect(externalData).toHaveLength(1);
    expect(externalData[0]!.data.byteLength).toBe(64 + 64);
    const ext = model.graph.initializer.find((t) => t.name === 'big2')!;
    expect(ext.externalData).toContainEqual({ key: 'offset', value: '64' });
    expect(new Float32Array(externalData[0]!.data.buffer, 64, 3)).toEqual(new Float32Array([4, 5, 6]));
  });

  it('defines functions whose constants become Constant nodes', () => {
    const fn = defineFunction({ name: 'axpy2', inputs: [{ name: 'x', dtype: 'float32', shape: [4] }] }, (_g, [x]) => [op.Add(op.Mul(x!, 2), 1)]);
    expect(fn.proto.node.map((n) => n.opType)).toEqual(['Constant', 'Constant', 'Mul', 'Add']);
    const g = new Graph('caller');
    const x = g.input('x', 'float32', [4]);
    const [y] = fn.call(g, [x]);
    expect(y!.shape).toEqual([4]);
    expect(g.functions.size).toBe(1);
    expect(() => fn.call(g, [g.input('x2', 'float32', [5])])).toThrow(/expected float32\[4\]/);
  });
});

describe('Transpose of a Transpose, and dead nodes', () => {
  it('cancels inverse transposes and leaves the dead node out of the ModelProto', () => {
    const g = new Graph('tt');
    const x = g.input('x', 'float32', [2, 3, 4]);
    const t = op.Transpose(x, [1, 2, 0]); // [3, 4, 2]
    expect(op.Transpose(t, [2, 0, 1])).toBe(x); // the inverse permutation
    const notInverse = op.Transpose(t, [1, 0, 2]); // [4, 3, 2]: a real node
    expect(notInverse.shape).toEqual([4, 3, 2]);
    g.output(op.Relu(x), 'y');
    const { model } = toModelProto(g);
    expect(g.nodes.filter((n) => n.opType === 'Transpose')).toHaveLength(2);
    expect(model.graph.node.map((n) => n.opType)).not.toContain('Transpose');
    expect(model.graph.node.map((n) => n.opType)).toContain('Relu');
  });

  it('leaves out the initializers only dead nodes read, in the graph and in the external blob', () => {
    const g = new Graph('dead-init');
    const x = g.input('x', 'float32', [2, 2]);
    const live = g.initializer('live', Tensor.fromNumbers([1, 2, 3, 4], [2, 2]), { external: true });
    const dead = g.initializer('dead', Tensor.fromNumbers([5, 6, 7, 8], [2, 2]), { external: true });
    op.Add(x, dead); // read by nothing that reaches an output
    const dead2 = op.Mul(x, 3); // its scalar constant only feeds this dead node
    expect(dead2.shape).toEqual([2, 2]);
    g.output(op.MatMul(x, live), 'y');
    const { model, externalData } = toModelProto(g);
    expect(model.graph.initializer.map((t) => t.name)).toEqual(['live']);
    expect(externalData[0]!.data.byteLength).toBe(64); // one chunk of 16 bytes, aligned to 64 (two without the fix)
    expect(model.graph.node.map((n) => n.opType)).not.toContain('Add');
  });
});
