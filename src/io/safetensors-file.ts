// Reading safetensors files: `SafetensorsFile.open` reads only the 8-byte length and the JSON header;
// `read(name)` then reads exactly that tensor's bytes with positional reads on an open file handle, so
// getting one tensor from a multi-GB checkpoint costs that tensor's size in memory, never the file's.
// Not here: writing (safetensors-write.ts), sharded folders (checkpoint.ts). No mmap: Node has none, and
// positional reads into a fresh ArrayBuffer give an aligned, owned typed array with one copy.
// Follows safetensors' `safe_open` (keys() sorted by name, metadata(), get_tensor()).

import { promises as fsp } from 'node:fs';
import { Tensor, TsFinetuneError, viewArray, numel, type DType } from '../core/index.js';
import { parseHeader, parseHeaderLength, type SafetensorsTensorInfo } from './safetensors-format.js';

// One read() call moves at most 2 GiB - 1 bytes; stay well under it so multi-GB tensors read in pieces.
const READ_CHUNK = 1 << 30;

type FileHandle = fsp.FileHandle;

async function readFully(fh: FileHandle, file: string, into: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const len = Math.min(READ_CHUNK, into.length - done);
    const { bytesRead } = await fh.read(into, done, len, position + done);
    if (bytesRead === 0) {
      throw new TsFinetuneError(
        'CORRUPT_FILE',
        `Corrupt safetensors file ${file}: it ended at byte ${position + done} while reading ${into.length} bytes from ${position} (was it truncated after opening?)`,
        { file, position: position + done },
      );
    }
    done += bytesRead;
  }
}

export class SafetensorsFile {
  readonly path: string;
  /** `__metadata__` of the header (str → str), e.g. `{ format: 'pt' }`. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly fileSize: number;
  private readonly byName: Map<string, SafetensorsTensorInfo>;
  private readonly ordered: SafetensorsTensorInfo[];
  private fh: FileHandle | undefined;

  private constructor(path: string, fh: FileHandle, fileSize: number, metadata: Record<string, string>, tensors: SafetensorsTensorInfo[]) {
    this.path = path;
    this.fh = fh;
    this.fileSize = fileSize;
    this.metadata = Object.freeze({ ...metadata });
    this.ordered = tensors;
    this.byName = new Map(tensors.map((t) => [t.name, t]));
  }

  /** Open and validate the header; the data section is not read. Close with `close()`. */
  static async open(path: string): Promise<SafetensorsFile> {
    let fh: FileHandle;
    try {
      fh = await fsp.open(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new TsFinetuneError('FILE_NOT_FOUND', `safetensors file not found: ${path}`, { file: path }, { cause: e });
      throw new TsFinetuneError('CORRUPT_FILE', `Cannot open safetensors file ${path}: ${(e as Error).message}`, { file: path }, { cause: e });
    }
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw new TsFinetuneError('INVALID_ARGUMENT', `${path} is a folder, not a safetensors file`, { file: path });
      const size = st.size;
      const first8 = new Uint8Array(8);
      if (size >= 8) await readFully(fh, path, first8, 0);
      const n = parseHeaderLength(path, first8, size);
      const headerBytes = new Uint8Array(n);
      await readFully(fh, path, headerBytes, 8);
      const header = parseHeader(path, headerBytes, size);
      return new SafetensorsFile(path, fh, size, header.metadata, header.tensors);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Tensor names, sorted (as Python's `safe_open(...).keys()`). */
  keys(): string[] {
    return [...this.byName.keys()].sort();
  }

  /** Tensor descriptions in the order their bytes appear in the file (best order for sequential reads). */
  tensorsInFileOrder(): readonly SafetensorsTensorInfo[] {
    return this.ordered;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** dtype, shape and byte range of one tensor, from the header alone. */
  info(name: string): SafetensorsTensorInfo {
    const t = this.byName.get(name);
    if (!t) {
      throw new TsFinetuneError('MISSING_TENSOR', `Tensor '${name}' is not in ${this.path} (it has ${this.byName.size} tensors)`, {
        file: this.path,
        tensor: name,
      });
    }
    return t;
  }

  /** The tensor's raw little-endian bytes, in a fresh buffer of exactly its size. */
  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    const fh = this.handle();
    const bytes = new Uint8Array(t.byteLength);
    await readFully(fh, this.path, bytes, t.byteOffset);
    return bytes;
  }

  /** Read one tensor: only its own bytes are read from disk. */
  async read(name: string): Promise<Tensor> {
    const t = this.info(name);
    const bytes = await this.readBytes(name);
    const n = numel(t.shape);
    return new Tensor(t.dtype, t.shape, viewArray(t.dtype as DType, bytes.buffer, 0, n));
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    if (fh) await fh.close();
  }

  private handle(): FileHandle {
    if (!this.fh) throw new TsFinetuneError('INVALID_ARGUMENT', `safetensors file ${this.path} was already closed`, { file: this.path });
    return this.fh;
  }
}

/** Read every tensor of a file, keyed by name (sorted). For large files prefer `SafetensorsFile` / `CheckpointReader`. */
export async function readSafetensors(path: string): Promise<Map<string, Tensor>> {
  const f = await SafetensorsFile.open(path);
  try {
    const out = new Map<string, Tensor>();
    for (const name of f.keys()) out.set(name, await f.read(name));
    return out;
  } finally {
    await f.close();
  }
}

/** The `__metadata__` and tensor descriptions of a file, without reading any tensor data. */
export async function readSafetensorsHeader(path: string): Promise<{ metadata: Record<string, string>; tensors: SafetensorsTensorInfo[] }> {
  const f = await SafetensorsFile.open(path);
  try {
    return { metadata: { ...f.metadata }, tensors: [...f.tensorsInFileOrder()] };
  } finally {
    await f.close();
  }
}
