// Rows or columns of JS values → an Arrow Table, one chunk (record batch) at a time, inferring column
// types the way datasets' ArrowWriter does from pyarrow: per chunk, then widened across chunks (null →
// anything, int → float, missing struct fields → null). Rows whose types truly disagree (a string where
// another row has a number) fail with an error that names the column, the two types and the rows.
// Not here: reading values back (arrow-read.ts) or the builders themselves (arrow-build.ts).

import { Data, DataType, Field, makeData, RecordBatch, Schema, Struct, Table, Type, type List } from 'apache-arrow';
import { TsFinetuneError } from '../core/index.js';
import { buildData, CellTypeError, makeColumnBuilder, type ColumnBuilder } from './arrow-build.js';
import { makeReader } from './arrow-read.js';
import { inferValueType, typeName, TypeDisagreement, typesEqual, unifyTypes } from './arrow-types.js';
import type { Value } from './types.js';

const NULL_TYPE = inferValueType(null);

const namesCache = new WeakMap<Struct, Set<string>>();
function fieldNames(t: Struct): Set<string> {
  let s = namesCache.get(t);
  if (!s) namesCache.set(t, (s = new Set(t.children.map((f) => f.name))));
  return s;
}

/** Does `v` fit `t` as is? A cheap check so that inference allocates types only when something changes. */
export function conforms(t: DataType, v: unknown): boolean {
  if (v === null || v === undefined) return true;
  switch (t.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8:
      return typeof v === 'string';
    case Type.Float:
      return typeof v === 'number';
    case Type.Int:
      return (typeof v === 'number' && Number.isSafeInteger(v)) || typeof v === 'bigint';
    case Type.Bool:
      return typeof v === 'boolean';
    case Type.List:
    case Type.LargeList: {
      if (!Array.isArray(v)) return false;
      const c = (t as List).valueType;
      for (let i = 0; i < v.length; i++) if (!conforms(c, v[i])) return false;
      return true;
    }
    case Type.Struct: {
      if (typeof v !== 'object' || Array.isArray(v) || ArrayBuffer.isView(v) || v instanceof Date) return false;
      const fields = (t as Struct).children;
      for (const f of fields) if (!conforms(f.type, (v as Record<string, unknown>)[f.name])) return false;
      // A key the struct does not have yet must widen it.
      const names = fieldNames(t as Struct);
      for (const k in v) if (!names.has(k) && (v as Record<string, unknown>)[k] !== undefined) return false;
      return true;
    }
    default:
      return false;
  }
}

export interface InferredType {
  type: DataType;
  /** First row (absolute) that holds a non-null value, used in error messages. */
  firstRow: number;
}

export function disagreement(column: string, a: DataType, aRow: number, b: DataType, bRow: number, where?: (row: number) => string): TsFinetuneError {
  const at = (r: number): string => (where ? where(r) : `row ${r}`);
  return new TsFinetuneError(
    'SCHEMA_MISMATCH',
    `Rows disagree on the type of column '${column}': ${typeName(a)} at ${at(aRow)}, ${typeName(b)} at ${at(bRow)}`,
    { column, types: [typeName(a), typeName(b)], rows: [aRow, bRow] },
  );
}

/** Infer one type for `values` (rows firstRow…); throws SCHEMA_MISMATCH naming both rows on conflict. */
export function inferColumnType(column: string, values: ArrayLike<unknown>, firstRow: number, where?: (row: number) => string): InferredType {
  let t: DataType = NULL_TYPE;
  let since = -1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (conforms(t, v)) continue;
    let vt: DataType;
    try {
      vt = inferValueType(v);
    } catch (e) {
      if (e instanceof TypeDisagreement) {
        throw new TsFinetuneError('SCHEMA_MISMATCH', `Column '${column}' at ${where ? where(firstRow + i) : `row ${firstRow + i}`}: ${e.message}`, { column, row: firstRow + i });
      }
      throw e;
    }
    const u = unifyTypes(t, vt);
    if (!u) throw disagreement(column, t, firstRow + since, vt, firstRow + i, where);
    if (since < 0) since = i;
    t = u;
  }
  return { type: t, firstRow: firstRow + Math.max(since, 0) };
}

interface ColumnState {
  chunks: (Data | undefined)[]; // undefined: the column was absent from that chunk (all null)
  type: DataType;
  typeRow: number;
  fixed: boolean;
  /** Kept across chunks so its buffers grow once, not once per chunk (less allocator churn and RSS). */
  builder?: ColumnBuilder;
}

export interface ChunkColumn {
  /** JS values, one per row of the chunk. */
  values?: ArrayLike<unknown>;
  /** Or a chunk already in Arrow form (a column kept unchanged by map). */
  data?: Data;
}

export class TableBuilder {
  private readonly cols = new Map<string, ColumnState>();
  private readonly lengths: number[] = [];
  private rows = 0;

  /**
   * @param fixedTypes columns whose type is known (a given schema): values are checked against it, not inferred.
   * @param where how to name row `r` in errors (e.g. "file a.jsonl line 7"); default "row r".
   */
  constructor(
    fixedTypes?: Schema | Map<string, DataType>,
    private where?: (row: number) => string,
  ) {
    const entries: [string, DataType][] = fixedTypes instanceof Schema ? fixedTypes.fields.map((f) => [f.name, f.type]) : [...(fixedTypes ?? [])];
    for (const [name, type] of entries) this.cols.set(name, { chunks: [], type, typeRow: 0, fixed: true });
  }

  get numRows(): number {
    return this.rows;
  }

  /**
   * Add one chunk of `length` rows given per column; columns not named are null in it.
   * `where` (optional) names row k of this chunk in errors ("file a.jsonl line 12").
   */
  addChunk(columns: Iterable<[string, ChunkColumn]>, length: number, where?: (k: number) => string): void {
    const saved = this.where;
    const base = this.rows;
    if (where) this.where = (r) => where(r - base);
    try {
      this.addChunkInner(columns, length);
    } finally {
      this.where = saved;
    }
  }

  private addChunkInner(columns: Iterable<[string, ChunkColumn]>, length: number): void {
    const k = this.lengths.length;
    for (const [name, col] of columns) {
      let st = this.cols.get(name);
      if (!st) {
        st = { chunks: new Array<Data | undefined>(k).fill(undefined), type: NULL_TYPE, typeRow: this.rows, fixed: false };
        this.cols.set(name, st);
      }
      let data: Data;
      if (col.data) {
        if (col.data.length !== length) throw new TsFinetuneError('SCHEMA_MISMATCH', `Column '${name}' has ${col.data.length} rows in a chunk of ${length}`);
        data = col.data;
        this.widen(name, st, data.type, this.rows);
      } else {
        const values = col.values ?? [];
        if (values.length !== length) {
          throw new TsFinetuneError('SCHEMA_MISMATCH', `Column '${name}' has ${values.length} values for ${length} rows (rows ${this.rows}–${this.rows + length - 1})`, { column: name });
        }
        const type = st.fixed ? st.type : inferColumnType(name, values, this.rows, this.where).type;
        if (!st.fixed) this.widen(name, st, type, this.rows);
        if (!st.builder || !typesEqual(st.builder.type, type)) st.builder = makeColumnBuilder(type);
        try {
          data = buildData(type, values, st.builder);
        } catch (e) {
          st.builder = undefined;
          if (e instanceof CellTypeError) {
            const row = this.rows + ((e as CellTypeError & { index?: number }).index ?? 0);
            throw new TsFinetuneError('SCHEMA_MISMATCH', `Column '${name}' at ${this.where ? this.where(row) : `row ${row}`}: ${e.message}`, { column: name, row });
          }
          throw e;
        }
      }
      st.chunks[k] = data;
    }
    for (const st of this.cols.values()) if (st.chunks.length === k) st.chunks.push(undefined);
    this.lengths.push(length);
    this.rows += length;
  }

  /** Convenience: a chunk given as row objects (keys in first-seen order). */
  addRows(rows: readonly object[], where?: (k: number) => string): void {
    const cols = new Map<string, unknown[]>();
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i] as Record<string, unknown>;
      if (r === null || typeof r !== 'object' || Array.isArray(r)) {
        const row = this.rows + i;
        const at = where ? where(i) : this.where ? this.where(row) : `row ${row}`;
        throw new TsFinetuneError('DATASET_ERROR', `${at}: a row must be an object, got ${Array.isArray(r) ? 'an array' : String(r)}`, { row });
      }
      for (const key in r) {
        let c = cols.get(key);
        if (!c) {
          c = new Array<unknown>(rows.length).fill(null);
          cols.set(key, c);
        }
        c[i] = r[key];
      }
    }
    this.addChunk([...cols].map(([n, values]) => [n, { values }]), rows.length, where);
  }

  private widen(name: string, st: ColumnState, type: DataType, row: number): void {
    if (st.fixed) {
      if (!typesEqual(st.type, type) && type.typeId !== Type.Null) {
        const u = unifyTypes(st.type, type);
        if (!u || !typesEqual(u, st.type)) throw disagreement(name, st.type, st.typeRow, type, row, this.where);
      }
      return;
    }
    const u = unifyTypes(st.type, type);
    if (!u) throw disagreement(name, st.type, st.typeRow, type, row, this.where);
    if (st.type.typeId === Type.Null) st.typeRow = row;
    st.type = u;
  }

  /** The table, columns in `order` first (if given) then in first-seen order; chunks re-typed where widened. */
  finish(order?: readonly string[], metadata?: Map<string, string>): Table {
    const names = [...new Set([...(order ?? []).filter((n) => this.cols.has(n)), ...this.cols.keys()])];
    const fields = names.map((n) => new Field(n, this.cols.get(n)!.type, true));
    const schema = new Schema(fields, metadata);
    const columnChunks = names.map((n) => {
      const st = this.cols.get(n)!;
      return st.chunks.map((d, k) => conformChunk(d, st.type, this.lengths[k]!));
    });
    const batches = this.lengths.map(
      (length, k) =>
        new RecordBatch(schema, makeData({ type: new Struct(fields), length, nullCount: 0, children: columnChunks.map((c) => c[k]!) })),
    );
    return new Table(schema, batches);
  }
}

/** `d` as a chunk of exactly `type` (all-null when absent); rebuilt through JS values only if widened. */
export function conformChunk(d: Data | undefined, type: DataType, length: number): Data {
  if (d && typesEqual(d.type, type)) return d;
  if (!d || d.type.typeId === Type.Null) return buildData(type, new Array<null>(length).fill(null));
  const read = makeReader(d);
  const values = new Array<Value>(d.length);
  for (let i = 0; i < d.length; i++) values[i] = read(i);
  return buildData(type, values);
}

/** A table from row objects, in chunks of `chunkRows`. */
export function rowsToTable(rows: readonly object[], opts: { schema?: Schema; chunkRows?: number; where?: (row: number) => string } = {}): Table {
  const b = new TableBuilder(opts.schema, opts.where);
  const step = opts.chunkRows ?? 10_000;
  for (let s = 0; s < rows.length; s += step) b.addRows(rows.slice(s, s + step));
  return b.finish(opts.schema?.fields.map((f) => f.name));
}
