// TensorProto ↔ core Tensor. The proto shares the tensor's bytes (no copy) on the way in; the way back
// copies into an aligned buffer, since decoded raw data may sit at any byte offset.
// Not here: external data (external-data.ts).

import { DTYPE_BYTES, viewArray } from '../core/dtype.js';
import { TsFinetuneError } from '../core/errors.js';
import { Tensor, numel } from '../core/tensor.js';
import { ONNX_DTYPE, dtypeFromOnnx, type TensorProto } from './proto.js';

/** A TensorProto whose rawData views `t`'s bytes: keep `t` unchanged until the model is encoded. */
export function tensorToProto(name: string, t: Tensor): TensorProto {
  return { name, dims: [...t.dims], dataType: ONNX_DTYPE[t.dtype], rawData: t.bytes() };
}

/** A Tensor from an inline TensorProto (external ones must be internalized first). */
export function tensorFromProto(p: TensorProto): Tensor {
  const dtype = dtypeFromOnnx(p.dataType);
  if (p.rawData === undefined) {
    throw new TsFinetuneError('MISSING_TENSOR', `TensorProto '${p.name}' has no inline data (external data must be internalized first)`, {
      tensor: p.name,
    });
  }
  const n = numel(p.dims);
  if (p.rawData.length !== n * DTYPE_BYTES[dtype]) {
    throw new TsFinetuneError(
      'SHAPE_MISMATCH',
      `TensorProto '${p.name}': dims [${p.dims.join(', ')}] of ${dtype} need ${n * DTYPE_BYTES[dtype]} bytes, raw data has ${p.rawData.length}`,
      { tensor: p.name },
    );
  }
  const copy = Uint8Array.prototype.slice.call(p.rawData); // a real copy even for a Node Buffer
  return new Tensor(dtype, p.dims, viewArray(dtype, copy.buffer, 0, n));
}
