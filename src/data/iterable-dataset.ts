// IterableDataset: what `loadDataset(…, { streaming: true })` returns, as datasets' IterableDataset
// (iterable_dataset.py). Nothing is read until iteration; files are opened one after another and
// parquet row groups are decoded only when the iteration reaches them, so `take(10)` reads one group.
// map / filter / take / skip / shuffle / column edits are lazy steps applied while iterating.
// shuffle({ seed, bufferSize }) is datasets' buffer shuffle (fill a buffer, emit a random slot, refill it)
// plus a seeded permutation of the file order; setEpoch(n) reshuffles differently per epoch, deterministically.
// Not here: the in-memory Dataset (dataset.ts) or finding files (load-dataset.ts).

import { inspect } from 'node:util';
import { Rng, TsFinetuneError } from '../core/index.js';
import { describeValue } from './arrow-build.js';
import type { RowChunk } from './row-sources.js';
import type { Batch, Row } from './types.js';

/** One source of rows (usually one file), opened lazily. */
export type Shard = () => AsyncIterable<RowChunk>;

type Step = (rows: AsyncIterable<Row>, ctx: { epoch: number }) => AsyncIterable<Row>;

interface ShuffleConfig {
  seed: number;
  bufferSize: number;
}

export interface IterableMapOptions {
  batched?: boolean;
  batchSize?: number;
  removeColumns?: string | readonly string[];
}

async function* fromShards(shards: readonly Shard[], order: readonly number[]): AsyncGenerator<Row> {
  for (const k of order) for await (const chunk of shards[k]!()) yield* chunk.rows;
}

function rngFor(seed: number, epoch: number, label: string): Rng {
  const r = new Rng(seed);
  return epoch === 0 && label === 'buffer' ? r : r.fork(`${label}-epoch-${epoch}`);
}

function failure(kind: string, where: string, e: unknown, details: Record<string, unknown>): TsFinetuneError {
  if (e instanceof TsFinetuneError && e.code === 'MAP_FUNCTION_FAILED') return e;
  return new TsFinetuneError('MAP_FUNCTION_FAILED', `The ${kind} function failed at ${where}: ${e instanceof Error ? e.message : String(e)}`, details, { cause: e });
}

/**
 * A dataset read on demand.
 * @example
 * const stream = await loadDataset('jtatman/python-code-dataset-500k', { split: 'train', streaming: true });
 * for await (const row of stream.shuffle({ seed: 42, bufferSize: 1000 }).take(5)) console.log(row.instruction);
 */
export class IterableDataset<R extends object = Row> implements AsyncIterable<R> {
  private epoch = 0;

  constructor(
    private readonly shards: readonly Shard[],
    private readonly steps: readonly Step[] = [],
    private readonly shuffleConfig?: ShuffleConfig,
    readonly split: string | null = null,
  ) {}

  private with<T extends object>(step: Step, shuffle = this.shuffleConfig): IterableDataset<T> {
    const d = new IterableDataset<T>(this.shards, [...this.steps, step], shuffle, this.split);
    d.epoch = this.epoch;
    return d;
  }

  /** Number of underlying files (datasets' num_shards). */
  get numShards(): number {
    return this.shards.length;
  }

  /** Use a different (deterministic) shuffle for this epoch. */
  setEpoch(epoch: number): void {
    this.epoch = epoch;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<R> {
    const order = this.shards.map((_, k) => k);
    if (this.shuffleConfig) rngFor(this.shuffleConfig.seed, this.epoch, 'shards').shuffle(order);
    let it: AsyncIterable<Row> = fromShards(this.shards, order);
    for (const s of this.steps) it = s(it, { epoch: this.epoch });
    yield* it as AsyncIterable<R>;
  }

  /** Lazily apply fn per row (or per batch with batched: true); output keys update the row. */
  map<O extends object>(fn: (row: R, index: number) => O | void | Promise<O | void>, opts?: IterableMapOptions & { batched?: false }): IterableDataset<Omit<R, keyof O> & O>;
  map<O extends object>(fn: (batch: Batch<R>, indices: number[]) => O | Promise<O>, opts: IterableMapOptions & { batched: true }): IterableDataset<Row>;
  map(fn: (a: never, b: never) => unknown, opts: IterableMapOptions = {}): IterableDataset<Row> {
    const f = fn as (a: unknown, b: unknown) => unknown;
    const remove = new Set(opts.removeColumns === undefined ? [] : typeof opts.removeColumns === 'string' ? [opts.removeColumns] : opts.removeColumns);
    const merge = (row: Row, out: unknown, at: string): Row => {
      if (out === undefined || out === null) out = {};
      if (typeof out !== 'object' || Array.isArray(out)) throw new TsFinetuneError('MAP_FUNCTION_FAILED', `The map function must return an object, got ${describeValue(out)} at ${at}`);
      const o: Row = {};
      for (const k in row) if (!remove.has(k)) o[k] = row[k];
      return Object.assign(o, out);
    };
    if (!opts.batched) {
      return this.with(async function* (rows) {
        let i = 0;
        for await (const row of rows) {
          let out: unknown;
          try {
            out = await f(row, i);
          } catch (e) {
            throw failure('map', `row ${i}`, e, { row: i });
          }
          yield merge(row, out, `row ${i}`);
          i++;
        }
      });
    }
    const bs = opts.batchSize ?? 1000;
    return this.with(async function* (rows) {
      let start = 0;
      for await (const group of groups(rows, bs)) {
        const batch = toBatch(group);
        const idx = group.map((_, k) => start + k);
        let out: unknown;
        try {
          out = await f(batch, idx);
        } catch (e) {
          throw failure('map', `the batch of rows ${start}–${start + group.length - 1}`, e, { rowStart: start });
        }
        const cols = Object.entries((out ?? {}) as Record<string, ArrayLike<unknown>>);
        const m = cols.length ? cols[0]![1].length : group.length;
        if (m !== group.length) {
          const kept = Object.keys(group[0] ?? {}).filter((k) => !remove.has(k) && !cols.some(([c]) => c === k));
          if (kept.length) {
            throw new TsFinetuneError('SCHEMA_MISMATCH', `The batched map function turned ${group.length} rows into ${m}: pass removeColumns: [${kept.map((c) => `'${c}'`).join(', ')}]`);
          }
        }
        for (let k = 0; k < m; k++) {
          const o: Row = {};
          if (m === group.length) for (const key in group[k]) if (!remove.has(key)) o[key] = group[k]![key];
          for (const [c, v] of cols) o[c] = v[k];
          yield o;
        }
        start += group.length;
      }
    });
  }

  filter(fn: (row: R, index: number) => unknown, opts?: { batched?: false }): IterableDataset<R>;
  filter(fn: (batch: Batch<R>, indices: number[]) => ArrayLike<boolean> | Promise<ArrayLike<boolean>>, opts: { batched: true; batchSize?: number }): IterableDataset<R>;
  filter(fn: (a: never, b: never) => unknown, opts: { batched?: boolean; batchSize?: number } = {}): IterableDataset<R> {
    const f = fn as (a: unknown, b: unknown) => unknown;
    if (!opts.batched) {
      return this.with(async function* (rows) {
        let i = 0;
        for await (const row of rows) {
          let keep: unknown;
          try {
            keep = await f(row, i);
          } catch (e) {
            throw failure('filter', `row ${i}`, e, { row: i });
          }
          if (keep) yield row;
          i++;
        }
      });
    }
    const bs = opts.batchSize ?? 1000;
    return this.with(async function* (rows) {
      let start = 0;
      for await (const group of groups(rows, bs)) {
        let mask: ArrayLike<unknown>;
        try {
          mask = (await f(toBatch(group), group.map((_, k) => start + k))) as ArrayLike<unknown>;
        } catch (e) {
          throw failure('filter', `the batch of rows ${start}–${start + group.length - 1}`, e, { rowStart: start });
        }
        for (let k = 0; k < group.length; k++) if (mask[k]) yield group[k]!;
        start += group.length;
      }
    });
  }

  take(n: number): IterableDataset<R> {
    return this.with(async function* (rows) {
      if (n <= 0) return;
      let i = 0;
      for await (const row of rows) {
        yield row;
        if (++i >= n) return;
      }
    });
  }

  skip(n: number): IterableDataset<R> {
    return this.with(async function* (rows) {
      let i = 0;
      for await (const row of rows) if (i++ >= n) yield row;
    });
  }

  /** Buffer shuffle (bufferSize rows, default 1000) plus a seeded permutation of the file order. */
  shuffle(opts: { seed?: number; bufferSize?: number } = {}): IterableDataset<R> {
    const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 32);
    const size = opts.bufferSize ?? 1000;
    if (!Number.isInteger(size) || size < 1) throw new TsFinetuneError('INVALID_ARGUMENT', `bufferSize must be a positive integer, got ${size}`);
    const step: Step = async function* (rows, ctx) {
      const rng = rngFor(seed, ctx.epoch, 'buffer');
      const buf: Row[] = [];
      for await (const row of rows) {
        if (buf.length === size) {
          const i = rng.randint(size);
          yield buf[i]!;
          buf[i] = row;
        } else buf.push(row);
      }
      rng.shuffle(buf);
      yield* buf;
    };
    return this.with(step, this.shuffleConfig ?? { seed, bufferSize: size });
  }

  removeColumns(names: string | readonly string[]): IterableDataset<Row> {
    const drop = new Set(typeof names === 'string' ? [names] : names);
    return this.with(async function* (rows) {
      for await (const row of rows) {
        const o: Row = {};
        for (const k in row) if (!drop.has(k)) o[k] = row[k];
        yield o;
      }
    });
  }

  selectColumns(names: string | readonly string[]): IterableDataset<Row> {
    const keep = typeof names === 'string' ? [names] : [...names];
    return this.with(async function* (rows) {
      for await (const row of rows) {
        const o: Row = {};
        for (const k of keep) {
          if (!(k in row)) throw new TsFinetuneError('COLUMN_NOT_FOUND', `Column '${k}' not in the dataset, which has columns: ${Object.keys(row).join(', ')}`, { column: k });
          o[k] = row[k];
        }
        yield o;
      }
    });
  }

  renameColumn(original: string, renamed: string): IterableDataset<Row> {
    return this.with(async function* (rows) {
      for await (const row of rows) {
        if (!(original in row)) throw new TsFinetuneError('COLUMN_NOT_FOUND', `Column '${original}' not in the dataset, which has columns: ${Object.keys(row).join(', ')}`, { column: original });
        const o: Row = {};
        for (const k in row) o[k === original ? renamed : k] = row[k];
        yield o;
      }
    });
  }

  /** Batches of column → values (datasets' `iter(batch_size)`). */
  async *iter(opts: { batchSize?: number; dropLastBatch?: boolean } = {}): AsyncGenerator<Batch<R>> {
    const bs = opts.batchSize ?? 1000;
    for await (const group of groups(this as AsyncIterable<Row>, bs)) {
      if (opts.dropLastBatch && group.length < bs) return;
      yield toBatch(group) as Batch<R>;
    }
  }

  /** Read everything into an array (only for small datasets). */
  async toList(): Promise<R[]> {
    const out: R[] = [];
    for await (const r of this) out.push(r);
    return out;
  }

  toString(): string {
    return `IterableDataset({\n    num_shards: ${this.numShards}\n})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

async function* groups(rows: AsyncIterable<Row>, n: number): AsyncGenerator<Row[]> {
  let g: Row[] = [];
  for await (const r of rows) {
    g.push(r);
    if (g.length >= n) {
      yield g;
      g = [];
    }
  }
  if (g.length) yield g;
}

function toBatch(group: readonly Row[]): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  group.forEach((r, i) => {
    for (const k in r) (out[k] ??= new Array(group.length).fill(null))[i] = r[k];
  });
  return out;
}

class IterableDatasetDictBase {
  constructor(splits: Record<string, IterableDataset> = {}) {
    for (const [k, v] of Object.entries(splits)) {
      if (k in IterableDatasetDictBase.prototype) throw new TsFinetuneError('INVALID_ARGUMENT', `A split cannot be named '${k}'`, { split: k });
      Object.defineProperty(this, k, { value: v, enumerable: true });
    }
  }

  keys(): string[] {
    return Object.keys(this);
  }

  get(split: string): IterableDataset {
    const d = (this as unknown as Record<string, IterableDataset>)[split];
    if (!Object.prototype.hasOwnProperty.call(this, split) || !d) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `Unknown split '${split}'; available: ${this.keys().join(', ')}`, { split });
    }
    return d;
  }
}

/** Split name → IterableDataset (datasets' IterableDatasetDict). */
export type IterableDatasetDict = IterableDatasetDictBase & { readonly [split: string]: IterableDataset };
export const IterableDatasetDict = IterableDatasetDictBase as unknown as new (splits?: Record<string, IterableDataset>) => IterableDatasetDict;
