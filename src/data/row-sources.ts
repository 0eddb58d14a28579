// The file formats of datasets' packaged builders (json, csv, text, parquet, arrow), each read as
// chunks of rows on demand: the streaming path iterates them; the eager path builds a table from them
// (parquet and arrow files go straight to Arrow instead). `.gz` files are gunzipped on the fly.
//   json:  JSON Lines, or one JSON document: an array of rows, a dict of columns, or rows under `field`
//   csv:   header row, pandas-like typing (csv.ts); `.tsv` defaults to tab
//   text:  one row per line {text} (empty lines kept, as datasets does), or per paragraph / document
// Errors name the file and line. Not here: finding the files (data-files.ts) or the Dataset types.

import { createReadStream, promises as fsp } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip, gunzipSync } from 'node:zlib';
import type { Readable } from 'node:stream';
import { RecordBatchReader, type Table } from 'apache-arrow';
import { TsFinetuneError } from '../core/index.js';
import { CsvParser, convertCsvCells, csvColumnKind, type CsvKind } from './csv.js';
import { makeReader } from './arrow-read.js';
import { openParquet, readParquetRange } from './parquet-read.js';
import type { Row } from './types.js';

export type BuilderName = 'json' | 'csv' | 'text' | 'parquet' | 'arrow';

export interface ReaderOptions {
  /** json: the key holding the rows when the file is one JSON object. */
  field?: string;
  /** csv: the delimiter (default ',' or tab for .tsv). */
  delimiter?: string;
  /** text: keep the trailing "\n" of each line (default false). */
  keepLinebreaks?: boolean;
  /** text: one row per 'line' (default), 'paragraph' (blank-line separated) or 'document'. */
  sampleBy?: 'line' | 'paragraph' | 'document';
  /** Rows per chunk (default 10,000). */
  chunkRows?: number;
}

export interface RowChunk {
  rows: Row[];
  /** Names row k of this chunk in errors. */
  where: (k: number) => string;
}

async function ensureFile(file: string): Promise<void> {
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) throw new Error('not a file');
  } catch {
    throw new TsFinetuneError('FILE_NOT_FOUND', `Data file not found: ${file}`, { file });
  }
}

function openText(file: string): Readable {
  const raw = createReadStream(file);
  return file.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
}

async function readWholeText(file: string): Promise<string> {
  const buf = await fsp.readFile(file);
  return (file.endsWith('.gz') ? gunzipSync(buf) : buf).toString('utf8');
}

function* chunked(rows: Row[], n: number, where: (i: number) => string): Generator<RowChunk> {
  for (let s = 0; s < rows.length; s += n) yield { rows: rows.slice(s, s + n), where: (k) => where(s + k) };
}

function jsonDocumentRows(file: string, doc: unknown, field: string | undefined): Row[] {
  let data = doc;
  if (field !== undefined) {
    if (data === null || typeof data !== 'object' || Array.isArray(data) || !(field in data)) {
      throw new TsFinetuneError('DATASET_ERROR', `${file} has no top-level field '${field}'`, { file, field });
    }
    data = (data as Record<string, unknown>)[field];
  }
  if (Array.isArray(data)) return data as Row[];
  if (data !== null && typeof data === 'object') {
    // A dict of columns, as datasets' json builder accepts (pa.Table.from_pydict).
    const cols = Object.entries(data as Record<string, unknown>);
    if (cols.every(([, v]) => Array.isArray(v))) {
      const n = (cols[0]?.[1] as unknown[] | undefined)?.length ?? 0;
      const bad = cols.find(([, v]) => (v as unknown[]).length !== n);
      if (bad) throw new TsFinetuneError('SCHEMA_MISMATCH', `${file}: column '${bad[0]}' has ${(bad[1] as unknown[]).length} values, '${cols[0]![0]}' has ${n}`, { file });
      return Array.from({ length: n }, (_, i) => Object.fromEntries(cols.map(([k, v]) => [k, (v as unknown[])[i]])));
    }
    return [data as Row];
  }
  throw new TsFinetuneError('DATASET_ERROR', `${file}: expected JSON rows (an array, an object of columns, or JSON Lines), got ${typeof data}`, { file });
}

async function* jsonRows(file: string, opts: ReaderOptions): AsyncGenerator<RowChunk> {
  const n = opts.chunkRows ?? 10_000;
  const head = (await readHead(file)).trimStart();
  if (opts.field !== undefined || head.startsWith('[')) {
    const text = await readWholeText(file);
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new TsFinetuneError('CORRUPT_FILE', `${file} is not valid JSON: ${(e as Error).message}`, { file });
    }
    yield* chunked(jsonDocumentRows(file, doc, opts.field), n, (i) => `${file} row ${i}`);
    return;
  }
  let rows: Row[] = [];
  let lines: number[] = [];
  let lineNo = 0;
  const flush = (): RowChunk => {
    const ls = lines;
    const chunk = { rows, where: (k: number) => `${file} line ${ls[k]}` };
    rows = [];
    lines = [];
    return chunk;
  };
  const input = openText(file);
  const rl = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of rl) {
      lineNo++;
      if (line.trim() === '') continue;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (e) {
        if (lineNo === 1 && head.startsWith('{')) {
          // Maybe one pretty-printed JSON object (a dict of columns) rather than JSON Lines.
          const whole = await tryParseWhole(file);
          if (whole !== undefined) {
            yield* chunked(jsonDocumentRows(file, whole, undefined), n, (i) => `${file} row ${i}`);
            return;
          }
        }
        throw new TsFinetuneError('CORRUPT_FILE', `${file} line ${lineNo} is not valid JSON: ${(e as Error).message}`, { file, line: lineNo });
      }
      if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        throw new TsFinetuneError('DATASET_ERROR', `${file} line ${lineNo}: each JSON line must be an object, got ${Array.isArray(v) ? 'an array' : JSON.stringify(v)}`, { file, line: lineNo });
      }
      rows.push(v as Row);
      lines.push(lineNo);
      if (rows.length >= n) yield flush();
    }
    if (rows.length) yield flush();
  } finally {
    // A consumer that stops early (take) must not leave the file open.
    rl.close();
    input.destroy();
  }
}

async function tryParseWhole(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readWholeText(file));
  } catch {
    return undefined;
  }
}

async function readHead(file: string): Promise<string> {
  const s = openText(file);
  let out = '';
  for await (const chunk of s) {
    out += chunk.toString();
    if (out.trim().length > 0) break;
    if (out.length > 1 << 20) break;
  }
  s.destroy();
  return out;
}

async function* textRows(file: string, opts: ReaderOptions): AsyncGenerator<RowChunk> {
  const n = opts.chunkRows ?? 10_000;
  const by = opts.sampleBy ?? 'line';
  if (by === 'document') {
    yield { rows: [{ text: await readWholeText(file) }], where: () => file };
    return;
  }
  const keep = opts.keepLinebreaks === true;
  let rows: Row[] = [];
  let start = 0;
  let para: string[] = [];
  const flush = (): RowChunk => {
    const s0 = start;
    const chunk = { rows, where: (k: number) => `${file} ${by} ${s0 + k + 1}` };
    start += rows.length;
    rows = [];
    return chunk;
  };
  // readline drops the newline; datasets keeps a final line without "\n" as is, which this matches.
  const text = await readWholeTextIfSmall(file);
  const input = text === undefined ? openText(file) : undefined;
  const lines: AsyncIterable<string> | Iterable<string> = input ? createInterface({ input, crlfDelay: Infinity }) : splitLines(text!);
  try {
    for await (const line of lines) {
      if (by === 'line') rows.push({ text: keep ? `${line}\n` : line });
      else if (line.trim() === '') {
        if (para.length) rows.push({ text: para.join('\n') + (keep ? '\n' : '') });
        para = [];
      } else para.push(line);
      if (rows.length >= n) yield flush();
    }
    if (para.length) rows.push({ text: para.join('\n') });
    if (rows.length) yield flush();
  } finally {
    input?.destroy();
  }
}

async function readWholeTextIfSmall(file: string): Promise<string | undefined> {
  const st = await fsp.stat(file);
  return st.size < 64 << 20 ? readWholeText(file) : undefined;
}

function* splitLines(text: string): Generator<string> {
  let s = 0;
  while (s < text.length) {
    let e = text.indexOf('\n', s);
    if (e < 0) e = text.length;
    yield text.slice(s, e > s && text[e - 1] === '\r' ? e - 1 : e);
    s = e + 1;
  }
}

/** CSV rows: raw string cells, typed per chunk when streaming (typing the whole file needs csvTable). */
async function* csvRaw(file: string, opts: ReaderOptions): AsyncGenerator<{ header: string[]; cells: string[][]; lines: number[] }> {
  const n = opts.chunkRows ?? 10_000;
  const parser = new CsvParser(opts.delimiter ?? (/\.tsv(\.gz)?$/.test(file) ? '\t' : ','));
  let header: string[] | undefined;
  let cells: string[][] = [];
  let lines: number[] = [];
  const emit = (row: string[], line: number): void => {
    if (!header) {
      header = row.map((h, i) => h.trim() || `Unnamed: ${i}`);
      return;
    }
    if (row.length === 1 && row[0] === '') return; // blank line
    if (row.length > header.length) {
      throw new TsFinetuneError('CORRUPT_FILE', `${file} line ${line}: ${row.length} fields, but the header has ${header.length}`, { file, line });
    }
    cells.push(row);
    lines.push(line);
  };
  const stream = openText(file);
  stream.setEncoding('utf8');
  for await (const chunk of stream) {
    parser.push(chunk as string, emit);
    if (cells.length >= n && header) {
      yield { header, cells, lines };
      cells = [];
      lines = [];
    }
  }
  parser.end(emit);
  if (!header) throw new TsFinetuneError('CORRUPT_FILE', `${file} is empty: a CSV file needs a header row`, { file });
  yield { header, cells, lines };
}

function typedCsvRows(header: string[], cells: string[][], kinds?: CsvKind[]): Row[] {
  const cols = header.map((_, c) => cells.map((r) => r[c] ?? ''));
  const typed = cols.map((col, c) => convertCsvCells(col, kinds?.[c] ?? csvColumnKind(col)));
  return cells.map((_, i) => Object.fromEntries(header.map((h, c) => [h, typed[c]![i]])));
}

async function* csvRows(file: string, opts: ReaderOptions): AsyncGenerator<RowChunk> {
  for await (const { header, cells, lines } of csvRaw(file, opts)) {
    if (cells.length || lines.length === 0) yield { rows: typedCsvRows(header, cells), where: (k) => `${file} line ${lines[k]}` };
  }
}

/** A whole CSV file typed column-wise over all rows (what the eager loader uses, like pandas). */
export async function csvAllRows(file: string, opts: ReaderOptions): Promise<RowChunk> {
  await ensureFile(file);
  let header: string[] = [];
  const all: string[][] = [];
  const lines: number[] = [];
  for await (const c of csvRaw(file, { ...opts, chunkRows: Infinity })) {
    header = c.header;
    all.push(...c.cells);
    lines.push(...c.lines);
  }
  return { rows: typedCsvRows(header, all), where: (k) => `${file} line ${lines[k]}` };
}

async function* arrowRows(file: string, opts: ReaderOptions): AsyncGenerator<RowChunk> {
  const input = createReadStream(file);
  try {
    yield* arrowBatches(file, opts, await RecordBatchReader.from(input));
  } catch (e) {
    if (e instanceof TsFinetuneError) throw e;
    throw new TsFinetuneError('CORRUPT_FILE', `Cannot read Arrow IPC file ${file}: ${(e as Error).message}`, { file }, { cause: e });
  } finally {
    input.destroy();
  }
}

async function* arrowBatches(file: string, opts: ReaderOptions, reader: AsyncIterable<import('apache-arrow').RecordBatch>): AsyncGenerator<RowChunk> {
  let start = 0;
  for await (const batch of reader) {
    const readers = batch.data.children.map((c) => makeReader(c));
    const names = batch.schema.fields.map((f) => f.name);
    const n = opts.chunkRows ?? 10_000;
    for (let s = 0; s < batch.numRows; s += n) {
      const rows: Row[] = [];
      for (let i = s; i < Math.min(batch.numRows, s + n); i++) {
        const o: Row = {};
        names.forEach((nm, c) => (o[nm] = readers[c]!(i)));
        rows.push(o);
      }
      const s0 = start + s;
      yield { rows, where: (k) => `${file} row ${s0 + k}` };
    }
    start += batch.numRows;
  }
}

async function* parquetRows(file: string): AsyncGenerator<RowChunk> {
  const src = await openParquet(file);
  for (const r of src.ranges) {
    // One row group at a time: only this group's pages are read and decoded.
    const t: Table = await readParquetRange(src, r.rowStart, r.rowEnd);
    const names = t.schema.fields.map((f) => f.name);
    for (const b of t.batches) {
      const readers = b.data.children.map((c) => makeReader(c));
      const rows: Row[] = new Array(b.numRows);
      for (let i = 0; i < b.numRows; i++) {
        const o: Row = {};
        for (let c = 0; c < names.length; c++) o[names[c]!] = readers[c]!(i);
        rows[i] = o;
      }
      yield { rows, where: (k) => `${file} row ${r.rowStart + k}` };
    }
  }
}

/** Chunks of rows of one file, read lazily. */
export async function* fileRows(builder: BuilderName, file: string, opts: ReaderOptions = {}): AsyncGenerator<RowChunk> {
  await ensureFile(file);
  switch (builder) {
    case 'json':
      yield* jsonRows(file, opts);
      return;
    case 'text':
      yield* textRows(file, opts);
      return;
    case 'csv':
      yield* csvRows(file, opts);
      return;
    case 'arrow':
      yield* arrowRows(file, opts);
      return;
    case 'parquet':
      yield* parquetRows(file);
      return;
  }
}
