// Tensors as they cross threads: { dtype, dims, data } with data a typed array that owns its whole
// ArrayBuffer, so postMessage can transfer it (zero copy) instead of cloning. A typed array that views
// part of a bigger buffer is copied first: cloning or transferring it would move the whole buffer.
// Also the dtype rules of the JS boundary: onnxruntime-node has no bfloat16 tensor type, so bf16 must
// stay inside the graph. Not here: ORT's own Tensor class (ort-backend.ts).

import type { DType, TypedArray } from '../core/dtype.js';
import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';

export interface WireTensor {
  dtype: DType;
  dims: number[];
  data: TypedArray;
}

/** Static metadata of a graph input or output, as ORT reports it. */
export interface ValueMetadata {
  name: string;
  /** Our dtype, or undefined for types we cannot exchange (bf16 never gets here: ORT refuses the session). */
  dtype: DType | undefined;
  /** ORT's type name (e.g. 'float32', 'string'). */
  ortType: string;
  /** Static dims as numbers; symbolic ones as their names. */
  dims: (number | string)[];
}

export function bf16Error(name: string, where: 'input' | 'output'): TsFinetuneError {
  return new TsFinetuneError(
    'UNSUPPORTED_DTYPE',
    `Graph ${where} '${name}' is bfloat16, which onnxruntime-node cannot pass across the JS boundary ` +
      '(and the CPU EP has no bf16 kernels). Feed float32 (or float16) and Cast inside the graph.',
    { name, where },
  );
}

function ownsBuffer(a: TypedArray): boolean {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && !(a.buffer instanceof SharedArrayBuffer);
}

const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as { slice(this: TypedArray): TypedArray };

/**
 * A copy of `a` with its own exactly-sized buffer. %TypedArray%.prototype.slice, because a Node Buffer's
 * own slice() returns a view (and small Buffers share one pooled 8 KiB buffer).
 */
export function compact<T extends TypedArray>(a: T): T {
  return typedArrayProto.slice.call(a) as T;
}

/**
 * Wire form of a tensor plus the buffers to transfer. With `give` the caller's buffer is handed over
 * when the array owns it whole (the caller's tensor is detached afterwards); otherwise we copy once
 * into a fresh buffer and transfer that. SharedArrayBuffer-backed arrays are shared, never copied.
 */
export function toWire(name: string, t: Tensor, give: boolean, transfer: Set<ArrayBuffer>): WireTensor {
  if (t.dtype === 'bfloat16') throw bf16Error(name, 'input');
  let data = t.data as TypedArray;
  if (data.buffer instanceof SharedArrayBuffer) return { dtype: t.dtype, dims: [...t.dims], data };
  if (!(give && ownsBuffer(data)) || transfer.has(data.buffer as ArrayBuffer)) {
    // Two feeds viewing one buffer cannot both be transferred whole: the second gets a copy.
    data = compact(data);
  }
  transfer.add(data.buffer as ArrayBuffer);
  return { dtype: t.dtype, dims: [...t.dims], data };
}

/**
 * Wire form of a feed lent for one run (RunLending): its own buffer is transferred and comes back after
 * the run, so it must own that buffer whole and share it with no other feed.
 */
export function lendWire(name: string, t: Tensor, transfer: Set<ArrayBuffer>): WireTensor {
  if (t.dtype === 'bfloat16') throw bf16Error(name, 'input');
  const data = t.data as TypedArray;
  if (data.buffer instanceof SharedArrayBuffer) return { dtype: t.dtype, dims: [...t.dims], data };
  if (!ownsBuffer(data) || transfer.has(data.buffer as ArrayBuffer)) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `run: lent feed '${name}' must own its whole buffer and share it with no other feed`, { name });
  }
  transfer.add(data.buffer as ArrayBuffer);
  return { dtype: t.dtype, dims: [...t.dims], data };
}

/**
 * Wire form of a lent feed that views part of a buffer other lent feeds view too (Lending.views): the
 * buffer moves once and every view keeps its offset. No feed outside the views may use that buffer.
 */
export function lendViewWire(name: string, t: Tensor, transfer: Set<ArrayBuffer>, viewBuffers: Set<ArrayBuffer>): WireTensor {
  if (t.dtype === 'bfloat16') throw bf16Error(name, 'input');
  const data = t.data as TypedArray;
  if (data.buffer instanceof SharedArrayBuffer) return { dtype: t.dtype, dims: [...t.dims], data };
  const b = data.buffer as ArrayBuffer;
  if (transfer.has(b) && !viewBuffers.has(b)) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `run: lent view '${name}' shares its buffer with a feed that is not one of the lent views`, { name });
  }
  transfer.add(b);
  viewBuffers.add(b);
  return { dtype: t.dtype, dims: [...t.dims], data };
}

/** Outputs are fresh buffers made by ORT: transfer them back as they are (copy only shared ones). */
export function outputToWire(w: WireTensor, transfer: Set<ArrayBuffer>): WireTensor {
  let data = w.data;
  if (!ownsBuffer(data) || transfer.has(data.buffer as ArrayBuffer)) data = compact(data);
  transfer.add(data.buffer as ArrayBuffer);
  return { dtype: w.dtype, dims: w.dims, data };
}

export function fromWire(w: WireTensor): Tensor {
  return new Tensor(w.dtype, w.dims, w.data);
}

/** Serialized error (structured clone drops custom fields such as `code`). */
export interface WireError {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

export function errorToWire(e: unknown): WireError {
  if (e instanceof TsFinetuneError) {
    let details: Record<string, unknown> = {};
    try {
      details = structuredClone({ ...e.details });
    } catch {
      details = {};
    }
    return { code: e.code, message: e.message, details };
  }
  return { code: 'RUNTIME_ERROR', message: e instanceof Error ? e.message : String(e), details: {} };
}

export function errorFromWire(w: WireError): TsFinetuneError {
  return new TsFinetuneError(w.code as TsFinetuneError['code'], w.message, w.details);
}
