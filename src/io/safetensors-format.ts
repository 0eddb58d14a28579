// The safetensors on-disk format as pure functions over bytes: the dtype table, header parsing with full
// validation, and header building for the writer. No file access here (see safetensors-file.ts and
// safetensors-write.ts).
// Follows huggingface/safetensors `safetensors/src/tensor.rs`: 8-byte little-endian header length N, N bytes
// of UTF-8 JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`, then the
// data section, whose tensors must tile it exactly (no overlaps, no gaps, nothing after the last one).

import { DTYPE_BYTES, TsFinetuneError, type DType } from '../core/index.js';

/** safetensors dtype string → our DType, for the dtypes we can hold in a typed array. */
export const SAFETENSORS_DTYPES: Readonly<Record<string, DType>> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};

export const DTYPE_TO_SAFETENSORS: Readonly<Record<DType, string>> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};

// Rank in the Rust `Dtype` enum, which is declared in increasing alignment. The writer sorts tensors by
// descending rank, then by name, as `prepare()` in tensor.rs does, so every tensor starts aligned to its
// element size and our files are byte-identical to the Python/Rust library's.
const DTYPE_RANK: Readonly<Record<DType, number>> = {
  bool: 0,
  uint8: 1,
  int8: 2,
  int16: 5,
  float16: 7,
  bfloat16: 8,
  int32: 9,
  float32: 11,
  float64: 12,
  int64: 13,
};

/** Known to the format but with no DType here: named in the error so users know it is not file damage. */
const KNOWN_UNSUPPORTED = new Set(['U16', 'U32', 'U64', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'E8M0', 'C64']);

/** Same limit as the Rust library: a larger header is treated as damage, not read. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsTensorInfo {
  name: string;
  dtype: DType;
  /** The dtype string as stored in the file (`BF16`, `F32`, …). */
  fileDtype: string;
  shape: number[];
  /** [begin, end) relative to the start of the data section, as in the header. */
  dataOffsets: [number, number];
  /** Absolute position of the first byte in the file (8 + header length + begin). */
  byteOffset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  /** 8 + header length: where the data section starts in the file. */
  dataStart: number;
  metadata: Record<string, string>;
  /** Tensors in file (offset) order. */
  tensors: SafetensorsTensorInfo[];
}

function corrupt(file: string, what: string, details: Record<string, unknown> = {}): TsFinetuneError {
  return new TsFinetuneError('CORRUPT_FILE', `Corrupt safetensors file ${file}: ${what}`, { file, ...details });
}

/** Header length from the first 8 bytes, checked against the file size. */
export function parseHeaderLength(file: string, first8: Uint8Array, fileSize: number): number {
  if (fileSize < 8 || first8.length < 8) {
    throw corrupt(file, `truncated: the file has ${fileSize} bytes, but a safetensors file starts with an 8-byte header length`, {
      fileSize,
    });
  }
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw corrupt(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file, or damaged)`, {
      headerLength: n.toString(),
      fileSize,
    });
  }
  const len = Number(n);
  if (8 + len > fileSize) {
    throw corrupt(file, `header length ${len} overruns the file: it needs ${8 + len} bytes but the file has ${fileSize} (truncated?)`, {
      headerLength: len,
      fileSize,
    });
  }
  return len;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseEntry(file: string, name: string, raw: unknown, dataStart: number, dataLength: number): SafetensorsTensorInfo {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw corrupt(file, `tensor '${name}': header entry is not an object`, { tensor: name });
  }
  const e = raw as Record<string, unknown>;
  const fileDtype = e['dtype'];
  if (typeof fileDtype !== 'string') throw corrupt(file, `tensor '${name}': missing or non-string 'dtype'`, { tensor: name });
  const dtype = SAFETENSORS_DTYPES[fileDtype];
  if (dtype === undefined) {
    const kind = KNOWN_UNSUPPORTED.has(fileDtype) ? 'is not supported' : 'is unknown';
    throw new TsFinetuneError(
      'UNSUPPORTED_DTYPE',
      `safetensors file ${file}: tensor '${name}' has dtype '${fileDtype}', which ${kind} ` +
        `(supported: ${Object.keys(SAFETENSORS_DTYPES).join(', ')})`,
      { file, tensor: name, dtype: fileDtype },
    );
  }
  const shape = e['shape'];
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw corrupt(file, `tensor '${name}': 'shape' must be an array of non-negative integers, got ${JSON.stringify(shape)}`, {
      tensor: name,
    });
  }
  const offs = e['data_offsets'];
  if (!Array.isArray(offs) || offs.length !== 2 || !isCount(offs[0]) || !isCount(offs[1]) || offs[1] < offs[0]) {
    throw corrupt(file, `tensor '${name}': 'data_offsets' must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offs)}`, {
      tensor: name,
    });
  }
  const [begin, end] = offs as [number, number];
  let numel = 1;
  for (const d of shape as number[]) numel *= d;
  const need = numel * DTYPE_BYTES[dtype];
  if (!Number.isSafeInteger(need) || need !== end - begin) {
    throw corrupt(
      file,
      `tensor '${name}': shape [${shape.join(', ')}] × ${fileDtype} needs ${need} bytes, but data_offsets [${begin}, ${end}] hold ${end - begin}`,
      { tensor: name, expectedBytes: need, foundBytes: end - begin },
    );
  }
  if (end > dataLength) {
    throw corrupt(
      file,
      `tensor '${name}': data_offsets [${begin}, ${end}] overrun the data section, which has ${dataLength} bytes (truncated?)`,
      { tensor: name, dataOffsets: [begin, end], dataLength },
    );
  }
  return {
    name,
    dtype,
    fileDtype,
    shape: shape as number[],
    dataOffsets: [begin, end],
    byteOffset: dataStart + begin,
    byteLength: end - begin,
  };
}

/**
 * Parse and validate the JSON header. `headerBytes` are the N bytes after the length prefix; `fileSize`
 * is the whole file's size, used to check that the tensors tile the data section exactly.
 */
export function parseHeader(file: string, headerBytes: Uint8Array, fileSize: number): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw corrupt(file, 'the header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw corrupt(file, `the header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw corrupt(file, 'the header is not a JSON object');
  const dataStart = 8 + headerBytes.length;
  const dataLength = fileSize - dataStart;

  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw corrupt(file, "'__metadata__' is not an object");
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') throw corrupt(file, `'__metadata__.${k}' is not a string (safetensors metadata is str → str)`);
        metadata[k] = v;
      }
      continue;
    }
    tensors.push(parseEntry(file, name, raw, dataStart, dataLength));
  }

  // The data section must be tiled exactly, in offset order (the Rust reader's `validate`).
  tensors.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let pos = 0;
  let prev: SafetensorsTensorInfo | undefined;
  for (const t of tensors) {
    const [begin, end] = t.dataOffsets;
    if (begin < pos && prev) {
      throw corrupt(
        file,
        `tensor '${t.name}' (bytes [${begin}, ${end}]) overlaps tensor '${prev.name}' (bytes [${prev.dataOffsets[0]}, ${prev.dataOffsets[1]}])`,
        { tensor: t.name, other: prev.name },
      );
    }
    if (begin > pos) {
      throw corrupt(file, `bytes [${pos}, ${begin}] of the data section belong to no tensor (before '${t.name}')`, {
        tensor: t.name,
        gap: [pos, begin],
      });
    }
    pos = end;
    prev = t;
  }
  if (pos !== dataLength) {
    throw corrupt(file, `${dataLength - pos} bytes after the last tensor's data: the header describes ${pos} data bytes, the file holds ${dataLength}`, {
      describedBytes: pos,
      dataLength,
    });
  }
  return { dataStart, metadata, tensors };
}

/** Byte order of UTF-8, which is how Rust compares the names (UTF-16 order differs above U+FFFF). */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export interface HeaderEntry {
  name: string;
  dtype: DType;
  shape: readonly number[];
  byteLength: number;
}

/**
 * The writer's plan: entries in file order (descending alignment, then name) and the padded header bytes.
 * The JSON is built by hand so integer-like names keep their place (a JS object would hoist them).
 */
export function buildHeader(entries: HeaderEntry[], metadata: Record<string, string> | undefined): { order: HeaderEntry[]; header: Uint8Array } {
  const order = [...entries].sort((a, b) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || compareUtf8(a.name, b.name));
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    const keys = Object.keys(metadata).sort(compareUtf8);
    parts.push(`"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  let offset = 0;
  for (const e of order) {
    const dt = DTYPE_TO_SAFETENSORS[e.dtype];
    parts.push(`${JSON.stringify(e.name)}:{"dtype":"${dt}","shape":[${e.shape.join(',')}],"data_offsets":[${offset},${offset + e.byteLength}]}`);
    offset += e.byteLength;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  // Pad with spaces to a multiple of 8 so the data section (and so every tensor) is 8-byte aligned.
  const padded = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + padded);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  header.fill(0x20, 8 + json.length);
  return { order, header };
}
