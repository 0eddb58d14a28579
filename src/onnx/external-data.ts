// External data: large initializers leave the protobuf (whose messages cannot exceed 2 GiB, and whose
// encoding would copy every weight once more) and travel beside it as named byte buffers. ORT takes
// them from memory through the session option `externalData: [{ path, data }]` (src/runtime), or from
// files written next to model.onnx. Each moved TensorProto keeps dims / type and gets
// external_data = { location, offset, length } with data_location = EXTERNAL, as onnx.external_data_helper.
// Not here: reading or writing files (callers use src/core fs-atomic), sessions (src/runtime).

import { TsFinetuneError } from '../core/errors.js';
import type { GraphProto, ModelProto, StringStringEntry, TensorProto } from './proto.js';

export interface ExternalDataFile {
  /** The `location` the tensors name: a relative file name (no directories, no '..'). */
  path: string;
  data: Uint8Array;
}

export interface ExternalizeOptions {
  /** Initializers with at least this many raw bytes move out (default 1024, as onnx's size_threshold). */
  minBytes?: number;
  /**
   * 'per-tensor' (default): one buffer per tensor that views the tensor's own bytes, so nothing is
   * copied. 'single': one concatenated buffer named `fileName`, the layout to write `model.onnx.data`.
   */
  layout?: 'per-tensor' | 'single';
  /** File name for layout 'single' (default 'model.onnx.data'). */
  fileName?: string;
  /** Byte alignment of each tensor inside the single file (default 64). */
  align?: number;
}

/** A file-system-safe, unique file name per tensor. */
function fileNameFor(name: string, used: Set<string>): string {
  const base = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_').slice(0, 180) || 'tensor';
  let p = `${base}.bin`;
  for (let i = 1; used.has(p); i++) p = `${base}.${i}.bin`;
  used.add(p);
  return p;
}

function entries(location: string, offset: number, length: number): StringStringEntry[] {
  return [
    { key: 'location', value: location },
    { key: 'offset', value: String(offset) },
    { key: 'length', value: String(length) },
  ];
}

/**
 * Move the raw data of large initializers out of the model. Returns a shallow copy of the model whose
 * moved initializers carry external_data entries, and the buffers to hand to `createSession` as
 * `externalData` (or to write beside the .onnx file). The input model is not modified.
 */
export function externalizeInitializers(
  model: ModelProto,
  opts: ExternalizeOptions = {},
): { model: ModelProto; files: ExternalDataFile[] } {
  const minBytes = opts.minBytes ?? 1024;
  const layout = opts.layout ?? 'per-tensor';
  const align = opts.align ?? 64;
  if (!Number.isInteger(align) || align < 1) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `externalizeInitializers: align must be a positive integer, got ${align}`);
  }
  const used = new Set<string>();
  const files: ExternalDataFile[] = [];
  const single: { t: TensorProto; offset: number }[] = [];
  const fileName = opts.fileName ?? 'model.onnx.data';
  let total = 0;

  const initializer = model.graph.initializer.map((t): TensorProto => {
    const raw = t.rawData;
    if (raw === undefined || raw.length < minBytes) return t;
    if (layout === 'per-tensor') {
      const path = fileNameFor(t.name, used);
      files.push({ path, data: raw });
      return { name: t.name, dims: t.dims, dataType: t.dataType, externalData: entries(path, 0, raw.length) };
    }
    const offset = Math.ceil(total / align) * align;
    total = offset + raw.length;
    single.push({ t, offset });
    return { name: t.name, dims: t.dims, dataType: t.dataType, externalData: entries(fileName, offset, raw.length) };
  });

  if (layout === 'single' && single.length > 0) {
    const data = new Uint8Array(total);
    for (const { t, offset } of single) data.set(t.rawData!, offset);
    files.push({ path: fileName, data });
  }
  const graph: GraphProto = { ...model.graph, initializer };
  return { model: { ...model, graph }, files };
}

/** The inverse: put external bytes back as rawData (tests, and inspecting a model saved with external data). */
export function internalizeInitializers(model: ModelProto, files: readonly ExternalDataFile[]): ModelProto {
  const byPath = new Map(files.map((f) => [f.path, f.data]));
  const initializer = model.graph.initializer.map((t): TensorProto => {
    if (t.externalData === undefined) return t;
    const get = (k: string): string | undefined => t.externalData!.find((e) => e.key === k)?.value;
    const location = get('location');
    const data = location === undefined ? undefined : byPath.get(location);
    if (data === undefined) {
      throw new TsFinetuneError('MISSING_TENSOR', `Initializer '${t.name}' names external data '${location ?? '(none)'}', which was not given`, {
        tensor: t.name,
        location,
      });
    }
    const offset = Number(get('offset') ?? 0);
    const length = get('length') === undefined ? data.length - offset : Number(get('length'));
    if (offset + length > data.length) {
      throw new TsFinetuneError('CORRUPT_FILE', `Initializer '${t.name}': bytes ${offset}..${offset + length} overrun '${location}' (${data.length} bytes)`, {
        tensor: t.name,
        location,
      });
    }
    return { name: t.name, dims: t.dims, dataType: t.dataType, rawData: Uint8Array.prototype.slice.call(data, offset, offset + length) };
  });
  return { ...model, graph: { ...model.graph, initializer } };
}
