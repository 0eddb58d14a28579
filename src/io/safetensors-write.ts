// Writing safetensors files, byte-identical to what the Rust/Python library writes for the same tensors:
// tensors sorted by descending dtype alignment then name, header JSON padded with spaces to 8 bytes.
// The file is streamed tensor by tensor into a temp file beside the target, fsynced and renamed into place
// (the same protocol as core's writeFileAtomic, which takes one in-memory buffer: a 14 GB checkpoint must
// not be concatenated in memory first). Everything is validated before the temp file is created, so a bad
// input writes nothing.
// Follows huggingface/safetensors `safetensors/src/tensor.rs` (`prepare`, `serialize_to_file`).

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { DTYPE_BYTES, Tensor, TsFinetuneError, numel, type DType } from '../core/index.js';
import { buildHeader, DTYPE_TO_SAFETENSORS, type HeaderEntry } from './safetensors-format.js';

export type TensorDict = ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;

const WRITE_CHUNK = 1 << 30;

interface Planned {
  header: Uint8Array;
  tensors: Tensor[];
  dataBytes: number;
}

function plan(file: string, tensors: TensorDict, metadata: Record<string, string> | undefined): Planned {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Record<string, Tensor>);
  const byName = new Map<string, Tensor>();
  const heads: HeaderEntry[] = [];
  for (const [name, t] of entries) {
    if (name === '__metadata__') {
      throw new TsFinetuneError('INVALID_ARGUMENT', `Cannot save ${file}: '__metadata__' is reserved and cannot name a tensor`, { file });
    }
    if (!(t instanceof Tensor)) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `Cannot save ${file}: value for '${name}' is not a Tensor`, { file, tensor: name });
    }
    if (!(t.dtype in DTYPE_TO_SAFETENSORS)) {
      throw new TsFinetuneError('UNSUPPORTED_DTYPE', `Cannot save ${file}: tensor '${name}' has dtype '${t.dtype}' with no safetensors equivalent`, {
        file,
        tensor: name,
        dtype: t.dtype,
      });
    }
    const byteLength = numel(t.dims) * DTYPE_BYTES[t.dtype as DType];
    if (t.bytes().byteLength !== byteLength) {
      throw new TsFinetuneError('SHAPE_MISMATCH', `Cannot save ${file}: tensor '${name}' has ${t.bytes().byteLength} data bytes, dims need ${byteLength}`, {
        file,
        tensor: name,
      });
    }
    byName.set(name, t);
    heads.push({ name, dtype: t.dtype, shape: t.dims, byteLength });
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw new TsFinetuneError('INVALID_ARGUMENT', `Cannot save ${file}: metadata '${k}' must be a string (safetensors metadata is str → str)`, {
          file,
          key: k,
        });
      }
    }
  }
  const { order, header } = buildHeader(heads, metadata);
  let dataBytes = 0;
  for (const h of order) dataBytes += h.byteLength;
  return { header, tensors: order.map((h) => byName.get(h.name)!), dataBytes };
}

/** The whole file in memory (for small files, tests and uploads). */
export function serializeSafetensors(tensors: TensorDict, metadata?: Record<string, string>): Uint8Array {
  const p = plan('<memory>', tensors, metadata);
  const out = new Uint8Array(p.header.length + p.dataBytes);
  out.set(p.header, 0);
  let pos = p.header.length;
  for (const t of p.tensors) {
    out.set(t.bytes(), pos);
    pos += t.byteLength;
  }
  return out;
}

async function writeAll(fh: fsp.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const len = Math.min(WRITE_CHUNK, bytes.length - done);
    const { bytesWritten } = await fh.write(bytes, done, len, position + done);
    done += bytesWritten;
  }
}

/**
 * Write tensors to `file` atomically (temp file + fsync + rename). `metadata` becomes `__metadata__`;
 * transformers expects `{ format: 'pt' }` on model weights.
 */
export async function saveSafetensors(file: string, tensors: TensorDict, metadata?: Record<string, string>): Promise<void> {
  const p = plan(file, tensors, metadata);
  const dir = path.dirname(file);
  await fsp.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2, 8)}.tmp`);
  const fh = await fsp.open(tmp, 'w');
  try {
    await writeAll(fh, p.header, 0);
    let pos = p.header.length;
    for (const t of p.tensors) {
      await writeAll(fh, t.bytes(), pos);
      pos += t.byteLength;
    }
    await fh.sync();
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}
