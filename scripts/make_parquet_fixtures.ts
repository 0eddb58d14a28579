// Writes the parquet fixtures of test/data/parquet-writers.test.ts with two independent writers:
//   hyparquet-writer (JS)            → hyparquet-snappy.parquet, hyparquet-zstd.parquet
//   parquet-wasm (Rust arrow-rs)     → arrow-rs-snappy.parquet (v1 pages), arrow-rs-zstd.parquet (v2 pages)
// from the same rows (parquet-source.jsonl): 160 rows in row groups of 40, dictionary-encoded low-cardinality
// strings, nulls in every column, a nested `messages` list<struct<role, content>> (null lists, empty lists,
// null content), a list<string> and int64/float64/bool columns. The script checks that every file really has
// several row groups, dictionary pages and the intended codec before writing it.
// Node 20 has no zstd compressor, so hyparquet-writer's zstd pages are valid zstd frames made of raw
// (stored) blocks; arrow-rs writes real zstd-compressed pages. Run: npx tsx scripts/make_parquet_fixtures.ts

import { writeFileSync, mkdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { parquetMetadata } from 'hyparquet';
import * as A from 'apache-arrow';
import * as PW from 'parquet-wasm';
import { Rng } from '../src/core/rng.js';

const OUT = path.join(import.meta.dirname, '..', 'test', 'fixtures', 'data');
const ROWS = 160;
const GROUP = 40;

interface Msg { role: string; content: string | null }
interface SrcRow {
  id: number;
  instruction: string | null;
  output: string;
  system: string | null;
  score: number | null;
  flag: boolean | null;
  tags: (string | null)[] | null;
  messages: Msg[] | null;
}

function makeRows(): SrcRow[] {
  const rng = new Rng(1234);
  const words = ['print', 'list', 'sort', 'λ', 'dict', 'café', 'loop', 'def', 'class', '数据', 'return', 'yield'];
  const systems = ['You are a helpful assistant.', 'You write Python.', 'Answer briefly.'];
  const text = (n: number): string => Array.from({ length: n }, () => words[rng.randint(words.length)]).join(' ');
  const rows: SrcRow[] = [];
  for (let i = 0; i < ROWS; i++) {
    const instruction = i % 17 === 5 ? null : `Task ${i}: ${text(3 + rng.randint(8))}`;
    const output = text(rng.randint(12));
    const system = i % 11 === 3 ? null : systems[rng.randint(systems.length)]!;
    const k = rng.randint(5);
    const messages: Msg[] | null =
      i % 13 === 7 ? null : k === 0 ? [] : [
        ...(system ? [{ role: 'system', content: system }] : []),
        { role: 'user', content: instruction },
        ...Array.from({ length: k - 1 }, (_, j) => ({ role: j % 2 ? 'user' : 'assistant', content: j === 1 && i % 5 === 0 ? null : text(2 + rng.randint(6)) })),
      ];
    rows.push({
      id: i * 1000 + rng.randint(1000),
      instruction,
      output,
      system,
      score: i % 7 === 2 ? null : Math.round(rng.normal() * 1e6) / 1e3,
      flag: i % 9 === 4 ? null : rng.random() < 0.5,
      tags: i % 10 === 9 ? null : Array.from({ length: rng.randint(4) }, (_, j) => (j === 2 ? null : words[rng.randint(words.length)]!)),
      messages,
    });
  }
  return rows;
}

/** A zstd frame (RFC 8878) of raw blocks: valid for any decoder, just not compressed. */
function zstdRawFrame(input: Uint8Array): Uint8Array {
  const MAX = 128 * 1024;
  const n = Math.max(1, Math.ceil(input.length / MAX));
  const out = new Uint8Array(13 + 3 * n + input.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0xfd2fb528, true);
  out[4] = (3 << 6) | (1 << 5); // 8-byte content size, single segment
  dv.setBigUint64(5, BigInt(input.length), true);
  let p = 13;
  for (let b = 0; b < n; b++) {
    const chunk = input.subarray(b * MAX, Math.min(input.length, (b + 1) * MAX));
    const header = (b === n - 1 ? 1 : 0) | (0 << 1) | (chunk.length << 3);
    out[p] = header & 0xff;
    out[p + 1] = (header >> 8) & 0xff;
    out[p + 2] = (header >> 16) & 0xff;
    out.set(chunk, p + 3);
    p += 3 + chunk.length;
  }
  return out;
}

const str = { type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' } as const;

function hyparquetFile(rows: SrcRow[], codec: 'SNAPPY' | 'ZSTD'): Uint8Array {
  const schema = [
    { name: 'schema', num_children: 8 },
    { name: 'id', type: 'INT64', repetition_type: 'OPTIONAL' },
    { name: 'instruction', ...str },
    { name: 'output', ...str },
    { name: 'system', ...str },
    { name: 'score', type: 'DOUBLE', repetition_type: 'OPTIONAL' },
    { name: 'flag', type: 'BOOLEAN', repetition_type: 'OPTIONAL' },
    { name: 'tags', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
    { name: 'element', ...str },
    { name: 'messages', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
    { name: 'element', repetition_type: 'OPTIONAL', num_children: 2 },
    { name: 'role', ...str },
    { name: 'content', ...str },
  ] as const;
  const col = <K extends keyof SrcRow>(k: K, f: (v: SrcRow[K]) => unknown = (v) => v) => ({ name: k, data: rows.map((r) => f(r[k])) });
  const buf = parquetWriteBuffer({
    columnData: [
      col('id', (v) => BigInt(v)), col('instruction'), col('output'), col('system'), col('score'), col('flag'), col('tags'), col('messages'),
    ],
    schema: schema as never,
    codec,
    compressors: { ZSTD: zstdRawFrame },
    rowGroupSize: GROUP,
    createdBy: 'hyparquet-writer (ts-finetune fixtures)',
  });
  return new Uint8Array(buf);
}

function arrowTable(rows: SrcRow[]): A.Table {
  const f = (name: string, type: A.DataType) => new A.Field(name, type, true);
  const msg = new A.Struct([f('role', new A.Utf8()), f('content', new A.Utf8())]);
  return new A.Table({
    id: A.vectorFromArray(rows.map((r) => BigInt(r.id)), new A.Int64()),
    instruction: A.vectorFromArray(rows.map((r) => r.instruction), new A.Utf8()),
    output: A.vectorFromArray(rows.map((r) => r.output), new A.Utf8()),
    system: A.vectorFromArray(rows.map((r) => r.system), new A.Utf8()),
    score: A.vectorFromArray(rows.map((r) => r.score), new A.Float64()),
    flag: A.vectorFromArray(rows.map((r) => r.flag), new A.Bool()),
    tags: A.vectorFromArray(rows.map((r) => r.tags), new A.List(f('item', new A.Utf8()))),
    messages: A.vectorFromArray(rows.map((r) => r.messages), new A.List(f('item', msg))),
  });
}

function arrowRsFile(rows: SrcRow[], codec: 'SNAPPY' | 'ZSTD'): Uint8Array {
  const props = new PW.WriterPropertiesBuilder()
    .setCompression(codec === 'ZSTD' ? PW.Compression.ZSTD : PW.Compression.SNAPPY)
    .setMaxRowGroupSize(GROUP)
    .setDictionaryEnabled(true)
    .setWriterVersion(codec === 'ZSTD' ? PW.WriterVersion.V2 : PW.WriterVersion.V1)
    .build();
  return PW.writeParquet(PW.Table.fromIPCStream(A.tableToIPC(arrowTable(rows), 'stream')), props);
}

function check(name: string, bytes: Uint8Array, codec: string): void {
  const md = parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  const groups = md.row_groups.length;
  const encodings = new Set(md.row_groups.flatMap((g) => g.columns.flatMap((c) => c.meta_data?.encodings ?? [])));
  const codecs = new Set(md.row_groups.flatMap((g) => g.columns.map((c) => c.meta_data?.codec)));
  const dict = encodings.has('RLE_DICTIONARY') || encodings.has('PLAIN_DICTIONARY');
  if (groups < 2 || !dict || !codecs.has(codec as never) || Number(md.num_rows) !== ROWS) {
    throw new Error(`${name}: groups=${groups} encodings=${[...encodings]} codecs=${[...codecs]} rows=${md.num_rows}`);
  }
  console.log(`${name}: ${bytes.length} bytes, ${groups} row groups, encodings ${[...encodings].join('/')}, codec ${[...codecs].join('/')}, by ${md.created_by}`);
}

mkdirSync(OUT, { recursive: true });
const rows = makeRows();
writeFileSync(path.join(OUT, 'parquet-source.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
const files: [string, Uint8Array, string][] = [
  ['hyparquet-snappy.parquet', hyparquetFile(rows, 'SNAPPY'), 'SNAPPY'],
  ['hyparquet-zstd.parquet', hyparquetFile(rows, 'ZSTD'), 'ZSTD'],
  ['arrow-rs-snappy.parquet', arrowRsFile(rows, 'SNAPPY'), 'SNAPPY'],
  ['arrow-rs-zstd.parquet', arrowRsFile(rows, 'ZSTD'), 'ZSTD'],
];
for (const [name, bytes, codec] of files) {
  check(name, bytes, codec);
  writeFileSync(path.join(OUT, name), bytes);
}
const total = ['parquet-source.jsonl', ...files.map(([n]) => n)].reduce((s, n) => s + statSync(path.join(OUT, n)).size, 0);
console.log(`total ${total} bytes in ${OUT}`);
