// Models for the encoder tests: one that uses every field and attribute type proto.ts has (round trips and
// the protobufjs cross-check; not runnable), and one small runnable model with a model-local function,
// reference attributes and a large initializer (loaded by onnxruntime-node).

import { AttrType, type FunctionProto, type GraphProto, type ModelProto, type TensorProto } from '../../src/onnx/proto.js';

const utf8 = new TextEncoder();

export function f32Tensor(name: string, dims: number[], values: ArrayLike<number>): TensorProto {
  return { name, dims, dataType: 1, rawData: new Uint8Array(Float32Array.from(values).buffer) };
}

function subgraph(name: string): GraphProto {
  return {
    name,
    node: [{ input: ['a'], output: ['b'], name: `${name}/id`, opType: 'Identity', domain: '', attribute: [] }],
    initializer: [],
    input: [{ name: 'a', elemType: 1, shape: [] }],
    output: [{ name: 'b', elemType: 1 }],
    valueInfo: [],
  };
}

/** Every field and attribute type, with edge values: negative / 64-bit ints, non-ASCII text, 3 MB of raw data. */
let bigBytes: Uint8Array | undefined;

export function kitchenSinkModel(): ModelProto {
  // 3 MiB + 7: its length prefix needs 4 varint bytes. Made once and shared (tests never write into it).
  const big = (bigBytes ??= Uint8Array.from({ length: 3 * 1024 * 1024 + 7 }, (_, i) => (i * 31) & 0xff));
  const fn: FunctionProto = {
    name: 'ScaleAdd',
    domain: 'ts.test',
    input: ['X', 'Y'],
    output: ['Z'],
    attribute: ['unused'],
    attributeProto: [{ name: 'alpha', type: AttrType.FLOAT, f: 2 }],
    node: [
      { input: [], output: ['a'], name: 'c', opType: 'Constant', domain: '', attribute: [{ name: 'value_float', type: AttrType.FLOAT, refAttrName: 'alpha' }] },
      { input: ['X', 'a'], output: ['xa'], name: 'm', opType: 'Mul', domain: '', attribute: [] },
      { input: ['xa', 'Y'], output: ['Z'], name: 'add', opType: 'Add', domain: '', attribute: [] },
    ],
    opsetImport: [{ domain: '', version: 21 }],
    docString: 'Z = alpha·X + Y',
  };
  return {
    irVersion: 10,
    opsetImport: [
      { domain: '', version: 21 },
      { domain: 'com.microsoft', version: 1 },
      { domain: 'ts.test', version: 1 },
    ],
    producerName: 'ts-finetune',
    producerVersion: '0.1.0',
    domain: 'ai.ts-finetune',
    modelVersion: 3,
    docString: 'kitchen sink — ünïcode ✓',
    metadataProps: [{ key: 'k', value: 'v' }],
    functions: [fn],
    graph: {
      name: 'sink',
      docString: 'graph doc',
      node: [
        {
          input: ['x', '', 'w'],
          output: ['y'],
          name: 'everything',
          opType: 'Custom',
          domain: 'ts.test',
          docString: 'node doc',
          attribute: [
            { name: 'f', type: AttrType.FLOAT, f: 0.5 },
            { name: 'f0', type: AttrType.FLOAT, f: 0 },
            { name: 'i', type: AttrType.INT, i: -1 },
            { name: 'i0', type: AttrType.INT, i: 0 },
            { name: 'ibig', type: AttrType.INT, i: 2n ** 60n + 5n },
            { name: 'ineg', type: AttrType.INT, i: -(2n ** 62n) },
            { name: 'i53', type: AttrType.INT, i: 2 ** 53 - 1 },
            { name: 's', type: AttrType.STRING, s: utf8.encode('héllo ✓') },
            { name: 't', type: AttrType.TENSOR, t: f32Tensor('tv', [2], [1.5, -2]) },
            { name: 'g', type: AttrType.GRAPH, g: subgraph('then') },
            { name: 'fs', type: AttrType.FLOATS, floats: [1, -0.25, Math.fround(3e38), Number.POSITIVE_INFINITY] },
            { name: 'fs0', type: AttrType.FLOATS, floats: [] },
            { name: 'is', type: AttrType.INTS, ints: [0, 1, -1, 127, 128, 300, 2 ** 31, -(2 ** 31) - 1, 2n ** 63n - 1n] },
            { name: 'ss', type: AttrType.STRINGS, strings: [utf8.encode('a'), utf8.encode(''), utf8.encode('日本')] },
            { name: 'ts', type: AttrType.TENSORS, tensors: [f32Tensor('t1', [1], [1]), { name: 't2', dims: [0], dataType: 7, rawData: new Uint8Array(0) }] },
            { name: 'gs', type: AttrType.GRAPHS, graphs: [subgraph('a'), subgraph('b')] },
          ],
        },
      ],
      initializer: [
        { name: 'w', dims: [big.length], dataType: 2, rawData: big },
        {
          name: 'ext',
          dims: [4, 1024],
          dataType: 1,
          externalData: [
            { key: 'location', value: 'ext.bin' },
            { key: 'offset', value: '0' },
            { key: 'length', value: '16384' },
          ],
        },
        { name: 'scalar', dims: [], dataType: 7, rawData: new Uint8Array(new BigInt64Array([-3n]).buffer) },
      ],
      input: [{ name: 'x', elemType: 1, shape: [{ dimParam: 'batch' }, { dimValue: 3 }, { dimValue: 0 }] }],
      output: [{ name: 'y', elemType: 10, shape: [{ dimValue: 2 ** 40 }] }],
      valueInfo: [{ name: 'mid', elemType: 16 }],
    },
  };
}

/**
 * Runnable: z = ScaleAdd(x·W, b, alpha=3) + ScaleAdd(x·W, b) (default alpha=2) = 5·(x·W) + 2b,
 * with W [256, 1024] (1 MiB) and b [1024]. x: [2, 256].
 */
export function runnableModel(W: Float32Array, b: Float32Array): ModelProto {
  const m = kitchenSinkModel();
  return {
    irVersion: 10,
    opsetImport: [
      { domain: '', version: 21 },
      { domain: 'ts.test', version: 1 },
    ],
    producerName: 'ts-finetune-test',
    producerVersion: '0',
    functions: m.functions!,
    graph: {
      name: 'runnable',
      node: [
        { input: ['x', 'W'], output: ['xw'], name: 'mm', opType: 'MatMul', domain: '', attribute: [] },
        { input: ['xw', 'b'], output: ['z3'], name: 'sa3', opType: 'ScaleAdd', domain: 'ts.test', attribute: [{ name: 'alpha', type: AttrType.FLOAT, f: 3 }] },
        { input: ['xw', 'b'], output: ['z2'], name: 'sa2', opType: 'ScaleAdd', domain: 'ts.test', attribute: [] },
        { input: ['z3', 'z2'], output: ['z'], name: 'sum', opType: 'Add', domain: '', attribute: [] },
      ],
      initializer: [f32Tensor('W', [256, 1024], W), f32Tensor('b', [1024], b)],
      input: [{ name: 'x', elemType: 1, shape: [{ dimValue: 2 }, { dimValue: 256 }] }],
      output: [{ name: 'z', elemType: 1, shape: [{ dimValue: 2 }, { dimValue: 1024 }] }],
      valueInfo: [],
    },
  };
}
