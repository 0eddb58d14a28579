// The storage under a Dataset: an immutable Arrow Table plus an optional indices mapping (logical row →
// physical row), exactly datasets' `_indices`: select / shuffle / filter / split only write a Uint32Array
// and share the table, so a shuffle of 500k rows costs 2 MB, not a copy of the text.
// Here: row and column reads in logical order, windows that never straddle a record batch (so unchanged
// columns can be passed on zero-copy), and flattening the mapping into a new table (gatherData).
// Not here: the user-facing API (dataset.ts) or map/filter (dataset-map.ts).

import { Data, makeData, RecordBatch, Struct, Table } from 'apache-arrow';
import { TsFinetuneError, closestName } from '../core/index.js';
import { gatherData, makeReader, type Reader } from './arrow-read.js';
import type { Row, Value } from './types.js';

export interface Window {
  start: number;
  end: number;
}

export class TableView {
  private readonly batchStarts: number[] = [];
  private readonly readers: (Reader[] | undefined)[];
  readonly numRows: number;

  constructor(
    readonly table: Table,
    readonly indices?: Uint32Array,
  ) {
    let s = 0;
    for (const b of table.batches) {
      this.batchStarts.push(s);
      s += b.numRows;
    }
    this.readers = new Array(table.batches.length).fill(undefined);
    this.numRows = indices ? indices.length : table.numRows;
  }

  get columnNames(): string[] {
    return this.table.schema.fields.map((f) => f.name);
  }

  /** Throws COLUMN_NOT_FOUND naming the column, the ones that exist, and a close match. */
  columnIndex(name: string, what = 'Column'): number {
    const i = this.table.schema.fields.findIndex((f) => f.name === name);
    if (i < 0) throw columnNotFound(name, this.columnNames, what);
    return i;
  }

  physical(i: number): number {
    return this.indices ? this.indices[i]! : i;
  }

  /** [batch, row within batch] of physical row p. */
  locate(p: number): [number, number] {
    const st = this.batchStarts;
    let lo = 0, hi = st.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (st[mid]! <= p) lo = mid;
      else hi = mid - 1;
    }
    return [lo, p - st[lo]!];
  }

  private batchReaders(b: number): Reader[] {
    let r = this.readers[b];
    if (!r) {
      r = this.table.batches[b]!.data.children.map((c) => makeReader(c));
      this.readers[b] = r;
    }
    return r;
  }

  checkIndex(i: number): number {
    if (!Number.isInteger(i) || i < -this.numRows || i >= this.numRows) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `Row index ${i} is out of range for a dataset of ${this.numRows} rows`, { index: i, numRows: this.numRows });
    }
    return i < 0 ? i + this.numRows : i;
  }

  getRow(i: number, columns?: readonly number[]): Row {
    const [b, r] = this.locate(this.physical(this.checkIndex(i)));
    const readers = this.batchReaders(b);
    const names = this.columnNames;
    const out: Record<string, Value> = {};
    if (columns) for (const c of columns) out[names[c]!] = readers[c]!(r);
    else for (let c = 0; c < readers.length; c++) out[names[c]!] = readers[c]!(r);
    return out;
  }

  /** Rows [start, end) as objects. */
  rows(start: number, end: number, columns?: readonly number[]): Row[] {
    const read = this.rowCursor(columns);
    const out = new Array<Row>(end - start);
    for (let i = start; i < end; i++) out[i - start] = read(i);
    return out;
  }

  /**
   * A reader of logical row i (unchecked: 0 ≤ i < numRows), fast when rows are read in order. map and
   * filter read one row at a time through it, so each row's strings die young instead of a whole window's
   * worth surviving into V8's old space (measured: ~100 MB of heap on the 500k-row benchmark).
   */
  rowCursor(columns?: readonly number[]): (i: number) => Row {
    const names = this.columnNames;
    const cols = columns ?? names.map((_, c) => c);
    const keys = cols.map((c) => names[c]!);
    let bEnd = -1, bStart = 0;
    let readers: Reader[] = [];
    return (i) => {
      const p = this.physical(i);
      if (p < bStart || p >= bEnd) {
        const [b] = this.locate(p);
        bStart = this.batchStarts[b]!;
        bEnd = bStart + this.table.batches[b]!.numRows;
        const all = this.batchReaders(b);
        // After a shuffle the batch changes nearly every row: no per-row allocation for the usual all-columns read.
        readers = columns ? cols.map((c) => all[c]!) : all;
      }
      const r = p - bStart;
      const o: Record<string, Value> = {};
      for (let k = 0; k < keys.length; k++) o[keys[k]!] = readers[k]!(r);
      return o;
    };
  }

  /** Values of column c for rows [start, end). */
  columnValues(c: number, start = 0, end = this.numRows): Value[] {
    const out = new Array<Value>(end - start);
    let bStart = 0, bEnd = -1;
    let read: Reader = () => null;
    for (let i = start; i < end; i++) {
      const p = this.physical(i);
      if (p < bStart || p >= bEnd) {
        const [b] = this.locate(p);
        bStart = this.batchStarts[b]!;
        bEnd = bStart + this.table.batches[b]!.numRows;
        read = this.batchReaders(b)[c]!;
      }
      out[i - start] = read(p - bStart);
    }
    return out;
  }

  /** Logical windows of at most `maxRows` rows; without a mapping none crosses a record batch. */
  *windows(maxRows: number): Generator<Window> {
    if (this.indices) {
      for (let s = 0; s < this.numRows; s += maxRows) yield { start: s, end: Math.min(this.numRows, s + maxRows) };
      return;
    }
    for (let b = 0; b < this.table.batches.length; b++) {
      const bs = this.batchStarts[b]!, n = this.table.batches[b]!.numRows;
      for (let s = 0; s < n; s += maxRows) yield { start: bs + s, end: bs + Math.min(n, s + maxRows) };
    }
  }

  /** Column c over a window from `windows()`, as one chunk: a zero-copy slice, or gathered through the mapping. */
  columnData(c: number, w: Window): Data {
    if (!this.indices) {
      const [b, r] = this.locate(w.start);
      return this.table.batches[b]!.data.children[c]!.slice(r, w.end - w.start);
    }
    const n = w.end - w.start;
    const chunk = new Uint32Array(n), row = new Uint32Array(n);
    for (let k = 0; k < n; k++) {
      const [b, r] = this.locate(this.indices[w.start + k]!);
      chunk[k] = b;
      row[k] = r;
    }
    const chunks = this.table.batches.map((bt) => bt.data.children[c]!);
    return gatherData(this.table.schema.fields[c]!.type, chunks, { chunk, row });
  }

  /**
   * Same rows, new mapping: `idx` are logical indices of this view. The view takes `idx` over: through an
   * existing mapping it is composed in place (every caller passes a fresh array), so shuffling or
   * splitting a mapped dataset allocates no second index array.
   */
  select(idx: Uint32Array): TableView {
    if (this.indices) for (let k = 0; k < idx.length; k++) idx[k] = this.indices[idx[k]!]!;
    return new TableView(this.table, idx);
  }

  slice(start: number, end: number): TableView {
    if (this.indices) return new TableView(this.table, this.indices.slice(start, end));
    return new TableView(this.table.slice(start, end));
  }

  selectColumns(cols: readonly number[]): TableView {
    const schema = this.table.schema.select(cols.map((c) => this.table.schema.fields[c]!.name));
    const batches = this.table.batches.map(
      (b) => new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: b.numRows, nullCount: 0, children: cols.map((c) => b.data.children[c]!) })),
    );
    return new TableView(new Table(schema, batches), this.indices);
  }

  /** The table with the mapping applied (the table itself when there is none). */
  flatten(maxRows = 10_000): Table {
    if (!this.indices) return this.table;
    const schema = this.table.schema;
    const batches: RecordBatch[] = [];
    for (const w of this.windows(maxRows)) {
      const children = schema.fields.map((_, c) => this.columnData(c, w));
      batches.push(new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: w.end - w.start, nullCount: 0, children })));
    }
    return new Table(schema, batches);
  }
}

export function columnNotFound(name: string, existing: readonly string[], what = 'Column'): TsFinetuneError {
  const close = closestName(name, existing);
  return new TsFinetuneError(
    'COLUMN_NOT_FOUND',
    `${what} '${name}' not in the dataset, which has columns: ${existing.map((c) => `'${c}'`).join(', ') || '(none)'}${close ? ` (did you mean '${close}'?)` : ''}`,
    { column: name, columns: [...existing] },
  );
}
