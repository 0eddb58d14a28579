// The hand-written encoder against its own decoder (round trips) and against protobufjs reading a
// hand-copied subset of onnx.proto3 (test/onnx/onnx-subset.proto), in both directions.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { decodeFunction, decodeModel, decodeTensor } from '../../src/onnx/decode.js';
import { encodeFunction, encodeModel, encodeTensor } from '../../src/onnx/encode.js';
import { AttrType, type ModelProto } from '../../src/onnx/proto.js';
import { ProtoWriter, varintSize } from '../../src/onnx/proto-writer.js';
import { ProtoReader } from '../../src/onnx/proto-reader.js';
import { f32Tensor, kitchenSinkModel } from './sample-models.js';

/** Uint8Arrays replaced by a digest: vitest's deep equality walks typed arrays element by element (slow at MBs). */
function digestBytes(v: unknown): unknown {
  if (v instanceof Uint8Array) return `bytes:${v.length}:${createHash('sha1').update(v).digest('hex')}`;
  if (Array.isArray(v)) return v.map(digestBytes);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, digestBytes(x)]));
  return v;
}
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0;

const root = protobuf.parse(readFileSync(new URL('./onnx-subset.proto', import.meta.url), 'utf8')).root;
const ModelType = root.lookupType('onnx.ModelProto');

describe('proto writer / reader', () => {
  it('varints: boundaries, 64-bit and negative int64 (10 bytes, two\'s complement)', () => {
    const values: (number | bigint)[] = [0, 1, 127, 128, 16383, 16384, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1, -1, -2, -(2 ** 31), -(2 ** 53) + 1, 2n ** 63n - 1n, -(2n ** 63n)];
    const w = new ProtoWriter(16);
    for (const v of values) w.int64(1, v);
    const bytes = w.finish();
    const r = new ProtoReader(bytes);
    for (const v of values) {
      expect(r.tag()).toEqual([1, 0]);
      const got = r.int64();
      expect(typeof got === 'bigint' ? got : BigInt(got)).toBe(BigInt(v));
    }
    expect(r.pos).toBe(bytes.length);
    // -1 takes 10 bytes exactly as protobuf's int64.
    const neg = new ProtoWriter();
    neg.int64(1, -1);
    expect(Array.from(neg.finish())).toEqual([8, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1]);
    expect([0, 127, 128, 2 ** 21, 2 ** 28, 2 ** 35, 2 ** 53 - 1].map(varintSize)).toEqual([1, 1, 2, 4, 5, 6, 8]);
  });

  it('nested messages whose length needs more (or fewer) bytes than reserved are moved correctly', () => {
    const w = new ProtoWriter(8); // tiny start: exercises growth too
    const payload = new Uint8Array(70_000).map((_, i) => i & 0xff);
    w.message(1, () => w.bytes(2, payload), 1); // needs 3 length bytes, reserved 1
    w.message(3, () => w.uint(4, 5), 5); // needs 1, reserved 5
    const r = new ProtoReader(w.finish());
    expect(r.tag()).toEqual([1, 2]);
    const inner = r.sub();
    expect(inner.tag()).toEqual([2, 2]);
    expect(sameBytes(inner.bytes(), payload)).toBe(true);
    expect(r.tag()).toEqual([3, 2]);
    const small = r.sub();
    expect(small.tag()).toEqual([4, 0]);
    expect(small.uint()).toBe(5);
    expect(r.pos).toBe(r.end);
  });

  it('rejects truncated input with CORRUPT_FILE', () => {
    const bytes = encodeModel(kitchenSinkModel());
    expect(() => decodeModel(bytes.subarray(0, bytes.length - 3))).toThrow(expect.objectContaining({ code: 'CORRUPT_FILE' }));
  });
});

describe('encodeModel / decodeModel', () => {
  it('round-trips every field and attribute type', () => {
    const m = kitchenSinkModel();
    expect(digestBytes(decodeModel(encodeModel(m)))).toEqual(digestBytes(m));
  });

  it('round-trips a tensor and a function on their own', () => {
    const t = f32Tensor('w', [2, 3], [1, 2, 3, 4, 5, 6]);
    expect(digestBytes(decodeTensor(encodeTensor(t)))).toEqual(digestBytes(t));
    const fn = kitchenSinkModel().functions![0]!;
    expect(digestBytes(decodeFunction(encodeFunction(fn)))).toEqual(digestBytes(fn));
  });

  it('is deterministic and refuses a tensor with both raw and external data', () => {
    expect(sameBytes(encodeModel(kitchenSinkModel()), encodeModel(kitchenSinkModel()))).toBe(true);
    const m = kitchenSinkModel();
    m.graph.initializer[0]!.externalData = [{ key: 'location', value: 'x' }];
    expect(() => encodeModel(m)).toThrow(/both rawData and externalData/);
  });

  it('encodes a 10k-node graph in linear time', () => {
    const node = Array.from({ length: 10_000 }, (_, i) => ({
      input: [`model.layers.${i}.input`, `model.layers.${i}.mlp.up_proj.weight`],
      output: [`model.layers.${i}.output`],
      name: `model.layers.${i}/MatMul`,
      opType: 'MatMul',
      domain: '',
      attribute: [{ name: 'perm', type: AttrType.INTS, ints: [0, 2, 1, 3] }],
    }));
    const m: ModelProto = { ...kitchenSinkModel(), functions: [], graph: { ...kitchenSinkModel().graph, node, initializer: [] } };
    const bytes = encodeModel(m); // warm-up (JIT)
    expect(decodeModel(bytes).graph.node.length).toBe(10_000);
    let best = Infinity;
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      encodeModel(m);
      best = Math.min(best, performance.now() - t0);
    }
    // A guard against quadratic behaviour (moving the whole buffer per message would take minutes), not a
    // benchmark: tens of ms on an idle 2-core VM, a few hundred under heavy neighbours.
    expect(best).toBeLessThan(1500);
  });
});

describe('cross-check with protobufjs (onnx-subset.proto)', () => {
  it('protobufjs reads our bytes, and re-encodes them byte for byte', () => {
    const ours = encodeModel(kitchenSinkModel());
    const msg = ModelType.decode(ours);
    expect(ModelType.verify(msg)).toBeNull();
    expect(sameBytes(ModelType.encode(msg).finish(), ours)).toBe(true);
  });

  it('protobufjs sees the values we wrote', () => {
    const o = ModelType.toObject(ModelType.decode(encodeModel(kitchenSinkModel())), { longs: String }) as any;
    expect(o.irVersion).toBe('10');
    expect(o.opsetImport.map((x: any) => [x.domain ?? '', x.version])).toEqual([
      ['', '21'],
      ['com.microsoft', '1'],
      ['ts.test', '1'],
    ]);
    expect(o.docString).toBe('kitchen sink — ünïcode ✓');
    const attrs = Object.fromEntries(o.graph.node[0].attribute.map((a: any) => [a.name, a]));
    expect(attrs.i.i).toBe('-1');
    expect(attrs.ibig.i).toBe(String(2n ** 60n + 5n));
    expect(attrs.ineg.i).toBe(String(-(2n ** 62n)));
    expect(attrs.f.f).toBe(0.5);
    expect(attrs.is.ints).toEqual(['0', '1', '-1', '127', '128', '300', String(2 ** 31), String(-(2 ** 31) - 1), String(2n ** 63n - 1n)]);
    expect(attrs.fs.floats).toEqual([1, -0.25, Math.fround(3e38), Infinity]);
    expect(Buffer.from(attrs.s.s).toString('utf8')).toBe('héllo ✓');
    expect(attrs.g.g.node[0].opType).toBe('Identity');
    expect(attrs.gs.graphs.map((g: any) => g.name)).toEqual(['a', 'b']);
    expect(attrs.t.type).toBe(AttrType.TENSOR);
    const fn = o.functions[0];
    expect(fn.attributeProto[0]).toMatchObject({ name: 'alpha', f: 2, type: AttrType.FLOAT });
    expect(fn.node[0].attribute[0]).toMatchObject({ name: 'value_float', refAttrName: 'alpha', type: AttrType.FLOAT });
    const ext = o.graph.initializer[1];
    expect(ext.dataLocation).toBe(1);
    expect(ext.externalData).toEqual([
      { key: 'location', value: 'ext.bin' },
      { key: 'offset', value: '0' },
      { key: 'length', value: '16384' },
    ]);
    expect(o.graph.initializer[0].rawData.length).toBe(3 * 1024 * 1024 + 7);
    expect(o.graph.input[0].type.tensorType.shape.dim).toEqual([{ dimParam: 'batch' }, { dimValue: '3' }, { dimValue: '0' }]);
    expect(o.graph.output[0].type.tensorType.shape.dim[0].dimValue).toBe(String(2 ** 40));
  });

  it('we read what protobufjs writes', () => {
    const msg = ModelType.fromObject({
      irVersion: 9,
      producerName: 'pbjs',
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'g',
        node: [{ input: ['a'], output: ['b'], opType: 'Transpose', attribute: [{ name: 'perm', type: 7, ints: [1, 0, -1] }] }],
        initializer: [{ name: 'w', dims: [2], dataType: 1, rawData: Array.from(new Uint8Array(new Float32Array([1, 2]).buffer)) }],
        input: [{ name: 'a', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 2 }, { dimParam: 'n' }] } } } }],
      },
    });
    const m = decodeModel(ModelType.encode(msg).finish());
    expect(m.irVersion).toBe(9);
    expect(m.producerName).toBe('pbjs');
    expect(m.opsetImport).toEqual([{ domain: '', version: 17 }]);
    expect(m.graph.node[0]).toMatchObject({ opType: 'Transpose', input: ['a'], output: ['b'] });
    expect(m.graph.node[0]!.attribute[0]).toMatchObject({ name: 'perm', type: AttrType.INTS, ints: [1, 0, -1] });
    expect(Array.from(new Float32Array(m.graph.initializer[0]!.rawData!.buffer))).toEqual([1, 2]);
    expect(m.graph.input[0]).toEqual({ name: 'a', elemType: 1, shape: [{ dimValue: 2 }, { dimParam: 'n' }] });
  });
});
