// DatasetDict: split name → Dataset, as datasets' `DatasetDict` (dataset_dict.py). Splits are own
// properties, so `const { train, test } = ds.trainTestSplit(...)` and `all.train` work; the methods
// apply to every split and return a new DatasetDict. saveToDisk writes dataset_dict.json plus one
// save_to_disk folder per split, atomically.
// Not here: the per-split logic (dataset.ts).

import { inspect } from 'node:util';
import { TsFinetuneError } from '../core/index.js';
import type { Dataset, ShuffleOptions } from './dataset.js';
import type { FilterOptions, MapOptions } from './dataset-map.js';
import { loadDatasetDictSplits, saveDatasetDict } from './disk.js';
import type { Row } from './types.js';
import * as path from 'node:path';

type AnyFn = (a: never, b: never) => unknown;
type DatasetLoader = (dir: string) => Promise<Dataset<Row>>;

let loader: DatasetLoader | undefined;
/** dataset.ts registers Dataset.loadFromDisk here (keeps the import graph acyclic at load time). */
export function registerDatasetLoader(fn: DatasetLoader): void {
  loader = fn;
}

class DatasetDictBase<R extends object = Row> {
  constructor(splits: Record<string, Dataset<R>> = {}) {
    for (const [name, ds] of Object.entries(splits)) {
      if (name in DatasetDictBase.prototype) {
        throw new TsFinetuneError('INVALID_ARGUMENT', `A split cannot be named '${name}' (it is a DatasetDict method)`, { split: name });
      }
      Object.defineProperty(this, name, { value: ds, enumerable: true, writable: false, configurable: false });
    }
  }

  private entriesOf(): [string, Dataset<R>][] {
    return Object.entries(this) as [string, Dataset<R>][];
  }

  /** Split names in order. */
  keys(): string[] {
    return Object.keys(this);
  }

  values(): Dataset<R>[] {
    return this.entriesOf().map(([, d]) => d);
  }

  entries(): [string, Dataset<R>][] {
    return this.entriesOf();
  }

  /** The split, or an error listing the ones there are. */
  get(split: string): Dataset<R> {
    const d = (this as unknown as Record<string, Dataset<R>>)[split];
    if (!Object.prototype.hasOwnProperty.call(this, split) || !d) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `Unknown split '${split}'; available: ${this.keys().join(', ') || '(none)'}`, { split, splits: this.keys() });
    }
    return d;
  }

  get numRows(): Record<string, number> {
    return Object.fromEntries(this.entriesOf().map(([k, d]) => [k, d.numRows]));
  }

  get columnNames(): Record<string, string[]> {
    return Object.fromEntries(this.entriesOf().map(([k, d]) => [k, d.columnNames]));
  }

  private each<T extends object>(f: (d: Dataset<R>, split: string) => Dataset<T>): DatasetDict<T> {
    return new DatasetDictBase<T>(Object.fromEntries(this.entriesOf().map(([k, d]) => [k, f(d, k)]))) as DatasetDict<T>;
  }

  map(fn: AnyFn, opts?: MapOptions): DatasetDict<Row> | Promise<DatasetDict<Row>> {
    const outs = this.entriesOf().map(([k, d]) => [k, (d.map as (f: AnyFn, o?: MapOptions) => Dataset<Row> | Promise<Dataset<Row>>)(fn, opts)] as const);
    if (outs.some(([, r]) => r instanceof Promise)) {
      return (async () => {
        const done: [string, Dataset<Row>][] = [];
        for (const [k, r] of outs) done.push([k, await r]);
        return new DatasetDictBase<Row>(Object.fromEntries(done)) as DatasetDict<Row>;
      })();
    }
    return new DatasetDictBase<Row>(Object.fromEntries(outs as unknown as [string, Dataset<Row>][])) as DatasetDict<Row>;
  }

  filter(fn: AnyFn, opts?: FilterOptions): DatasetDict<R> | Promise<DatasetDict<R>> {
    const outs = this.entriesOf().map(([k, d]) => [k, (d.filter as (f: AnyFn, o?: FilterOptions) => Dataset<R> | Promise<Dataset<R>>)(fn, opts)] as const);
    if (outs.some(([, r]) => r instanceof Promise)) {
      return (async () => {
        const done: [string, Dataset<R>][] = [];
        for (const [k, r] of outs) done.push([k, await r]);
        return new DatasetDictBase<R>(Object.fromEntries(done)) as DatasetDict<R>;
      })();
    }
    return new DatasetDictBase<R>(Object.fromEntries(outs as unknown as [string, Dataset<R>][])) as DatasetDict<R>;
  }

  /** Shuffle every split; with a seed, each split uses that same seed (as datasets does). */
  shuffle(opts: ShuffleOptions | number = {}): DatasetDict<R> {
    return this.each((d) => d.shuffle(opts));
  }

  removeColumns(names: string | readonly string[]): DatasetDict<Row> {
    return this.each((d) => (d.removeColumns as (n: string | readonly string[]) => Dataset<Row>)(names));
  }

  selectColumns(names: string | readonly string[]): DatasetDict<Row> {
    return this.each((d) => (d.selectColumns as (n: string | readonly string[]) => Dataset<Row>)(names));
  }

  renameColumn(original: string, renamed: string): DatasetDict<Row> {
    return this.each((d) => d.renameColumns({ [original]: renamed }));
  }

  flattenIndices(): DatasetDict<R> {
    return this.each((d) => d.flattenIndices());
  }

  async saveToDisk(dir: string): Promise<void> {
    await saveDatasetDict(dir, this.entriesOf().map(([k, d]) => [k, { view: d._view, info: d.info }]));
  }

  static async loadFromDisk<T extends object = Row>(dir: string): Promise<DatasetDict<T>> {
    if (!loader) throw new TsFinetuneError('DATASET_ERROR', 'Dataset loader not registered (import from the package root)');
    const splits = await loadDatasetDictSplits(dir);
    const out: Record<string, Dataset<T>> = {};
    for (const s of splits) out[s] = (await loader(path.join(dir, s))) as unknown as Dataset<T>;
    return new DatasetDictBase<T>(out) as DatasetDict<T>;
  }

  toString(): string {
    const parts = this.entriesOf().map(([k, d]) => `    ${k}: ${d.toString().replace(/\n/g, '\n    ')}`);
    return `DatasetDict({\n${parts.join('\n')}\n})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/**
 * Split name → Dataset, with DatasetDict's methods.
 * @example
 * const all = await loadDataset('jtatman/python-code-dataset-500k'); // DatasetDict
 * const lens = all.map((s) => ({ length: s.output.length }));
 * console.log(all.keys(), all.numRows, all.train?.numRows);
 */
export type DatasetDict<R extends object = Row> = DatasetDictBase<R> & { readonly [split: string]: Dataset<R> };

export const DatasetDict = DatasetDictBase as unknown as {
  new <R extends object = Row>(splits?: Record<string, Dataset<R>>): DatasetDict<R>;
  loadFromDisk<T extends object = Row>(dir: string): Promise<DatasetDict<T>>;
  prototype: DatasetDictBase;
};
