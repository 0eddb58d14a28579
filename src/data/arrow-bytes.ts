// Byte columns (Utf8, LargeUtf8, Binary, LargeBinary) and the low-level pieces every column builder shares:
// the builder interface, the cell error, buffer growth and the validity bitmap.
// Two ways to build a byte chunk, chosen by what the caller has:
// - `buildBytesData`: all values at hand (a column of parquet values hyparquet decoded, a batch of map
//   output, fromList rows): the UTF-8 size is measured first (Buffer.byteLength), so the data buffer is
//   allocated once at its exact size and strings are encoded straight into it — no growth steps left
//   behind in malloc's heap, no slack, no final copy.
// - `BytesBuilder`: values arrive one at a time (row-by-row map, nested children): a growing buffer reused
//   from one chunk to the next (up to 2× the largest chunk), copied out at its exact size when a chunk is
//   finished. A resizable-ArrayBuffer variant was measured and dropped (see docs/data.md).
// Not here: the other column types and the dispatch on type (arrow-build.ts).

import { Data, DataType, makeData, Type } from 'apache-arrow';
import { typeName } from './arrow-types.js';

/** A value that does not fit the column type; the caller adds the column name and row. */
export class CellTypeError extends Error {
  constructor(
    readonly expected: string,
    readonly got: unknown,
  ) {
    super(`expected ${expected}, got ${describeValue(got)}`);
  }
}

export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (Array.isArray(v)) return `array of ${v.length}`;
  if (typeof v === 'object') return v.constructor?.name === 'Object' ? 'object' : (v.constructor?.name ?? 'object');
  return `${typeof v} ${String(v)}`;
}

export interface ColumnBuilder {
  readonly type: DataType;
  readonly length: number;
  /** Approximate bytes held, so callers can cut chunks before 32-bit offsets overflow. */
  readonly byteSize: number;
  append(v: unknown): void;
  /** The chunk built so far; the builder starts over empty. */
  finish(): Data;
}

export type GrowableArray = Uint8Array | Int32Array | BigInt64Array | Float64Array | Float32Array | Int8Array | Int16Array | Uint16Array | Uint32Array;

/** `arr`, or a copy at least twice as large when `needed` elements do not fit. */
export function grown<T extends GrowableArray>(arr: T, needed: number): T {
  if (needed <= arr.length) return arr;
  const ctor = arr.constructor as new (n: number) => T;
  const next = new ctor(Math.max(needed, arr.length * 2, 16));
  next.set(arr as never);
  return next;
}

export class Validity {
  bits = new Uint8Array(16);
  nullCount = 0;
  length = 0;
  push(valid: boolean): void {
    const i = this.length++;
    this.bits = grown(this.bits, (i >> 3) + 1);
    if (valid) this.bits[i >> 3]! |= 1 << (i & 7);
    else this.nullCount++;
  }
  take(): { nullCount: number; nullBitmap: Uint8Array | undefined } {
    const out = { nullCount: this.nullCount, nullBitmap: this.nullCount ? this.bits.slice(0, (this.length + 7) >> 3) : undefined };
    this.bits.fill(0, 0, (this.length + 7) >> 3);
    this.nullCount = 0;
    this.length = 0;
    return out;
  }
}

export function isBytesType(type: DataType): boolean {
  const id = type.typeId;
  return id === Type.Utf8 || id === Type.LargeUtf8 || id === Type.Binary || id === Type.LargeBinary;
}

const isLarge = (type: DataType): boolean => type.typeId === Type.LargeUtf8 || type.typeId === Type.LargeBinary;
const encoder = new TextEncoder();

function cellError(type: DataType, v: unknown, index: number): CellTypeError {
  return Object.assign(new CellTypeError(typeName(type), v), { index });
}

/**
 * One chunk of a byte column from values given all at once (strings, Uint8Arrays, null/undefined), in
 * exactly-sized buffers. Strings are accepted in binary columns (as their UTF-8), like pyarrow does.
 * Throws CellTypeError with the offending position in `index`.
 */
export function buildBytesData(type: DataType, values: ArrayLike<unknown>): Data {
  const n = values.length;
  const large = isLarge(type);
  let total = 0;
  let nullCount = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (typeof v === 'string') total += v.length < 64 && isAscii(v) ? v.length : Buffer.byteLength(v, 'utf8');
    else if (v instanceof Uint8Array) total += v.length;
    else if (v === null || v === undefined) nullCount++;
    else throw cellError(type, v, i);
  }
  if (!large && total > 0x7fffffff) throw new CellTypeError('a string chunk under 2 GiB (use large_string)', `${total} bytes`);
  const data = new Uint8Array(total);
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const offsets32 = large ? undefined : new Int32Array(n + 1);
  const offsets64 = large ? new BigInt64Array(n + 1) : undefined;
  const nullBitmap = nullCount ? new Uint8Array((n + 7) >> 3) : undefined;
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (typeof v === 'string') {
      pos += v.length < 64 && isAscii(v) ? writeAscii(data, pos, v) : buf.write(v, pos, 'utf8');
    } else if (v instanceof Uint8Array) {
      data.set(v, pos);
      pos += v.length;
    }
    if (nullBitmap && v !== null && v !== undefined) nullBitmap[i >> 3]! |= 1 << (i & 7);
    if (offsets32) offsets32[i + 1] = pos;
    else offsets64![i + 1] = BigInt(pos);
  }
  if (pos !== total) throw new Error(`internal: measured ${total} UTF-8 bytes but wrote ${pos}`);
  return makeData({ type, length: n, nullCount, nullBitmap, valueOffsets: offsets32 ?? offsets64, data } as never);
}

/** Values appended one at a time into a growing buffer that is kept from one chunk to the next. */
export class BytesBuilder implements ColumnBuilder {
  private v = new Validity();
  private bytes = new Uint8Array(1024);
  private pos = 0;
  private offsets: Int32Array | BigInt64Array;
  private readonly large: boolean;
  constructor(readonly type: DataType) {
    this.large = isLarge(type);
    this.offsets = this.large ? new BigInt64Array(16) : new Int32Array(16);
  }
  get length(): number {
    return this.v.length;
  }
  get byteSize(): number {
    return this.pos + this.v.length * (this.large ? 8 : 4);
  }
  append(x: unknown): void {
    if (x === null || x === undefined) {
      this.v.push(false);
    } else if (typeof x === 'string') {
      this.bytes = grown(this.bytes, this.pos + x.length * 3);
      this.pos += x.length < 64 && isAscii(x) ? writeAscii(this.bytes, this.pos, x) : encoder.encodeInto(x, this.bytes.subarray(this.pos)).written;
      this.v.push(true);
    } else if (x instanceof Uint8Array) {
      this.bytes = grown(this.bytes, this.pos + x.length);
      this.bytes.set(x, this.pos);
      this.pos += x.length;
      this.v.push(true);
    } else {
      throw new CellTypeError(typeName(this.type), x);
    }
    const n = this.v.length;
    if (!this.large && this.pos > 0x7fffffff) {
      throw new CellTypeError('a string chunk under 2 GiB (use large_string)', x);
    }
    if (this.large) {
      this.offsets = grown(this.offsets as BigInt64Array, n + 1);
      (this.offsets as BigInt64Array)[n] = BigInt(this.pos);
    } else {
      this.offsets = grown(this.offsets as Int32Array, n + 1);
      (this.offsets as Int32Array)[n] = this.pos;
    }
  }
  finish(): Data {
    const length = this.v.length;
    const { nullCount, nullBitmap } = this.v.take();
    const valueOffsets = this.offsets.slice(0, length + 1);
    const data = this.bytes.slice(0, this.pos);
    this.pos = 0;
    return makeData({ type: this.type, length, nullCount, nullBitmap, valueOffsets, data } as never);
  }
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}

function writeAscii(buf: Uint8Array, pos: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[pos + i] = s.charCodeAt(i);
  return s.length;
}
