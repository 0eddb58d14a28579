// Dataset: an immutable, Arrow-backed table of rows with the method set of datasets' `Dataset`
// (arrow_dataset.py) in camelCase: row access, select/slice/take/skip/shard, column edits, map/filter,
// shuffle/trainTestSplit, concatenation, and export (parquet, JSON Lines, save_to_disk folders).
// Every method returns a new Dataset; row reorderings share the table through an indices mapping.
// Shuffles use the seeded xoshiro Rng of src/core: the same seed gives the same order on every machine
// and run, but not numpy's order (datasets uses np.random.default_rng), so orders differ from Python's.
// Not here: loading from files or the Hub (load-dataset.ts), streaming (iterable-dataset.ts).

import { inspect } from 'node:util';
import { createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Field, makeData, Null, RecordBatch, Schema, Struct, Table } from 'apache-arrow';
import { Rng, TsFinetuneError } from '../core/index.js';
import { featuresToSchema, schemaToFeatures } from './arrow-types.js';
import { drive, filterSteps, mapSteps, type FilterOptions, type MapOptions } from './dataset-map.js';
import { DatasetDict, registerDatasetLoader } from './dataset-dict.js';
import { loadDataset as loadDiskDataset, saveDataset } from './disk.js';
import { writeParquet, type ToParquetOptions } from './parquet-write.js';
import { readFilesTable } from './read-files.js';
import type { ReaderOptions } from './row-sources.js';
import { shardRange, trainTestSizes } from './split.js';
import { rowsToTable, TableBuilder, type ChunkColumn } from './table-builder.js';
import { concatTables } from './table-concat.js';
import { TableView, columnNotFound } from './table-view.js';
import { emptyInfo, type Batch, type DatasetInfo, type Features, type Row } from './types.js';

/** Output row of a map: the input row updated with the function's output. */
export type Merge<A, B> = Omit<A, keyof B> & B;
/** Row type of a batched map's output (column → array) */
export type Unbatched<O> = { [K in keyof O]: O[K] extends ArrayLike<infer E> ? E : unknown };

export interface ShuffleOptions {
  seed?: number;
  /** Use this generator instead of a fresh one from `seed` (it advances). */
  generator?: Rng;
}

export interface TrainTestSplitOptions extends ShuffleOptions {
  /** Fraction in (0, 1) or a row count; default 0.25 when trainSize is not given either. */
  testSize?: number | null;
  trainSize?: number | null;
  /** Shuffle before splitting (default true). */
  shuffle?: boolean;
}

export interface DatasetOptions {
  info?: DatasetInfo;
  split?: string | null;
}

function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 32);
}

function isAsyncFunction(fn: unknown): boolean {
  return typeof fn === 'function' && fn.constructor?.name === 'AsyncFunction';
}

function toIndexArray(indices: Iterable<number> | ArrayLike<number>, n: number): Uint32Array {
  const arr = Array.isArray(indices) || ArrayBuffer.isView(indices) ? (indices as ArrayLike<number>) : Array.from(indices as Iterable<number>);
  const out = new Uint32Array(arr.length);
  for (let k = 0; k < arr.length; k++) {
    let i = arr[k]!;
    if (!Number.isInteger(i) || i >= n || i < -n) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `Index ${i} (position ${k}) is out of range for a dataset of ${n} rows`, { index: i, numRows: n });
    }
    if (i < 0) i += n;
    out[k] = i;
  }
  return out;
}

/**
 * An Arrow-backed table of rows with datasets' API.
 * @example
 * const ds = Dataset.fromList([{ instruction: 'Add 2 and 2', output: '4', system: 'Be brief.' }]);
 * const conv = ds.map((s) => ({ messages: [{ role: 'user', content: s.instruction }, { role: 'assistant', content: s.output }] }));
 * const { train, test } = conv.trainTestSplit({ testSize: 0.2, seed: 42 });
 */
export class Dataset<R extends object = Row> implements Iterable<R> {
  /** The storage: Arrow table + optional indices mapping. Internal to the data module. */
  readonly _view: TableView;
  readonly info: DatasetInfo;
  readonly split: string | null;

  constructor(table: Table | TableView, opts: DatasetOptions = {}) {
    this._view = table instanceof TableView ? table : new TableView(table);
    this.info = opts.info ?? emptyInfo();
    this.split = opts.split ?? null;
  }

  private derive<T extends object>(v: TableView | Table): Dataset<T> {
    return new Dataset<T>(v, { info: this.info, split: this.split });
  }

  // ---- construction -------------------------------------------------------------------------------

  /** Rows → dataset (datasets' `Dataset.from_list`); `features` fixes the column types instead of inferring. */
  static fromList<T extends object = Row>(rows: readonly T[], opts: { features?: Features } = {}): Dataset<T> {
    const schema = opts.features ? featuresToSchema(opts.features) : undefined;
    return new Dataset<T>(rowsToTable(rows, schema ? { schema } : {}));
  }

  /** Alias of fromList (pandas' from_records naming). */
  static fromRecords<T extends object = Row>(rows: readonly T[], opts: { features?: Features } = {}): Dataset<T> {
    return Dataset.fromList(rows, opts);
  }

  /** Columns → dataset (datasets' `Dataset.from_dict`). */
  static fromDict<T extends object = Row>(columns: { [K in keyof T]: ArrayLike<T[K]> }, opts: { features?: Features } = {}): Dataset<T> {
    const entries = Object.entries(columns) as [string, ArrayLike<unknown>][];
    const n = entries[0]?.[1].length ?? 0;
    for (const [k, v] of entries) {
      if (v.length !== n) throw new TsFinetuneError('SCHEMA_MISMATCH', `fromDict: column '${k}' has ${v.length} values but '${entries[0]![0]}' has ${n}`, { column: k });
    }
    const b = new TableBuilder(opts.features ? featuresToSchema(opts.features) : undefined);
    if (n === 0) b.addChunk(entries.map(([k]) => [k, { values: [] }]), 0);
    for (let s = 0; s < n; s += 10_000) {
      const e = Math.min(n, s + 10_000);
      b.addChunk(entries.map(([k, v]) => [k, { values: Array.prototype.slice.call(v, s, e) }]), e - s);
    }
    return new Dataset<T>(b.finish(opts.features ? Object.keys(opts.features) : entries.map(([k]) => k)));
  }

  static fromArrow<T extends object = Row>(table: Table, opts: DatasetOptions = {}): Dataset<T> {
    return new Dataset<T>(table, opts);
  }

  static async fromParquet<T extends object = Row>(paths: string | readonly string[]): Promise<Dataset<T>> {
    return new Dataset<T>(await readFilesTable('parquet', typeof paths === 'string' ? [paths] : paths, { desc: 'Loading parquet' }));
  }

  /** JSON Lines or a JSON document (rows array, dict of columns, or rows under `field`). */
  static async fromJson<T extends object = Row>(paths: string | readonly string[], opts: ReaderOptions = {}): Promise<Dataset<T>> {
    return new Dataset<T>(await readFilesTable('json', typeof paths === 'string' ? [paths] : paths, opts));
  }

  static async fromCsv<T extends object = Row>(paths: string | readonly string[], opts: ReaderOptions = {}): Promise<Dataset<T>> {
    return new Dataset<T>(await readFilesTable('csv', typeof paths === 'string' ? [paths] : paths, opts));
  }

  static async fromText(paths: string | readonly string[], opts: ReaderOptions = {}): Promise<Dataset<{ text: string }>> {
    return new Dataset<{ text: string }>(await readFilesTable('text', typeof paths === 'string' ? [paths] : paths, opts));
  }

  /** A folder written by saveToDisk (here or by Python's datasets). */
  static async loadFromDisk<T extends object = Row>(dir: string): Promise<Dataset<T>> {
    const d = await loadDiskDataset(dir);
    return new Dataset<T>(d.table, { info: d.info, split: d.split });
  }

  // ---- shape and access ------------------------------------------------------------------------------

  get numRows(): number {
    return this._view.numRows;
  }

  get numColumns(): number {
    return this._view.table.schema.fields.length;
  }

  get shape(): [number, number] {
    return [this.numRows, this.numColumns];
  }

  get columnNames(): string[] {
    return this._view.columnNames;
  }

  /** HF-style schema: `{ text: { dtype: 'string', _type: 'Value' }, messages: [{ role: …, content: … }] }`. */
  get features(): Features {
    return schemaToFeatures(this._view.table.schema);
  }

  /** The Arrow schema (types exactly as stored). */
  get schema(): Schema {
    return this._view.table.schema;
  }

  /** Row i as a fresh plain object (negative i counts from the end). */
  get(i: number): R {
    return this._view.getRow(i) as R;
  }

  /** All values of one column (datasets' `ds["text"]`). */
  column<K extends keyof R & string>(name: K): R[K][] {
    return this._view.columnValues(this._view.columnIndex(name)) as R[K][];
  }

  *[Symbol.iterator](): Iterator<R> {
    for (const w of this._view.windows(1000)) yield* this._view.rows(w.start, w.end) as R[];
  }

  /** Batches of `batchSize` rows as column → values (datasets' `Dataset.iter`). */
  *iter(opts: { batchSize?: number; dropLastBatch?: boolean } = {}): Generator<Batch<R>> {
    const bs = opts.batchSize ?? 1000;
    const cols = this.columnNames.map((_, c) => c);
    for (let s = 0; s < this.numRows; s += bs) {
      const e = Math.min(this.numRows, s + bs);
      if (opts.dropLastBatch && e - s < bs) return;
      const out: Record<string, unknown[]> = {};
      for (const c of cols) out[this.columnNames[c]!] = this._view.columnValues(c, s, e);
      yield out as Batch<R>;
    }
  }

  toList(): R[] {
    return this._view.rows(0, this.numRows) as R[];
  }

  /** Column → values for the whole dataset. */
  toDict(): Batch<R> {
    const out: Record<string, unknown[]> = {};
    this.columnNames.forEach((n, c) => (out[n] = this._view.columnValues(c)));
    return out as Batch<R>;
  }

  /** The Arrow table with any indices mapping applied. */
  toArrow(): Table {
    return this._view.flatten();
  }

  // ---- row selection ----------------------------------------------------------------------------------

  select(indices: Iterable<number> | ArrayLike<number>): Dataset<R> {
    return this.derive(this._view.select(toIndexArray(indices, this.numRows)));
  }

  /** Rows [start, end) (end exclusive, clamped; negatives count from the end). */
  slice(start = 0, end = this.numRows): Dataset<R> {
    const n = this.numRows;
    const a = Math.max(0, Math.min(n, start < 0 ? start + n : start));
    const b = Math.max(a, Math.min(n, end < 0 ? end + n : end));
    return this.derive(this._view.slice(a, b));
  }

  take(n: number): Dataset<R> {
    return this.slice(0, Math.max(0, n));
  }

  skip(n: number): Dataset<R> {
    return this.slice(Math.max(0, n));
  }

  /** Shard `index` of `numShards` (contiguous blocks by default, else every numShards-th row). */
  shard(opts: { numShards: number; index: number; contiguous?: boolean }): Dataset<R> {
    const [s, e] = shardRange(this.numRows, opts.numShards, opts.index);
    if (opts.contiguous !== false) return this.slice(s, e);
    const idx: number[] = [];
    for (let i = opts.index; i < this.numRows; i += opts.numShards) idx.push(i);
    return this.select(idx);
  }

  shuffle(opts: ShuffleOptions | number = {}): Dataset<R> {
    const o = typeof opts === 'number' ? { seed: opts } : opts;
    const rng = o.generator ?? new Rng(o.seed ?? randomSeed());
    return this.derive(this._view.select(rng.permutation(this.numRows)));
  }

  /**
   * Split into {train, test} with datasets' sizes (float testSize → ceil(testSize·n), float trainSize →
   * floor(trainSize·n)). With shuffle, test takes the first nTest rows of a seeded permutation and train
   * the next nTrain, as datasets does; without it, train is the first nTrain rows and test the next nTest.
   */
  trainTestSplit(opts: TrainTestSplitOptions = {}): DatasetDict<R> & { train: Dataset<R>; test: Dataset<R> } {
    const n = this.numRows;
    const { nTrain, nTest } = trainTestSizes(n, opts.testSize, opts.trainSize);
    let train: Uint32Array, test: Uint32Array;
    if (opts.shuffle === false) {
      train = Uint32Array.from({ length: nTrain }, (_, k) => k);
      test = Uint32Array.from({ length: nTest }, (_, k) => nTrain + k);
    } else {
      const rng = opts.generator ?? new Rng(opts.seed ?? randomSeed());
      const perm = rng.permutation(n);
      // Views, not copies: the two splits own disjoint parts of the permutation.
      test = perm.subarray(0, nTest);
      train = perm.subarray(nTest, nTest + nTrain);
    }
    return new DatasetDict<R>({ train: this.derive(this._view.select(train)), test: this.derive(this._view.select(test)) }) as DatasetDict<R> & {
      train: Dataset<R>;
      test: Dataset<R>;
    };
  }

  /** Rows ordered by one column (stable; nulls last). */
  sort(column: keyof R & string, opts: { reverse?: boolean } = {}): Dataset<R> {
    const vals = this.column(column) as unknown[];
    const idx = Array.from({ length: vals.length }, (_, k) => k);
    const dir = opts.reverse ? -1 : 1;
    idx.sort((a, b) => {
      const x = vals[a], y = vals[b];
      if (x === y) return a - b;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return ((x as number) < (y as number) ? -1 : (x as number) > (y as number) ? 1 : 0) * dir || a - b;
    });
    return this.select(idx);
  }

  /** Distinct values of a column, in first-seen order. */
  unique<K extends keyof R & string>(column: K): R[K][] {
    return [...new Set(this.column(column))];
  }

  /** Materialize the indices mapping into a new table (datasets' flatten_indices). */
  flattenIndices(): Dataset<R> {
    return this.derive(this._view.flatten());
  }

  // ---- columns ------------------------------------------------------------------------------------------

  selectColumns<K extends keyof R & string>(names: K | readonly K[]): Dataset<Pick<R, K>> {
    const list = typeof names === 'string' ? [names] : [...names];
    return this.derive(this._view.selectColumns(list.map((n) => this._view.columnIndex(n, 'Column to select'))));
  }

  removeColumns<K extends keyof R & string>(names: K | readonly K[]): Dataset<Omit<R, K>> {
    const list: string[] = typeof names === 'string' ? [names] : [...names];
    for (const n of list) this._view.columnIndex(n, 'Column to remove');
    const keep = this.columnNames.map((_, c) => c).filter((c) => !list.includes(this.columnNames[c]!));
    return this.derive(this._view.selectColumns(keep));
  }

  renameColumn<K extends keyof R & string, N extends string>(original: K, renamed: N): Dataset<Omit<R, K> & { [P in N]: R[K] }> {
    return this.renameColumns({ [original]: renamed } as Record<string, string>) as unknown as Dataset<Omit<R, K> & { [P in N]: R[K] }>;
  }

  renameColumns(mapping: Record<string, string>): Dataset<Row> {
    const names = this.columnNames;
    for (const [a, b] of Object.entries(mapping)) {
      this._view.columnIndex(a, 'Column to rename');
      if (names.includes(b) && !(b in mapping)) {
        throw new TsFinetuneError('SCHEMA_MISMATCH', `Cannot rename '${a}' to '${b}': the dataset already has a column '${b}'`, { column: b });
      }
    }
    const schema = this._view.table.schema;
    const fields = schema.fields.map((f) => new Field(mapping[f.name] ?? f.name, f.type, f.nullable, f.metadata));
    const newSchema = new Schema(fields);
    const batches = this._view.table.batches.map(
      (b) => new RecordBatch(newSchema, makeData({ type: new Struct(fields), length: b.numRows, nullCount: 0, children: b.data.children })),
    );
    return this.derive(new TableView(new Table(newSchema, batches), this._view.indices));
  }

  /** Append a column (one value per row, in row order). */
  addColumn<N extends string, V>(name: N, values: ArrayLike<V>): Dataset<R & { [P in N]: V }> {
    if (this.columnNames.includes(name)) {
      throw new TsFinetuneError('SCHEMA_MISMATCH', `Column '${name}' already exists: remove it first or use map to replace it`, { column: name });
    }
    if (values.length !== this.numRows) {
      throw new TsFinetuneError('SCHEMA_MISMATCH', `addColumn('${name}'): ${values.length} values for ${this.numRows} rows`, { column: name });
    }
    const view = this._view.indices ? new TableView(this._view.flatten()) : this._view;
    const names = view.columnNames;
    if (view.numRows === 0) {
      const schema = new Schema([...view.table.schema.fields, new Field(name, new Null(), true)]);
      return this.derive(new Table(schema));
    }
    const b = new TableBuilder();
    for (const w of view.windows(10_000)) {
      const cols: [string, ChunkColumn][] = names.map((n, c) => [n, { data: view.columnData(c, w) }]);
      cols.push([name, { values: Array.prototype.slice.call(values, w.start, w.end) }]);
      b.addChunk(cols, w.end - w.start);
    }
    return this.derive(b.finish([...names, name]));
  }

  // ---- map / filter -------------------------------------------------------------------------------------

  /**
   * Apply `fn` to every row (or batch, with `batched: true`) and merge its output into the row:
   * returned keys add or replace columns, `removeColumns` drops input columns first. The row index
   * (or the batch's indices) is passed as the second argument. Sync functions return a Dataset;
   * async ones a Promise of it. A throwing function fails with MAP_FUNCTION_FAILED naming the row.
   * @example
   * const withLen = train.map((s) => ({ length: s.output.length }));
   * const tokenized = train.map((b) => tokenizer(b.text, { truncation: true, maxLength: 512 }), { batched: true, batchSize: 1000 });
   */
  map<O extends object>(fn: (batch: Batch<R>, indices: number[]) => Promise<O>, opts: MapOptions & { batched: true }): Promise<Dataset<Merge<R, Unbatched<O>>>>;
  map<O extends object>(fn: (batch: Batch<R>, indices: number[]) => O, opts: MapOptions & { batched: true }): Dataset<Merge<R, Unbatched<O>>>;
  map<O extends object>(fn: (row: R, index: number) => Promise<O | void>, opts?: MapOptions & { batched?: false }): Promise<Dataset<Merge<R, O>>>;
  map<O extends object>(fn: (row: R, index: number) => O | void, opts?: MapOptions & { batched?: false }): Dataset<Merge<R, O>>;
  map(fn: (a: never, b: never) => unknown, opts: MapOptions = {}): unknown {
    const result = drive(mapSteps(this._view, fn as (a: unknown, b?: unknown) => unknown, opts));
    if (result instanceof Promise) return result.then((t) => this.derive<Row>(t));
    const ds = this.derive<Row>(result);
    return isAsyncFunction(fn) ? Promise.resolve(ds) : ds;
  }

  /**
   * Keep the rows for which `fn` is truthy (batched: returns one boolean per row).
   * @example
   * const short = train.filter((s) => s.output.length <= 50);
   */
  filter(fn: (batch: Batch<R>, indices: number[]) => Promise<ArrayLike<boolean>>, opts: FilterOptions & { batched: true }): Promise<Dataset<R>>;
  filter(fn: (batch: Batch<R>, indices: number[]) => ArrayLike<boolean>, opts: FilterOptions & { batched: true }): Dataset<R>;
  filter(fn: (row: R, index: number) => Promise<unknown>, opts?: FilterOptions & { batched?: false }): Promise<Dataset<R>>;
  filter(fn: (row: R, index: number) => unknown, opts?: FilterOptions & { batched?: false }): Dataset<R>;
  filter(fn: (a: never, b: never) => unknown, opts: FilterOptions = {}): Dataset<R> | Promise<Dataset<R>> {
    const result = drive(filterSteps(this._view, fn as (a: unknown, b?: unknown) => unknown, opts));
    if (result instanceof Promise) return result.then((idx) => this.derive<R>(this._view.select(idx)));
    const ds = this.derive<R>(this._view.select(result));
    return isAsyncFunction(fn) ? Promise.resolve(ds) : ds;
  }

  // ---- export -------------------------------------------------------------------------------------------

  /** Write a parquet file (snappy by default; row groups of 10k rows). */
  async toParquet(file: string, opts: ToParquetOptions = {}): Promise<void> {
    await writeParquet(this._view, file, opts);
  }

  /** Write JSON Lines, one object per row (datasets' `to_json` default, lines=True). */
  async toJsonl(file: string): Promise<void> {
    const dir = path.dirname(path.resolve(file));
    await fsp.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
    const out = createWriteStream(tmp);
    const closed = new Promise<void>((res, rej) => {
      out.on('finish', res);
      out.on('error', rej);
    });
    try {
      for (const w of this._view.windows(1000)) {
        const rows = this._view.rows(w.start, w.end);
        let text = '';
        for (const r of rows) text += `${JSON.stringify(r, jsonReplacer)}\n`;
        if (!out.write(text)) await new Promise<void>((res) => out.once('drain', () => res()));
      }
      out.end();
      await closed;
      await fsp.rename(tmp, file);
    } catch (e) {
      out.destroy();
      await fsp.rm(tmp, { force: true });
      throw e;
    }
  }

  /** Same as toJsonl (datasets' to_json writes JSON Lines by default). */
  async toJson(file: string): Promise<void> {
    await this.toJsonl(file);
  }

  /**
   * A save_to_disk folder (Arrow IPC stream + dataset_info.json + state.json), written atomically.
   * @example
   * await train.saveToDisk('out/ds'); const again = await Dataset.loadFromDisk('out/ds');
   */
  async saveToDisk(dir: string): Promise<void> {
    await saveDataset(dir, this._view, this.info, this.split);
  }

  toString(): string {
    return `Dataset({\n    features: [${this.columnNames.map((c) => `'${c}'`).join(', ')}],\n    num_rows: ${this.numRows}\n})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

registerDatasetLoader((dir) => Dataset.loadFromDisk(dir));

function jsonReplacer(_k: string, v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  return v;
}

/**
 * Stack datasets row-wise (same columns, any order; datasets' `concatenate_datasets`, axis 0).
 * @example
 * const both = concatenateDatasets([tr, test]);
 */
export function concatenateDatasets<R extends object = Row>(datasets: readonly Dataset<R>[], opts: DatasetOptions = {}): Dataset<R> {
  if (datasets.length === 0) throw new TsFinetuneError('INVALID_ARGUMENT', 'concatenateDatasets needs at least one dataset');
  const table = concatTables(datasets.map((d) => d._view.flatten()));
  return new Dataset<R>(table, { info: opts.info ?? datasets[0]!.info, split: opts.split ?? null });
}

export { columnNotFound };
