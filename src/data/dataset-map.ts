// map and filter over a TableView, as datasets' `Dataset.map` / `Dataset.filter` do them
// (arrow_dataset.py): per row or per batch, with indices, removeColumns applied before the update,
// sync or async functions. Columns the function does not return are passed on zero-copy chunk by chunk;
// returned ones are built from JS values (types inferred, widened across chunks): row by row straight into
// Arrow builders (column-stream.ts), or from a batch's arrays in one exact-size pass.
// Sync functions give a result synchronously; the first Promise a function returns switches the rest of
// the run to awaiting, one call at a time (so the walkthrough's `const conv = train.map(fn)` stays sync).
// Not here: the Dataset API wrapping these (dataset.ts).

import { Field, Null, Schema, Table } from 'apache-arrow';
import { TsFinetuneError } from '../core/index.js';
import { describeValue } from './arrow-build.js';
import { ColumnStream, WindowColumns } from './column-stream.js';
import { ProgressLine } from './progress.js';
import { TableBuilder, type ChunkColumn } from './table-builder.js';
import type { TableView, Window } from './table-view.js';
import type { Value } from './types.js';

export interface MapOptions {
  /** Call the function on batches (column → values) instead of rows. */
  batched?: boolean;
  /** Rows per batch when batched (default 1000; ≤ 0 or null: the whole dataset in one batch). */
  batchSize?: number | null;
  /** Accepted for parity with datasets: the row index (or the batch's indices) is always passed as the second argument, like Array.prototype.map. */
  withIndices?: boolean;
  /** Columns dropped before the function's output is merged in (so the output may re-create them). */
  removeColumns?: string | readonly string[];
  /** Progress bar label (default "Map"). */
  desc?: string;
  /** Rows per written Arrow record batch (datasets' writer_batch_size; default 10,000). */
  writerBatchSize?: number;
  /** Show the progress bar (default: on a terminal). */
  progress?: boolean;
}

export interface FilterOptions {
  batched?: boolean;
  batchSize?: number | null;
  /** Accepted for parity: the index (or indices) is always the second argument. */
  withIndices?: boolean;
  desc?: string;
  progress?: boolean;
}

type Fn = (arg: unknown, idx?: unknown) => unknown;

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return x !== null && (typeof x === 'object' || typeof x === 'function') && typeof (x as { then?: unknown }).then === 'function';
}

/**
 * Run a step generator: it yields each function result (maybe a promise) and gets back the resolved value.
 * Stays synchronous until the first promise; rejections are thrown back into the generator so its
 * error handling (naming the row) applies to async functions too.
 */
export function drive<T>(gen: Generator<unknown, T, unknown>): T | Promise<T> {
  let r = gen.next();
  while (!r.done) {
    const v = r.value;
    if (isThenable(v)) return driveAsync(gen, v);
    r = gen.next(v);
  }
  return r.value;
}

async function driveAsync<T>(gen: Generator<unknown, T, unknown>, first: PromiseLike<unknown>): Promise<T> {
  let pending: unknown = first;
  for (;;) {
    let r: IteratorResult<unknown, T>;
    try {
      r = gen.next(await pending);
    } catch (e) {
      if (!(e instanceof FnError)) throw e;
      r = gen.throw(e.cause);
    }
    if (r.done) return r.value;
    pending = r.value;
  }
}

/** Marks a rejection from the user's function (vs. an error of ours). */
class FnError extends Error {}

function wrapAwait(v: unknown): unknown {
  return isThenable(v) ? Promise.resolve(v).catch((e: unknown) => Promise.reject(new FnError('', { cause: e }))) : v;
}

function failure(kind: 'map' | 'filter', where: string, e: unknown, details: Record<string, unknown>): TsFinetuneError {
  if (e instanceof TsFinetuneError && e.code === 'MAP_FUNCTION_FAILED') return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new TsFinetuneError('MAP_FUNCTION_FAILED', `The ${kind} function failed at ${where}: ${msg}`, details, { cause: e });
}

function normalizeRemove(view: TableView, remove: MapOptions['removeColumns']): Set<string> {
  const names = remove === undefined ? [] : typeof remove === 'string' ? [remove] : [...remove];
  for (const n of names) view.columnIndex(n, 'Column to remove');
  return new Set(names);
}

function batchOf(view: TableView, w: Window, cols: readonly number[]): Record<string, Value[]> {
  const names = view.columnNames;
  const out: Record<string, Value[]> = {};
  for (const c of cols) out[names[c]!] = view.columnValues(c, w.start, w.end);
  return out;
}

function range(s: number, e: number): number[] {
  return Array.from({ length: e - s }, (_, k) => s + k);
}

function effectiveBatch(view: TableView, batchSize: number | null | undefined): number {
  if (batchSize === null || (batchSize !== undefined && batchSize <= 0)) return Math.max(1, view.numRows);
  return batchSize ?? 1000;
}

/** Sub-windows of [s, e) that do not straddle record batches (for zero-copy kept columns). */
function aligned(view: TableView, w: Window, maxRows: number): Window[] {
  if (view.indices) return [w];
  const out: Window[] = [];
  let s = w.start;
  while (s < w.end) {
    const [b, r] = view.locate(s);
    const left = view.table.batches[b]!.numRows - r;
    const e = Math.min(w.end, s + Math.min(left, maxRows));
    out.push({ start: s, end: e });
    s = e;
  }
  return out;
}

export function mapSteps(view: TableView, fn: Fn, opts: MapOptions): Generator<unknown, Table, unknown> {
  return mapGen(view, fn, opts);
}

function* mapGen(view: TableView, fn: Fn, opts: MapOptions): Generator<unknown, Table, unknown> {
  const remove = normalizeRemove(view, opts.removeColumns);
  const names = view.columnNames;
  const allCols = names.map((_, c) => c);
  const writer = Math.max(1, opts.writerBatchSize ?? 10_000);
  const builder = new TableBuilder();
  const bar = new ProgressLine(view.numRows, { desc: opts.desc ?? 'Map', enabled: opts.progress });
  const newOrder: string[] = [];
  const seen = new Set(names);
  const noteOutputs = (keys: Iterable<string>): void => {
    for (const k of keys) {
      if (!seen.has(k)) {
        seen.add(k);
        newOrder.push(k);
      }
    }
  };
  const keptData = (w: Window, exclude: Set<string>): [string, ChunkColumn][] =>
    allCols.filter((c) => !remove.has(names[c]!) && !exclude.has(names[c]!)).map((c) => [names[c]!, { data: view.columnData(c, w) }]);

  if (opts.batched) {
    const bs = effectiveBatch(view, opts.batchSize);
    for (let s = 0; s < view.numRows; s += bs) {
      const w = { start: s, end: Math.min(view.numRows, s + bs) };
      const batch = batchOf(view, w, allCols);
      let out: unknown;
      try {
        out = yield wrapAwait(fn(batch, range(w.start, w.end)));
      } catch (e) {
        throw failure('map', `the batch of rows ${w.start}–${w.end - 1}`, e, { rowStart: w.start, rowEnd: w.end });
      }
      if (out === undefined || out === null) out = {};
      if (typeof out !== 'object' || Array.isArray(out)) {
        throw new TsFinetuneError('MAP_FUNCTION_FAILED', `A batched map function must return an object of columns, got ${describeValue(out)} for rows ${w.start}–${w.end - 1}`);
      }
      const cols = Object.entries(out as Record<string, unknown>).filter(([, v]) => v !== undefined);
      let m: number | undefined;
      for (const [k, v] of cols) {
        const len = (v as ArrayLike<unknown> | null)?.length;
        if (typeof len !== 'number' || typeof v === 'string') {
          throw new TsFinetuneError('MAP_FUNCTION_FAILED', `A batched map function must return arrays, but column '${k}' is ${describeValue(v)} (rows ${w.start}–${w.end - 1})`, { column: k });
        }
        if (m !== undefined && len !== m) {
          throw new TsFinetuneError('SCHEMA_MISMATCH', `The batched map function returned columns of different lengths for rows ${w.start}–${w.end - 1}: '${cols[0]![0]}' has ${m}, '${k}' has ${len}`);
        }
        m = len;
      }
      const n = w.end - w.start;
      const outKeys = new Set(cols.map(([k]) => k));
      noteOutputs(outKeys);
      const rows = m ?? n;
      if (rows !== n) {
        const kept = names.filter((c) => !remove.has(c) && !outKeys.has(c));
        if (kept.length) {
          throw new TsFinetuneError(
            'SCHEMA_MISMATCH',
            `The batched map function turned ${n} rows into ${rows} (rows ${w.start}–${w.end - 1}), so the input columns cannot be kept: ` +
              `pass removeColumns: [${kept.map((c) => `'${c}'`).join(', ')}] or return them too`,
            { kept },
          );
        }
        if (rows > 0) builder.addChunk(cols.map(([k, v]) => [k, { values: v as ArrayLike<unknown> }]), rows);
      } else {
        for (const sw of aligned(view, w, writer)) {
          const a = sw.start - w.start, b = sw.end - w.start;
          const built: [string, ChunkColumn][] = cols.map(([k, v]) => [k, { values: sliceLike(v as ArrayLike<unknown>, a, b) }]);
          builder.addChunk([...keptData(sw, outKeys), ...built], sw.end - sw.start);
        }
      }
      bar.update(w.end);
    }
  } else {
    // Row by row, each output appended to its column as it comes (column-stream.ts): no window of
    // decoded rows or returned objects is held, only the Arrow chunks being built.
    const read = view.rowCursor();
    const streams = new Map<string, ColumnStream>();
    const inputValues = (key: string, s: number, e: number): readonly unknown[] | undefined => {
      const c = names.indexOf(key);
      return c < 0 || remove.has(key) ? undefined : view.columnValues(c, s, e);
    };
    for (const w of view.windows(writer)) {
      const cols = new WindowColumns(streams, w.start, inputValues);
      for (let i = w.start; i < w.end; i++) {
        const row = read(i) as Record<string, unknown>;
        let out: unknown;
        try {
          out = yield wrapAwait(fn(row, i));
        } catch (e) {
          throw failure('map', `row ${i}`, e, { row: i });
        }
        if (out === undefined || out === null) out = {};
        if (typeof out !== 'object' || Array.isArray(out)) {
          throw new TsFinetuneError('MAP_FUNCTION_FAILED', `The map function must return an object (or nothing), got ${describeValue(out)} at row ${i}`, { row: i });
        }
        // A column this row does not return keeps the row's input value (null for new columns).
        cols.append(out as Record<string, unknown>, i, (key) => (remove.has(key) ? null : row[key]));
        if (((i - w.start) & 1023) === 1023) bar.update(i + 1);
      }
      noteOutputs(cols.names);
      const built: [string, ChunkColumn][] = cols.streams.map((st) => [st.name, { data: st.finish() }]);
      builder.addChunk([...keptData(w, new Set(cols.names)), ...built], w.end - w.start);
      bar.update(w.end);
    }
  }
  bar.close();
  if (builder.numRows === 0) {
    // No rows out (an empty input, or a batched map that dropped everything): keep the schema
    // of the remaining columns, and add the function's new columns as null-typed.
    const kept = view.table.schema.fields.filter((f) => !remove.has(f.name));
    return new Table(new Schema([...kept, ...newOrder.map((n) => new Field(n, new Null(), true))]));
  }
  const order = [...names.filter((n) => !remove.has(n)), ...newOrder];
  return builder.finish(order);
}

function sliceLike(v: ArrayLike<unknown>, a: number, b: number): ArrayLike<unknown> {
  if (a === 0 && b === v.length) return v;
  if (Array.isArray(v)) return v.slice(a, b);
  if (ArrayBuffer.isView(v)) return (v as unknown as Uint8Array).subarray(a, b);
  return Array.from({ length: b - a }, (_, k) => v[a + k]);
}

export function filterSteps(view: TableView, fn: Fn, opts: FilterOptions): Generator<unknown, Uint32Array, unknown> {
  return filterGen(view, fn, opts);
}

function* filterGen(view: TableView, fn: Fn, opts: FilterOptions): Generator<unknown, Uint32Array, unknown> {
  const keep: number[] = [];
  const bar = new ProgressLine(view.numRows, { desc: opts.desc ?? 'Filter', enabled: opts.progress });
  const all = view.columnNames.map((_, c) => c);
  if (opts.batched) {
    const bs = effectiveBatch(view, opts.batchSize);
    for (let s = 0; s < view.numRows; s += bs) {
      const w = { start: s, end: Math.min(view.numRows, s + bs) };
      const batch = batchOf(view, w, all);
      let out: unknown;
      try {
        out = yield wrapAwait(fn(batch, range(w.start, w.end)));
      } catch (e) {
        throw failure('filter', `the batch of rows ${w.start}–${w.end - 1}`, e, { rowStart: w.start, rowEnd: w.end });
      }
      const mask = out as ArrayLike<unknown> | null;
      if (!mask || typeof mask !== 'object' || mask.length !== w.end - w.start) {
        throw new TsFinetuneError('MAP_FUNCTION_FAILED', `A batched filter function must return one boolean per row (${w.end - w.start}), got ${describeValue(out)} for rows ${w.start}–${w.end - 1}`);
      }
      for (let k = 0; k < mask.length; k++) if (mask[k]) keep.push(w.start + k);
      bar.update(w.end);
    }
  } else {
    // One row decoded at a time (see TableView.rowCursor): its strings die young.
    const read = view.rowCursor();
    for (let i = 0; i < view.numRows; i++) {
      let out: unknown;
      try {
        out = yield wrapAwait(fn(read(i), i));
      } catch (e) {
        throw failure('filter', `row ${i}`, e, { row: i });
      }
      if (out) keep.push(i);
      if ((i & 8191) === 8191) bar.update(i + 1);
    }
    bar.update(view.numRows);
  }
  bar.close();
  return Uint32Array.from(keep);
}

