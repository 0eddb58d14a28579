// Parquet → Arrow with hyparquet (+ hyparquet-compressors for zstd, gzip, brotli, lz4; snappy is built in).
// The design card named parquetjs-lite; measured here it cannot read what current writers produce
// (dictionary pages, v2 data pages, zstd), i.e. what the Hub serves, so hyparquet replaced it.
// Column types come from the parquet schema (so an all-null or integral-valued DOUBLE column keeps its
// type); annotations hyparquet turns into JS values we cannot type up front (JSON, MAP) are inferred.
// One record batch per row group, one column at a time, so peak JS memory is one column of one group.
// Flat string/binary columns (the bulk of Hub text datasets) skip hyparquet's per-value arrays and are
// decoded straight into Arrow buffers by parquet-bytes.ts; the other columns go through hyparquet.
// Not here: writing parquet (parquet-write.ts) or streaming iteration (iterable-dataset.ts uses readRowGroup).

import { promises as fsp } from 'node:fs';
import { asyncBufferFromFile, parquetMetadataAsync, parquetScan, parquetSchema, type AsyncBuffer, type FileMetaData, type ParquetParsers, type ParquetScan, type SchemaTree } from 'hyparquet';
import { gunzipSync, brotliDecompressSync } from 'node:zlib';
import { compressors as jsCompressors } from 'hyparquet-compressors';
import {
  Binary, Bool, DataType, Null, DateDay, Field, Float32, Float64, Int8, Int16, Int32, Int64, Schema, Table, TimestampMillisecond, Uint8, Uint16, Uint32, Uint64, Utf8,
} from 'apache-arrow';
import { TsFinetuneError } from '../core/index.js';
import { listOf, structOf } from './arrow-types.js';
import { ByteColumnReader, flatByteColumn } from './parquet-bytes.js';
import { TableBuilder, type ChunkColumn } from './table-builder.js';
import { concatTables } from './table-concat.js';

// Node's native zlib for gzip and brotli (the pure-JS brotli decoder was measured ~10× slower);
// hyparquet-compressors for zstd and lz4, which Node 20 does not have.
const compressors = {
  ...jsCompressors,
  GZIP: (input: Uint8Array): Uint8Array => gunzipSync(input),
  BROTLI: (input: Uint8Array): Uint8Array => brotliDecompressSync(input),
};

/** hyparquet parsers that leave string bytes as they are (the other parsers keep their defaults). */
const RAW_PARSERS: Partial<ParquetParsers> = { stringFromBytes: (bytes: Uint8Array): Uint8Array => bytes };

/** The Arrow type for a parquet schema node, or undefined when it must be inferred from the values. */
export function parquetNodeType(node: SchemaTree): DataType | undefined {
  const el = node.element;
  const ct = el.converted_type;
  const lt = el.logical_type;
  let t: DataType | undefined;
  if (node.children.length === 0) t = leafType(node);
  else if (ct === 'LIST' || lt?.type === 'LIST') {
    const rep = node.children[0];
    if (!rep || node.children.length !== 1) return undefined;
    // Three-level lists (list/element) unless the legacy two-level form: the repeated node is the element.
    const legacy = rep.children.length !== 1 || rep.element.name === 'array' || rep.element.name === `${el.name}_tuple`;
    const elem = legacy ? repeatedElementType(rep) : parquetNodeType(rep.children[0]!);
    t = elem === undefined ? undefined : listOf(elem);
  } else if (ct === 'MAP' || ct === 'MAP_KEY_VALUE' || lt?.type === 'MAP') {
    return undefined;
  } else {
    const fields: [string, DataType][] = [];
    for (const c of node.children) {
      const ft = parquetNodeType(c);
      if (ft === undefined) return undefined;
      fields.push([c.element.name, ft]);
    }
    t = structOf(fields);
  }
  if (t && el.repetition_type === 'REPEATED') return listOf(t);
  return t;
}

function repeatedElementType(rep: SchemaTree): DataType | undefined {
  if (rep.children.length === 0) return leafType(rep);
  const fields: [string, DataType][] = [];
  for (const c of rep.children) {
    const ft = parquetNodeType(c);
    if (ft === undefined) return undefined;
    fields.push([c.element.name, ft]);
  }
  return structOf(fields);
}

function leafType(node: SchemaTree): DataType | undefined {
  const el = node.element;
  const ct = el.converted_type;
  const lt = el.logical_type;
  switch (el.type) {
    case 'BOOLEAN':
      return new Bool();
    case 'INT32': {
      if (ct === 'DATE' || lt?.type === 'DATE') return new DateDay();
      if (ct === 'DECIMAL' || lt?.type === 'DECIMAL') return new Float64();
      const width = lt?.type === 'INTEGER' ? lt.bitWidth : ct === 'INT_8' || ct === 'UINT_8' ? 8 : ct === 'INT_16' || ct === 'UINT_16' ? 16 : 32;
      const unsigned = lt?.type === 'INTEGER' ? !lt.isSigned : ct === 'UINT_8' || ct === 'UINT_16' || ct === 'UINT_32';
      if (unsigned) return width === 8 ? new Uint8() : width === 16 ? new Uint16() : new Uint32();
      return width === 8 ? new Int8() : width === 16 ? new Int16() : new Int32();
    }
    case 'INT64':
      if (ct === 'TIMESTAMP_MILLIS' || ct === 'TIMESTAMP_MICROS' || lt?.type === 'TIMESTAMP') return new TimestampMillisecond();
      if (ct === 'DECIMAL' || lt?.type === 'DECIMAL') return new Float64();
      if (ct === 'UINT_64' || (lt?.type === 'INTEGER' && !lt.isSigned)) return new Uint64();
      if (ct === 'TIME_MICROS' || lt?.type === 'TIME') return undefined;
      return new Int64();
    case 'INT96':
      return new TimestampMillisecond();
    case 'FLOAT':
      return new Float32();
    case 'DOUBLE':
      return new Float64();
    case 'BYTE_ARRAY':
      if (ct === 'UTF8' || ct === 'ENUM' || lt?.type === 'STRING' || lt?.type === 'ENUM') return new Utf8();
      if (ct === 'JSON' || ct === 'BSON' || lt?.type === 'JSON' || lt?.type === 'BSON' || lt?.type === 'VARIANT') return undefined;
      if (ct === 'DECIMAL' || lt?.type === 'DECIMAL') return new Float64();
      return new Binary();
    case 'FIXED_LEN_BYTE_ARRAY':
      if (lt?.type === 'FLOAT16') return new Float32();
      if (ct === 'DECIMAL' || lt?.type === 'DECIMAL') return new Float64();
      if (lt?.type === 'UUID') return undefined;
      return new Binary();
    default:
      return undefined;
  }
}

/** An open parquet file: metadata, the per-column types, and row-group ranges to read on demand. */
export interface ParquetSource {
  path: string;
  metadata: FileMetaData;
  columns: string[];
  /** Known Arrow type per top-level column (undefined: inferred from the values). */
  types: (DataType | undefined)[];
  ranges: readonly { rowStart: number; rowEnd: number }[];
  /** Strings as JS strings (for columns typed from their values). */
  scan: ParquetScan;
  /** Strings as raw UTF-8 bytes (views of the page), copied straight into Arrow buffers (no decode/encode round trip). */
  rawScan: ParquetScan;
  /** Per column: its max definition level when ByteColumnReader can decode it, else undefined. */
  byteColumns: (0 | 1 | undefined)[];
  numRows: number;
}

function corrupt(path: string, e: unknown): TsFinetuneError {
  const msg = e instanceof Error ? e.message : String(e);
  return new TsFinetuneError('CORRUPT_FILE', `Cannot read parquet file ${path}: ${msg}`, { file: path }, { cause: e });
}

export async function openParquet(path: string, file?: AsyncBuffer): Promise<ParquetSource> {
  let buf = file;
  if (!buf) {
    try {
      await fsp.access(path);
    } catch {
      throw new TsFinetuneError('FILE_NOT_FOUND', `Parquet file not found: ${path}`, { file: path });
    }
    buf = await asyncBufferFromFile(path);
  }
  if (buf.byteLength < 12) throw corrupt(path, new Error(`file is ${buf.byteLength} bytes, too short to be parquet (no PAR1 footer)`));
  try {
    const metadata = await parquetMetadataAsync(buf);
    const tree = parquetSchema(metadata);
    const scan = await parquetScan({ file: buf, metadata, compressors });
    // hyparquet decodes UTF8/STRING columns to JS strings even with `utf8: false` (only unannotated
    // BYTE_ARRAY stays bytes), so its string parser is replaced by the identity: values stay views of the
    // decompressed page and are copied once into an exactly-sized Arrow buffer (arrow-bytes.ts). Decoding
    // 500 MB of text to JS strings and encoding it back was most of the load's time and heap.
    const rawScan = await parquetScan({ file: buf, metadata, compressors, utf8: false, parsers: RAW_PARSERS });
    const types = tree.children.map((c) => parquetNodeType(c));
    return {
      path,
      metadata,
      columns: tree.children.map((c) => c.element.name),
      types,
      byteColumns: tree.children.map((c, i) => flatByteColumn(c, types[i])),
      ranges: scan.ranges,
      scan,
      rawScan,
      numRows: Number(metadata.num_rows),
    };
  } catch (e) {
    throw corrupt(path, e);
  }
}

function fixedTypes(src: ParquetSource, names: readonly string[]): Map<string, DataType> {
  const fixed = new Map<string, DataType>();
  for (const n of names) {
    const t = src.types[src.columns.indexOf(n)];
    if (t) fixed.set(n, t);
  }
  return fixed;
}

/** Index of the row group that is exactly rows [rowStart, rowEnd), or −1. */
function wholeGroup(src: ParquetSource, rowStart: number, rowEnd: number): number {
  let s = 0;
  const groups = src.metadata.row_groups;
  for (let g = 0; g < groups.length && s <= rowStart; g++) {
    const e = s + Number(groups[g]!.num_rows);
    if (s === rowStart && e === rowEnd) return g;
    s = e;
  }
  return -1;
}

/** A reader for the flat byte columns of `src`, when it has any (close it when done). */
async function byteReader(src: ParquetSource, names: readonly string[]): Promise<ByteColumnReader | undefined> {
  if (!names.some((n) => src.byteColumns[src.columns.indexOf(n)] !== undefined)) return undefined;
  try {
    return await ByteColumnReader.open(src.path);
  } catch (e) {
    throw corrupt(src.path, e);
  }
}

/** Append rows [rowStart, rowEnd) of one row group to `b` as one chunk, column by column. */
async function addRange(b: TableBuilder, src: ParquetSource, rowStart: number, rowEnd: number, names: readonly string[], fixed: Map<string, DataType>, bytes?: ByteColumnReader): Promise<void> {
  const cols: [string, ChunkColumn][] = [];
  const group = bytes ? wholeGroup(src, rowStart, rowEnd) : -1;
  for (const n of names) {
    const c = src.columns.indexOf(n);
    const maxDef = src.byteColumns[c];
    try {
      if (bytes && group >= 0 && maxDef !== undefined) {
        const meta = src.metadata.row_groups[group]!.columns.find((col) => col.meta_data?.path_in_schema[0] === n)?.meta_data;
        const data = meta && (await bytes.read(meta, rowEnd - rowStart, maxDef, src.types[c]!));
        if (data) {
          cols.push([n, { data }]);
          continue;
        }
      }
      // Known types come with strings as raw UTF-8 bytes, copied, not decoded and re-encoded.
      const values = await (fixed.has(n) ? src.rawScan : src.scan).readColumn({ column: n, rowStart, rowEnd });
      cols.push([n, { values }]);
    } catch (e) {
      throw corrupt(src.path, e);
    }
  }
  b.addChunk(cols, rowEnd - rowStart, (k) => `${src.path} row ${rowStart + k}`);
}

/** Rows [rowStart, rowEnd) of one row group as a single-batch table (columns optional subset). */
export async function readParquetRange(src: ParquetSource, rowStart: number, rowEnd: number, columns?: readonly string[]): Promise<Table> {
  const names = columns ?? src.columns;
  const fixed = fixedTypes(src, names);
  const b = new TableBuilder(fixed);
  const bytes = await byteReader(src, names);
  try {
    await addRange(b, src, rowStart, rowEnd, names, fixed, bytes);
  } finally {
    await bytes?.close();
  }
  return b.finish(names);
}

/** The whole file (or several) as one table, one record batch per row group. */
export async function readParquetTable(paths: string | readonly string[], onRows?: (n: number) => void): Promise<Table> {
  const list = typeof paths === 'string' ? [paths] : paths;
  const tables: Table[] = [];
  const labels: string[] = [];
  for (const p of list) {
    const src = await openParquet(p);
    if (src.ranges.length === 0) {
      tables.push(emptyTable(src));
      labels.push(`file ${p}`);
      continue;
    }
    // One builder per file: its column buffers are reused from one row group to the next.
    const fixed = fixedTypes(src, src.columns);
    const b = new TableBuilder(fixed);
    const bytes = await byteReader(src, src.columns);
    try {
      for (const r of src.ranges) {
        await addRange(b, src, r.rowStart, r.rowEnd, src.columns, fixed, bytes);
        onRows?.(r.rowEnd - r.rowStart);
      }
    } finally {
      await bytes?.close();
    }
    tables.push(b.finish(src.columns));
    labels.push(`file ${p}`);
  }
  return concatTables(tables, { widen: true, label: (k) => labels[k]! });
}

function emptyTable(src: ParquetSource): Table {
  return new Table(new Schema(src.columns.map((n, i) => new Field(n, src.types[i] ?? new Null(), true))));
}
