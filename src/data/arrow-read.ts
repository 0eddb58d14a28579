// Arrow `Data` chunk → plain JS values: strings, numbers (int64 as number when exact), booleans, arrays,
// objects, Dates, Uint8Arrays. One reader closure per chunk, so a row read does no type dispatch.
// Also `gatherData`: copy chosen rows of chunks into a new chunk (what an indices mapping is flattened with),
// byte-for-byte for strings and fixed-width types, through JS values for nested ones.
// Not here: building chunks from JS values (arrow-build.ts).

import { Data, DataType, makeData, makeVector, Type, type Int64, type Float64, type Struct, type TimestampMillisecond, type DateDay } from 'apache-arrow';
import { f16BitsToF32 } from '../core/index.js';
import type { Value } from './types.js';
import { buildData } from './arrow-build.js';

export type Reader = (i: number) => Value;

function validity(data: Data): ((i: number) => boolean) | undefined {
  if (data.typeId === Type.Null) return () => false;
  const bitmap = data.nullBitmap;
  if (data.nullCount === 0 || !bitmap || bitmap.length === 0) return undefined;
  const off = data.offset;
  return (i) => ((bitmap[(off + i) >> 3]! >> ((off + i) & 7)) & 1) === 1;
}

const toNumber = (b: bigint): number | bigint => (b <= 9007199254740991n && b >= -9007199254740991n ? Number(b) : b);

/** A reader for row i (0-based within the chunk) of `data`. */
export function makeReader(data: Data): Reader {
  const valid = validity(data);
  const inner = valueReader(data);
  if (!valid) return inner;
  return (i) => (valid(i) ? inner(i) : null);
}

function valueReader(data: Data): Reader {
  const t = data.type as DataType;
  switch (t.typeId) {
    case Type.Null:
      return () => null;
    case Type.Bool: {
      const bits = data.values as Uint8Array;
      const off = data.offset;
      return (i) => ((bits[(off + i) >> 3]! >> ((off + i) & 7)) & 1) === 1;
    }
    case Type.Int: {
      const v = data.values as ArrayLike<number | bigint>;
      if ((t as Int64).bitWidth === 64) return (i) => toNumber(v[i] as bigint);
      return (i) => v[i] as number;
    }
    case Type.Float: {
      const v = data.values as ArrayLike<number>;
      if ((t as Float64).precision === 0) return (i) => f16BitsToF32(v[i]!);
      return (i) => v[i]!;
    }
    case Type.Utf8:
    case Type.LargeUtf8: {
      const bytes = data.values as Uint8Array;
      const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const offs = data.valueOffsets as ArrayLike<number | bigint>;
      if (t.typeId === Type.Utf8) return (i) => buf.toString('utf8', offs[i] as number, offs[i + 1] as number);
      return (i) => buf.toString('utf8', Number(offs[i]), Number(offs[i + 1]));
    }
    case Type.Binary:
    case Type.LargeBinary: {
      const bytes = data.values as Uint8Array;
      const offs = data.valueOffsets as ArrayLike<number | bigint>;
      return (i) => bytes.slice(Number(offs[i]), Number(offs[i + 1]));
    }
    case Type.List:
    case Type.LargeList: {
      const offs = data.valueOffsets as ArrayLike<number | bigint>;
      const child = data.children[0]!;
      const read = makeReader(child);
      return (i) => {
        const a = Number(offs[i]), b = Number(offs[i + 1]);
        const out = new Array<Value>(b - a);
        for (let k = a; k < b; k++) out[k - a] = read(k);
        return out;
      };
    }
    case Type.FixedSizeList: {
      const size = (t as unknown as { listSize: number }).listSize;
      const read = makeReader(data.children[0]!);
      return (i) => {
        const out = new Array<Value>(size);
        for (let k = 0; k < size; k++) out[k] = read(i * size + k);
        return out;
      };
    }
    case Type.Struct: {
      const names = (t as Struct).children.map((f) => f.name);
      const readers = data.children.map((c) => makeReader(c));
      return (i) => {
        const o: Record<string, Value> = {};
        for (let k = 0; k < names.length; k++) o[names[k]!] = readers[k]!(i);
        return o;
      };
    }
    case Type.Timestamp: {
      const v = data.values as BigInt64Array;
      const perMs = [1e-3, 1, 1e3, 1e6][(t as TimestampMillisecond).unit] ?? 1;
      return (i) => new Date(Number(v[i]!) / perMs);
    }
    case Type.Date: {
      const v = data.values as ArrayLike<number | bigint>;
      if ((t as DateDay).unit === 0) return (i) => new Date((v[i] as number) * 86_400_000);
      return (i) => new Date(Number(v[i]));
    }
    case Type.Dictionary: {
      const idx = data.values as ArrayLike<number | bigint>;
      const dict = data.dictionary;
      if (!dict) return () => null;
      const readers = dict.data.map((d) => makeReader(d));
      const starts: number[] = [];
      let s = 0;
      for (const d of dict.data) {
        starts.push(s);
        s += d.length;
      }
      return (i) => {
        const k = Number(idx[i]);
        let c = starts.length - 1;
        while (c > 0 && starts[c]! > k) c--;
        return readers[c]!(k - starts[c]!);
      };
    }
    default: {
      // Rare types (decimal, map, union, intervals): apache-arrow's own getter, made plain.
      const vec = makeVector(data);
      return (i) => plain(vec.get(i));
    }
  }
}

function plain(v: unknown): Value {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return toNumber(v);
  if (typeof v !== 'object') return v as Value;
  if (v instanceof Date || v instanceof Uint8Array) return v;
  const j = (v as { toJSON?: () => unknown }).toJSON;
  if (typeof j === 'function') return plain(j.call(v));
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return Array.from(v as ArrayLike<unknown>, plain);
  if (v instanceof Map) return Object.fromEntries([...v.entries()].map(([k, x]) => [String(k), plain(x)]));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
}

/** Where one output row comes from: chunk number and row within it. */
export interface RowRef {
  chunk: Uint32Array;
  row: Uint32Array;
}

/**
 * A new chunk holding rows `refs[k]` of `chunks` (all of type `type`), in order.
 * Strings and fixed-width values are copied as bytes; other types go through JS values.
 */
export function gatherData(type: DataType, chunks: readonly Data[], refs: RowRef): Data {
  const n = refs.chunk.length;
  const valids = chunks.map((c) => validity(c));
  let nullCount = 0;
  let nullBitmap: Uint8Array | undefined;
  if (valids.some((v) => v !== undefined) || type.typeId === Type.Null) {
    nullBitmap = new Uint8Array((n + 7) >> 3);
    for (let k = 0; k < n; k++) {
      const v = valids[refs.chunk[k]!];
      if (!v || v(refs.row[k]!)) nullBitmap[k >> 3]! |= 1 << (k & 7);
      else nullCount++;
    }
    if (nullCount === 0) nullBitmap = undefined;
  }
  if (type.typeId === Type.Utf8 || type.typeId === Type.Binary) {
    let total = 0;
    for (let k = 0; k < n; k++) {
      const o = chunks[refs.chunk[k]!]!.valueOffsets as Int32Array, r = refs.row[k]!;
      total += o[r + 1]! - o[r]!;
    }
    const data = new Uint8Array(total);
    const valueOffsets = new Int32Array(n + 1);
    let pos = 0;
    for (let k = 0; k < n; k++) {
      const c = chunks[refs.chunk[k]!]!, r = refs.row[k]!;
      const o = c.valueOffsets as Int32Array;
      const a = o[r]!, b = o[r + 1]!;
      data.set((c.values as Uint8Array).subarray(a, b), pos);
      pos += b - a;
      valueOffsets[k + 1] = pos;
    }
    return makeData({ type, length: n, nullCount, nullBitmap, valueOffsets, data } as never);
  }
  const fixed = type.typeId === Type.Int || (type.typeId === Type.Float && (type as Float64).precision > 0) ||
    type.typeId === Type.Timestamp || type.typeId === Type.Date;
  if (fixed) {
    const first = chunks.find((c) => c.values !== undefined)?.values as ArrayLike<number> | undefined;
    if (first) {
      const ctor = first.constructor as new (n: number) => ArrayLike<number> & { [k: number]: number };
      const data = new ctor(n);
      for (let k = 0; k < n; k++) data[k] = (chunks[refs.chunk[k]!]!.values as ArrayLike<number>)[refs.row[k]!]!;
      return makeData({ type, length: n, nullCount, nullBitmap, data } as never);
    }
  }
  const readers = chunks.map((c) => makeReader(c));
  const values = new Array<Value>(n);
  for (let k = 0; k < n; k++) values[k] = readers[refs.chunk[k]!]!(refs.row[k]!);
  return buildData(type, values);
}
