// Arrow types as the datasets module sees them: inference from JS values (with the widening rules used
// when chunks or rows disagree), equality, pyarrow-style names, and the mapping to and from HF `features`.
// Not here: building or reading the data itself (arrow-build.ts, arrow-read.ts).
// Names follow pyarrow (`string`, `large_string`, `int64`, `list<item: …>`), as datasets' `Value(dtype)` does.

import {
  Binary, Bool, DataType, Field, Float16, Float32, Float64, Int8, Int16, Int32, Int64, LargeBinary, LargeList,
  LargeUtf8, List, Null, Schema, Struct, TimestampMillisecond, TimestampMicrosecond, TimestampNanosecond,
  TimestampSecond, TimeUnit, Type, Uint8, Uint16, Uint32, Uint64, Utf8, DateDay, DateMillisecond,
} from 'apache-arrow';
import { TsFinetuneError } from '../core/index.js';
import type { Feature, Features, SequenceFeature, ValueFeature } from './types.js';

export const field = (name: string, type: DataType): Field => new Field(name, type, true);
export const listOf = (type: DataType): List => new List(field('item', type));
export const structOf = (fields: [string, DataType][]): Struct => new Struct(fields.map(([n, t]) => field(n, t)));

/** Arrow type of one JS value; `Null` for null/undefined (it widens to whatever the column holds elsewhere). */
export function inferValueType(v: unknown): DataType {
  if (v === null || v === undefined) return new Null();
  switch (typeof v) {
    case 'string':
      return new Utf8();
    case 'boolean':
      return new Bool();
    case 'bigint':
      return new Int64();
    case 'number':
      // JSON and JS do not tell 1 from 1.0: integral numbers are int64 until a fraction shows up.
      return Number.isSafeInteger(v) ? new Int64() : new Float64();
    case 'object':
      break;
    default:
      throw new TsFinetuneError('DATASET_ERROR', `A ${typeof v} cannot be stored in a dataset cell`);
  }
  if (v instanceof Date) return new TimestampMillisecond();
  if (v instanceof Uint8Array) return new Binary();
  if (ArrayBuffer.isView(v)) return listOf(typedArrayElementType(v));
  if (Array.isArray(v)) {
    let t: DataType = new Null();
    for (let i = 0; i < v.length; i++) {
      const u = unifyTypes(t, inferValueType(v[i]));
      if (!u) throw new TypeDisagreement(`list element ${i}`, t, inferValueType(v[i]));
      t = u;
    }
    return listOf(t);
  }
  const entries = Object.entries(v as Record<string, unknown>);
  return structOf(entries.map(([k, x]) => [k, inferValueType(x)]));
}

function typedArrayElementType(v: ArrayBufferView): DataType {
  if (v instanceof Int8Array) return new Int8();
  if (v instanceof Int16Array) return new Int16();
  if (v instanceof Int32Array) return new Int32();
  if (v instanceof BigInt64Array) return new Int64();
  if (v instanceof Uint16Array) return new Uint16();
  if (v instanceof Uint32Array) return new Uint32();
  if (v instanceof BigUint64Array) return new Uint64();
  if (v instanceof Float32Array) return new Float32();
  if (v instanceof Float64Array) return new Float64();
  if (v instanceof Uint8ClampedArray) return new Uint8();
  throw new TsFinetuneError('DATASET_ERROR', `Unsupported typed array ${v.constructor.name} in a dataset cell`);
}

/** Thrown inside inference; callers turn it into a message naming the column and rows. */
export class TypeDisagreement extends Error {
  constructor(
    readonly where: string,
    readonly a: DataType,
    readonly b: DataType,
  ) {
    super(`${where}: ${typeName(a)} vs ${typeName(b)}`);
  }
}

function isIntType(t: DataType): boolean {
  return t.typeId === Type.Int;
}

/**
 * The narrowest type holding both, or undefined when they conflict. Null widens to anything, ints widen
 * to wider ints and to float64, float32 to float64, lists and structs unify element- and field-wise
 * (a field missing on one side is null there), utf8 widens to large_utf8.
 */
export function unifyTypes(a: DataType, b: DataType): DataType | undefined {
  if (a.typeId === Type.Null) return b;
  if (b.typeId === Type.Null) return a;
  if (typesEqual(a, b)) return a;
  if (isIntType(a) && isIntType(b)) {
    const ai = a as Int64, bi = b as Int64;
    if (ai.isSigned === bi.isSigned) return ai.bitWidth >= bi.bitWidth ? a : b;
    const [s, u] = ai.isSigned ? [ai, bi] : [bi, ai];
    return s.bitWidth > u.bitWidth ? s : new Int64();
  }
  const aNum = isIntType(a) || a.typeId === Type.Float;
  const bNum = isIntType(b) || b.typeId === Type.Float;
  if (aNum && bNum) return new Float64();
  if ((a.typeId === Type.Utf8 || a.typeId === Type.LargeUtf8) && (b.typeId === Type.Utf8 || b.typeId === Type.LargeUtf8)) {
    return new LargeUtf8();
  }
  if ((a.typeId === Type.List || a.typeId === Type.LargeList) && (b.typeId === Type.List || b.typeId === Type.LargeList)) {
    const u = unifyTypes((a as List).valueType, (b as List).valueType);
    if (!u) return undefined;
    return a.typeId === Type.LargeList || b.typeId === Type.LargeList ? new LargeList(field('item', u)) : listOf(u);
  }
  if (a.typeId === Type.Struct && b.typeId === Type.Struct) {
    const out = new Map<string, DataType>();
    for (const f of (a as Struct).children) out.set(f.name, f.type);
    for (const f of (b as Struct).children) {
      const prev = out.get(f.name);
      if (prev === undefined) out.set(f.name, f.type);
      else {
        const u = unifyTypes(prev, f.type);
        if (!u) return undefined;
        out.set(f.name, u);
      }
    }
    return structOf([...out.entries()]);
  }
  return undefined;
}

/** Structural equality (field names, order and child types; nullability ignored, as datasets does). */
export function typesEqual(a: DataType, b: DataType): boolean {
  if (a.typeId !== b.typeId) return false;
  switch (a.typeId) {
    case Type.Int:
      return (a as Int64).bitWidth === (b as Int64).bitWidth && (a as Int64).isSigned === (b as Int64).isSigned;
    case Type.Float:
      return (a as Float64).precision === (b as Float64).precision;
    case Type.Timestamp:
      return (a as TimestampMillisecond).unit === (b as TimestampMillisecond).unit &&
        ((a as TimestampMillisecond).timezone ?? null) === ((b as TimestampMillisecond).timezone ?? null);
    case Type.Date:
      return (a as DateDay).unit === (b as DateDay).unit;
    case Type.List:
    case Type.LargeList:
      return typesEqual((a as List).valueType, (b as List).valueType);
    case Type.Struct: {
      const fa = (a as Struct).children, fb = (b as Struct).children;
      return fa.length === fb.length && fa.every((f, i) => f.name === fb[i]!.name && typesEqual(f.type, fb[i]!.type));
    }
    default:
      return a.toString() === b.toString();
  }
}

const TS_UNIT: Record<number, string> = { [TimeUnit.SECOND]: 's', [TimeUnit.MILLISECOND]: 'ms', [TimeUnit.MICROSECOND]: 'us', [TimeUnit.NANOSECOND]: 'ns' };

/** pyarrow's name for a type: `string`, `int64`, `list<item: struct<role: string, content: string>>`. */
export function typeName(t: DataType): string {
  switch (t.typeId) {
    case Type.Null: return 'null';
    case Type.Bool: return 'bool';
    case Type.Int: {
      const i = t as Int64;
      return `${i.isSigned ? 'int' : 'uint'}${i.bitWidth}`;
    }
    case Type.Float: return ['float16', 'float32', 'float64'][(t as Float64).precision] ?? 'float64';
    case Type.Utf8: return 'string';
    case Type.LargeUtf8: return 'large_string';
    case Type.Binary: return 'binary';
    case Type.LargeBinary: return 'large_binary';
    case Type.Timestamp: {
      const ts = t as TimestampMillisecond;
      return ts.timezone ? `timestamp[${TS_UNIT[ts.unit]}, tz=${ts.timezone}]` : `timestamp[${TS_UNIT[ts.unit]}]`;
    }
    case Type.Date: return (t as DateDay).unit === 0 ? 'date32' : 'date64';
    case Type.List: return `list<item: ${typeName((t as List).valueType)}>`;
    case Type.LargeList: return `large_list<item: ${typeName((t as List).valueType)}>`;
    case Type.Struct:
      return `struct<${(t as Struct).children.map((f) => `${f.name}: ${typeName(f.type)}`).join(', ')}>`;
    default: return t.toString();
  }
}

/** HF feature for an Arrow type (the form every `datasets` version reads back). */
export function typeToFeature(t: DataType): Feature {
  if (t.typeId === Type.List || t.typeId === Type.LargeList) {
    const inner = (t as List).valueType;
    // A list of structs is written as a one-element python list: `Sequence(dict)` would mean a struct of lists.
    if (inner.typeId === Type.Struct && t.typeId === Type.List) return [typeToFeature(inner)];
    const f: SequenceFeature = { feature: typeToFeature(inner), _type: t.typeId === Type.LargeList ? 'LargeList' : 'Sequence' };
    return f;
  }
  if (t.typeId === Type.Struct) {
    const out: Record<string, Feature> = {};
    for (const f of (t as Struct).children) out[f.name] = typeToFeature(f.type);
    return out;
  }
  if (t.typeId === Type.Dictionary) return typeToFeature((t as unknown as { dictionary: DataType }).dictionary);
  const v: ValueFeature = { dtype: typeName(t), _type: 'Value' };
  return v;
}

export function schemaToFeatures(schema: Schema): Features {
  const out: Features = {};
  for (const f of schema.fields) out[f.name] = typeToFeature(f.type);
  return out;
}

const DTYPES: Record<string, () => DataType> = {
  null: () => new Null(), bool: () => new Bool(),
  int8: () => new Int8(), int16: () => new Int16(), int32: () => new Int32(), int64: () => new Int64(),
  uint8: () => new Uint8(), uint16: () => new Uint16(), uint32: () => new Uint32(), uint64: () => new Uint64(),
  float16: () => new Float16(), float32: () => new Float32(), float64: () => new Float64(),
  float: () => new Float32(), double: () => new Float64(),
  string: () => new Utf8(), large_string: () => new LargeUtf8(), binary: () => new Binary(), large_binary: () => new LargeBinary(),
  'timestamp[s]': () => new TimestampSecond(), 'timestamp[ms]': () => new TimestampMillisecond(),
  'timestamp[us]': () => new TimestampMicrosecond(), 'timestamp[ns]': () => new TimestampNanosecond(),
  date32: () => new DateDay(), date64: () => new DateMillisecond(),
};

/** Arrow type for an HF feature (Value, Sequence/List/LargeList, `[struct]`, dict; ClassLabel as int64). */
export function featureToType(f: Feature, where = 'features'): DataType {
  if (Array.isArray(f)) {
    if (f.length !== 1) throw new TsFinetuneError('INVALID_ARGUMENT', `${where}: a list feature has exactly one element, got ${f.length}`);
    return listOf(featureToType(f[0]!, `${where}[0]`));
  }
  const tagged = f as { _type?: unknown };
  if (tagged._type === 'Value') {
    const make = DTYPES[(f as ValueFeature).dtype];
    if (!make) throw new TsFinetuneError('INVALID_ARGUMENT', `${where}: unknown dtype '${(f as ValueFeature).dtype}'`, { known: Object.keys(DTYPES) });
    return make();
  }
  if (tagged._type === 'ClassLabel') return new Int64();
  if (tagged._type === 'Sequence' || tagged._type === 'List' || tagged._type === 'LargeList') {
    const inner = featureToType((f as SequenceFeature).feature, `${where}.feature`);
    return tagged._type === 'LargeList' ? new LargeList(field('item', inner)) : listOf(inner);
  }
  if (typeof tagged._type === 'string') {
    throw new TsFinetuneError('INVALID_ARGUMENT', `${where}: feature type '${tagged._type}' is not supported`);
  }
  return structOf(Object.entries(f as Record<string, Feature>).map(([k, v]) => [k, featureToType(v, `${where}.${k}`)]));
}

export function featuresToSchema(features: Features): Schema {
  return new Schema(Object.entries(features).map(([k, v]) => field(k, featureToType(v, k))));
}
