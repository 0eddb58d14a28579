// The output columns of a row-by-row `map`, built while the rows go by. Each value the user's function
// returns is appended to an Arrow builder at once, so the row, its decoded strings and the returned object
// are garbage as soon as the next row starts: they die in V8's young generation instead of a whole
// window of them (10k rows, ~10 MB of strings on the walkthrough's data) surviving into old space until
// the window is converted. Measured on bench/datasets.ts: ~100 MB less heap at the peak, and faster.
// Types are inferred and widened on the fly with the rules of table-builder.ts (null → anything,
// int64 → float64, structs gain fields; a real disagreement names both rows). A widening rebuilds only
// the current chunk, from its own Arrow data; across chunks the TableBuilder conforms older chunks.
// Not here: the map loop itself (dataset-map.ts), batched maps (whole columns → table-builder.ts).

import { Data, DataType, Null, Type } from 'apache-arrow';
import { TsFinetuneError } from '../core/index.js';
import { CellTypeError, makeColumnBuilder, type ColumnBuilder } from './arrow-build.js';
import { makeReader } from './arrow-read.js';
import { inferValueType, TypeDisagreement, typesEqual, unifyTypes } from './arrow-types.js';
import { conforms, disagreement } from './table-builder.js';

/** One output column: a builder whose type follows the values appended so far. */
export class ColumnStream {
  private type: DataType = new Null();
  /** Absolute row of the first non-null value (named in disagreement errors). */
  private typeRow = -1;
  private builder: ColumnBuilder;

  constructor(readonly name: string) {
    this.builder = makeColumnBuilder(this.type);
  }

  get length(): number {
    return this.builder.length;
  }

  /** Append the value of absolute row `row`. */
  append(v: unknown, row: number): void {
    if (!conforms(this.type, v)) this.widenFor(v, row);
    try {
      this.builder.append(v);
    } catch (e) {
      if (e instanceof CellTypeError) throw new TsFinetuneError('SCHEMA_MISMATCH', `Column '${this.name}' at row ${row}: ${e.message}`, { column: this.name, row });
      throw e;
    }
  }

  /** The chunk appended since the last finish; the type carries over to the next chunk. */
  finish(): Data {
    return this.builder.finish();
  }

  private widenFor(v: unknown, row: number): void {
    let vt: DataType;
    try {
      vt = inferValueType(v);
    } catch (e) {
      if (e instanceof TypeDisagreement) throw new TsFinetuneError('SCHEMA_MISMATCH', `Column '${this.name}' at row ${row}: ${e.message}`, { column: this.name, row });
      throw e;
    }
    const u = unifyTypes(this.type, vt);
    if (!u) throw disagreement(this.name, this.type, this.typeRow, vt, row);
    // Types the cheap check does not cover (binary, dates, typed arrays) land here on every row: no rebuild.
    if (typesEqual(u, this.type)) return;
    if (this.type.typeId === Type.Null) this.typeRow = row;
    const sofar = this.builder.finish();
    this.builder = makeColumnBuilder(u);
    this.type = u;
    if (sofar.length === 0) return;
    const read = makeReader(sofar);
    for (let i = 0; i < sofar.length; i++) this.builder.append(read(i));
  }
}

/**
 * The columns one window of rows returns, in first-seen order. A column that first appears after the
 * window's first row is backfilled for the rows before it: with the input's value when the key is an
 * input column that is kept (the row passed through unchanged), else null.
 */
export class WindowColumns {
  readonly streams: ColumnStream[] = [];
  private readonly active = new Set<string>();

  constructor(
    private readonly all: Map<string, ColumnStream>,
    private readonly start: number,
    /** Input value of `key` at absolute rows [s, e), or undefined when `key` is not a kept input column. */
    private readonly inputValues: (key: string, s: number, e: number) => readonly unknown[] | undefined,
  ) {}

  get names(): string[] {
    return this.streams.map((s) => s.name);
  }

  has(name: string): boolean {
    return this.active.has(name);
  }

  /** Append row `row`'s output `out`; `fallback(key)` is the value of a column the row did not return. */
  append(out: Record<string, unknown>, row: number, fallback: (key: string) => unknown): void {
    const streams = this.streams;
    for (let c = 0; c < streams.length; c++) {
      const s = streams[c]!;
      const v = out[s.name];
      s.append(v !== undefined ? v : fallback(s.name), row);
    }
    for (const key in out) {
      const v = out[key];
      if (v === undefined || this.active.has(key)) continue;
      this.open(key, row).append(v, row);
    }
  }

  private open(key: string, row: number): ColumnStream {
    let s = this.all.get(key);
    if (!s) {
      s = new ColumnStream(key);
      this.all.set(key, s);
    }
    if (row > this.start) {
      const before = this.inputValues(key, this.start, row);
      for (let r = this.start; r < row; r++) s.append(before ? before[r - this.start] : null, r);
    }
    this.active.add(key);
    this.streams.push(s);
    return s;
  }
}
