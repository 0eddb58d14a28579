// Small hand-built graphs for the runtime tests (the lead's src/graph builder is not used here, so these
// tests depend only on src/onnx and src/runtime).

import { encodeModel } from '../../src/onnx/encode.js';
import { AttrType, ONNX_DTYPE, type ModelProto, type NodeProto, type TensorProto, type ValueInfo } from '../../src/onnx/proto.js';
import type { DType } from '../../src/core/dtype.js';

const vi = (name: string, dtype: DType, dims: number[]): ValueInfo => ({ name, elemType: ONNX_DTYPE[dtype], shape: dims.map((d) => ({ dimValue: d })) });
const node = (opType: string, input: string[], output: string[], attribute: NodeProto['attribute'] = []): NodeProto => ({
  input,
  output,
  name: `${opType}_${output[0]}`,
  opType,
  domain: '',
  attribute,
});
const f32 = (name: string, dims: number[], v: Float32Array): TensorProto => ({ name, dims, dataType: 1, rawData: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) });

function model(name: string, nodes: NodeProto[], inputs: ValueInfo[], outputs: ValueInfo[], initializer: TensorProto[] = []): ModelProto {
  return {
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }],
    producerName: 'ts-finetune-test',
    producerVersion: '0',
    graph: { name, node: nodes, initializer, input: inputs, output: outputs, valueInfo: [] },
  };
}

/** y = x·W + x with W = [[1,2],[3,4]]; x: float32 [2,2]. */
export function tinyBytes(): Uint8Array {
  return encodeModel(
    model('tiny', [node('MatMul', ['x', 'W'], ['xw']), node('Add', ['xw', 'x'], ['y'])], [vi('x', 'float32', [2, 2])], [vi('y', 'float32', [2, 2])], [
      f32('W', [2, 2], new Float32Array([1, 2, 3, 4])),
    ]),
  );
}

export const ECHO_DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'];

/** One input per exchangeable dtype, each echoed by Identity to `<name>_out`. */
export function echoBytes(): Uint8Array {
  return encodeModel(
    model(
      'echo',
      ECHO_DTYPES.map((d) => node('Identity', [d], [`${d}_out`])),
      ECHO_DTYPES.map((d) => vi(d, d, [3])),
      ECHO_DTYPES.map((d) => vi(`${d}_out`, d, [3])),
    ),
  );
}

/** x float32 [2] → Cast to bfloat16 → graph output (which JS cannot receive). */
export function bf16OutputBytes(): Uint8Array {
  return encodeModel(
    model('bf16', [node('Cast', ['x'], ['y'], [{ name: 'to', type: AttrType.INT, i: ONNX_DTYPE.bfloat16 }])], [vi('x', 'float32', [2])], [vi('y', 'bfloat16', [2])]),
  );
}

/** y = x + (c + c): ConstantFolding turns c + c into one initializer unless disabled. */
export function foldableBytes(): Uint8Array {
  return encodeModel(
    model('fold', [node('Add', ['c', 'c'], ['cc']), node('Add', ['x', 'cc'], ['y'])], [vi('x', 'float32', [4])], [vi('y', 'float32', [4])], [
      f32('c', [4], new Float32Array([1, 2, 3, 4])),
    ]),
  );
}

/** out = data[idx] (Gather): an out-of-range index fails inside ORT at run time. */
export function gatherBytes(): Uint8Array {
  return encodeModel(
    model('gather', [node('Gather', ['data', 'idx'], ['out'])], [vi('data', 'float32', [3]), vi('idx', 'int64', [1])], [vi('out', 'float32', [1])]),
  );
}

/**
 * A deliberately slow graph: `n` chained MatMuls [512,1024]·[1024,1024] (~1.07 GFLOP each), W the
 * identity so values stay finite; outputs `y` and the cheap `first` = x + 1 (for fetch tests).
 */
export function slowBytes(n: number): Uint8Array {
  const W = new Float32Array(1024 * 1024);
  for (let i = 0; i < 1024; i++) W[i * 1024 + i] = 1;
  const nodes: NodeProto[] = [];
  let prev = 'x';
  for (let i = 0; i < n; i++) {
    nodes.push(node('MatMul', [prev, 'W'], [`h${i}`]));
    prev = `h${i}`;
  }
  nodes.push(node('Identity', [prev], ['y']));
  nodes.push(node('Add', ['x', 'one'], ['first']));
  return encodeModel(
    model('slow', nodes, [vi('x', 'float32', [512, 1024])], [vi('y', 'float32', [512, 1024]), vi('first', 'float32', [512, 1024])], [
      f32('W', [1024, 1024], W),
      f32('one', [], new Float32Array([1])),
    ]),
  );
}
