// The direct parquet → Arrow path for flat string/binary columns (src/data/parquet-bytes.ts), on files that
// arrow-rs (parquet-wasm) writes in every layout the path claims: v1 and v2 data pages, dictionary pages with
// a fallback to PLAIN inside the same column chunk, several pages per chunk, nulls, required columns, binary,
// multi-byte UTF-8, and each codec. Layouts it does not cover (DELTA_* encodings, LZ4) must fall back to
// hyparquet with the same result. A spy on ByteColumnReader.read tells which path each chunk took.

import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Binary, Field, Int64, makeVector, Schema, Table, tableToIPC, Type, Utf8, vectorFromArray } from 'apache-arrow';
import * as PW from 'parquet-wasm';
import { parquetMetadata } from 'hyparquet';
import { Dataset, loadDataset } from '../../src/data/index.js';
import { ByteColumnReader } from '../../src/data/parquet-bytes.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROWS = 1500;
const words = ['print', 'λ', 'café', '数据', 'return', '😀', '', 'yield x', 'def f():\n    pass'];

interface Row { s: string | null; req: string; bin: Uint8Array | null; n: number }

function makeRows(): Row[] {
  const rows: Row[] = [];
  for (let i = 0; i < ROWS; i++) {
    const long = Array.from({ length: 1 + (i % 40) }, (_, k) => words[(i * 7 + k) % words.length]).join(' ');
    rows.push({
      s: i % 13 === 4 ? null : i % 3 === 0 ? words[i % words.length]! : `${i}: ${long}`,
      req: i % 5 === 0 ? '' : `row ${i % 50} ✓`,
      bin: i % 11 === 2 ? null : Uint8Array.from({ length: i % 9 }, (_, k) => (i * 31 + k * 17) & 255),
      n: i,
    });
  }
  return rows;
}

const rows = makeRows();

function ipc(): Uint8Array {
  const schema = new Schema([
    new Field('s', new Utf8(), true),
    new Field('req', new Utf8(), false),
    new Field('bin', new Binary(), true),
    new Field('n', new Int64(), false),
  ]);
  const table = new Table(schema, {
    s: vectorFromArray(rows.map((r) => r.s), new Utf8()),
    req: vectorFromArray(rows.map((r) => r.req), new Utf8()),
    bin: vectorFromArray(rows.map((r) => r.bin), new Binary()),
    n: makeVector(BigInt64Array.from(rows, (r) => BigInt(r.n))),
  });
  return tableToIPC(table, 'stream');
}

interface Layout {
  codec: PW.Compression;
  v2?: boolean;
  dictionary?: boolean;
  encoding?: PW.Encoding;
}

const dir = tempDir('tsft-pqbytes-');

function write(name: string, l: Layout): string {
  let b = new PW.WriterPropertiesBuilder()
    .setCompression(l.codec)
    .setMaxRowGroupSize(600)
    .setDataPageSizeLimit(2048)
    // A small dictionary limit makes arrow-rs fall back to PLAIN pages part-way through a column chunk.
    .setDictionaryPageSizeLimit(1024)
    .setDictionaryEnabled(l.dictionary ?? true)
    .setWriterVersion(l.v2 ? PW.WriterVersion.V2 : PW.WriterVersion.V1);
  // The byte columns' non-dictionary encoding (arrow-rs defaults to DELTA_BYTE_ARRAY in v2 files).
  for (const col of ['s', 'req', 'bin']) b = b.setColumnEncoding(col, l.encoding ?? PW.Encoding.PLAIN);
  const file = path.join(dir, `${name}.parquet`);
  writeFileSync(file, PW.writeParquet(PW.Table.fromIPCStream(ipc()), b.build()));
  return file;
}

function spyReads(): () => Promise<(object | undefined)[]> {
  const spy = vi.spyOn(ByteColumnReader.prototype, 'read');
  return async () => Promise.all(spy.mock.results.map((r) => r.value as Promise<object | undefined>));
}

afterEach(() => {
  vi.restoreAllMocks();
});

const C = PW.Compression;
const covered: [string, Layout][] = [
  ['v1-plain-uncompressed', { codec: C.UNCOMPRESSED, dictionary: false }],
  ['v1-dict-snappy', { codec: C.SNAPPY }],
  ['v2-dict-zstd', { codec: C.ZSTD, v2: true }],
  ['v2-plain-snappy', { codec: C.SNAPPY, v2: true, dictionary: false }],
  ['v2-plain-gzip', { codec: C.GZIP, v2: true, dictionary: false }],
  ['v1-dict-brotli', { codec: C.BROTLI }],
  ['v2-dict-uncompressed', { codec: C.UNCOMPRESSED, v2: true }],
];

describe('flat byte columns straight into Arrow', () => {
  it('the files really have several row groups, several pages per chunk, and dictionary + PLAIN in one chunk', () => {
    const file = write('check', { codec: C.SNAPPY });
    const buf = readFileSync(file);
    const md = parquetMetadata(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    expect(md.row_groups.length).toBe(3);
    const s = md.row_groups[0]!.columns[0]!.meta_data!;
    expect(s.encodings).toEqual(expect.arrayContaining(['PLAIN', 'RLE_DICTIONARY']));
    expect(Number(s.total_uncompressed_size)).toBeGreaterThan(3 * 2048);
    expect(md.schema.find((e) => e.name === 'req')!.repetition_type).toBe('REQUIRED');
  });

  it.each(covered)('%s: every string and binary chunk takes the direct path and reads back equal', async (name, layout) => {
    const file = write(name, layout);
    const reads = spyReads();
    const ds = await Dataset.fromParquet(file);
    const results = await reads();
    expect(results).toHaveLength(3 * 3); // s, req, bin × 3 row groups
    expect(results.every((r) => r !== undefined)).toBe(true);
    expect(ds.toList()).toEqual(rows);
    expect(ds.schema.fields.map((f) => f.type.typeId)).toEqual([Type.Utf8, Type.Utf8, Type.Binary, Type.Int]);
    // Exactly-sized data buffers: no growth slack kept in the table.
    for (const batch of ds._view.table.batches) {
      const d = batch.data.children[0]!;
      const offs = d.valueOffsets as Int32Array;
      expect(d.values.buffer.byteLength).toBe(offs[d.length]);
    }
  });

  it.each([
    ['delta-length', { codec: C.SNAPPY, dictionary: false, encoding: PW.Encoding.DELTA_LENGTH_BYTE_ARRAY }],
    ['delta-byte-array', { codec: C.UNCOMPRESSED, dictionary: false, encoding: PW.Encoding.DELTA_BYTE_ARRAY }],
    ['lz4-raw', { codec: C.LZ4_RAW }],
    ['v2-default-encodings', { codec: C.ZSTD, v2: true, encoding: PW.Encoding.DELTA_BYTE_ARRAY }],
  ] as [string, Layout][])('%s is not covered: hyparquet reads it, with the same rows', async (name, layout) => {
    const file = write(name, layout);
    const reads = spyReads();
    const ds = await Dataset.fromParquet(file);
    const results = await reads();
    expect(results.some((r) => r === undefined)).toBe(true);
    expect(ds.toList()).toEqual(rows);
  });

  it('streaming reads the same rows through the same path, one row group at a time', async () => {
    const file = write('stream', { codec: C.ZSTD, v2: true });
    const it = await loadDataset('parquet', { dataFiles: file, split: 'train', streaming: true });
    expect(await it.take(700).toList()).toEqual(rows.slice(0, 700));
  });

  it('a damaged page is a CORRUPT_FILE error naming the file', async () => {
    const file = write('damaged', { codec: C.UNCOMPRESSED, dictionary: false });
    const buf = readFileSync(file);
    const md = parquetMetadata(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const at = Number(md.row_groups[1]!.columns[0]!.meta_data!.data_page_offset);
    buf.fill(0xff, at + 12, at + 64);
    const bad = path.join(dir, 'damaged-bytes.parquet');
    writeFileSync(bad, buf);
    await expect(Dataset.fromParquet(bad)).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringContaining(bad) });
  });
});
