// Arrow → parquet with hyparquet-writer's incremental ParquetWriter: one row group per `rowGroupSize`
// rows, written to a temp file and renamed into place (no half-written file on failure). The parquet
// schema is derived from the Arrow types (three-level LIST groups, as pyarrow writes them), so the file
// reads back with the same columns and types — by us, pyarrow or datasets.
// Codecs: SNAPPY (default, like pyarrow), GZIP and BROTLI via node:zlib, UNCOMPRESSED.
// Not here: reading (parquet-read.ts).

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { ParquetWriter, fileWriter, type SchemaElement } from 'hyparquet-writer';
import { DataType, Type, type Int64, type Float64, type List, type Struct } from 'apache-arrow';
import { TsFinetuneError } from '../core/index.js';
import { schemaToFeatures, typeName } from './arrow-types.js';
import type { TableView } from './table-view.js';
import type { Value } from './types.js';

export type ParquetCodec = 'SNAPPY' | 'GZIP' | 'BROTLI' | 'UNCOMPRESSED';

export interface ToParquetOptions {
  /** Compression (default SNAPPY, as pyarrow and datasets write). */
  codec?: ParquetCodec;
  /** Rows per row group (default 10,000). */
  rowGroupSize?: number;
  /** Extra key/value metadata stored in the footer. */
  kvMetadata?: Record<string, string>;
}

const compressors = {
  GZIP: (b: Uint8Array): Uint8Array => zlib.gzipSync(b),
  // Quality 5 instead of zlib's default 11, which is ~20× slower for a few percent.
  BROTLI: (b: Uint8Array): Uint8Array => zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } }),
};

/** Parquet schema elements (depth-first) for one Arrow field. */
function elementsFor(name: string, t: DataType): SchemaElement[] {
  const opt = { name, repetition_type: 'OPTIONAL' as const };
  switch (t.typeId) {
    case Type.Utf8:
    case Type.LargeUtf8:
    case Type.Null:
      // Parquet has no null type; an all-null column is written as optional strings.
      return [{ ...opt, type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } }];
    case Type.Binary:
    case Type.LargeBinary:
      return [{ ...opt, type: 'BYTE_ARRAY' }];
    case Type.Bool:
      return [{ ...opt, type: 'BOOLEAN' }];
    case Type.Int: {
      const i = t as Int64;
      if (i.bitWidth === 64) return [{ ...opt, type: 'INT64', ...(i.isSigned ? {} : { converted_type: 'UINT_64' as const }) }];
      const ct = i.bitWidth === 32 ? (i.isSigned ? undefined : 'UINT_32') : `${i.isSigned ? 'INT' : 'UINT'}_${i.bitWidth}`;
      return [{ ...opt, type: 'INT32', ...(ct ? { converted_type: ct as SchemaElement['converted_type'] } : {}) }];
    }
    case Type.Float:
      return [{ ...opt, type: (t as Float64).precision === 2 ? 'DOUBLE' : 'FLOAT' }];
    case Type.Timestamp:
      return [{ ...opt, type: 'INT64', converted_type: 'TIMESTAMP_MILLIS' }];
    case Type.Date:
      return [{ ...opt, type: 'INT32', converted_type: 'DATE' }];
    case Type.List:
    case Type.LargeList: {
      const inner = elementsFor('element', (t as List).valueType);
      return [
        { ...opt, num_children: 1, converted_type: 'LIST', logical_type: { type: 'LIST' } },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        ...inner,
      ];
    }
    case Type.Struct: {
      const children = (t as Struct).children;
      return [{ ...opt, num_children: children.length }, ...children.flatMap((f) => elementsFor(f.name, f.type))];
    }
    default:
      throw new TsFinetuneError('UNSUPPORTED_DTYPE', `Column '${name}' of type ${typeName(t)} cannot be written to parquet`, { column: name });
  }
}

/** A converter to what hyparquet-writer wants (bigint for INT64 leaves), or undefined when values pass as is. */
function converterFor(t: DataType): ((v: Value) => unknown) | undefined {
  switch (t.typeId) {
    case Type.Int:
      return (t as Int64).bitWidth === 64 ? (v) => (typeof v === 'number' ? BigInt(v) : v) : undefined;
    case Type.List:
    case Type.LargeList: {
      const c = converterFor((t as List).valueType);
      return c ? (v) => (Array.isArray(v) ? v.map(c) : v) : undefined;
    }
    case Type.Struct: {
      const fields = (t as Struct).children.map((f) => [f.name, converterFor(f.type)] as const);
      if (fields.every(([, c]) => !c)) return undefined;
      return (v) => {
        if (v === null || typeof v !== 'object') return v;
        const o: Record<string, unknown> = { ...(v as Record<string, Value>) };
        for (const [n, c] of fields) if (c && o[n] !== undefined) o[n] = c(o[n] as Value);
        return o;
      };
    }
    default:
      return undefined;
  }
}

export async function writeParquet(view: TableView, file: string, opts: ToParquetOptions = {}): Promise<void> {
  const codec = opts.codec ?? 'SNAPPY';
  if (!['SNAPPY', 'GZIP', 'BROTLI', 'UNCOMPRESSED'].includes(codec)) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `Unsupported parquet codec '${codec}' for writing (use SNAPPY, GZIP, BROTLI or UNCOMPRESSED)`);
  }
  const rowGroupSize = opts.rowGroupSize ?? 10_000;
  const fields = view.table.schema.fields;
  const schema: SchemaElement[] = [{ name: 'schema', num_children: fields.length }, ...fields.flatMap((f) => elementsFor(f.name, f.type))];
  const converters = fields.map((f) => converterFor(f.type));
  await fsp.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    const writer = fileWriter(tmp);
    // datasets stores its features under "huggingface" (as pyarrow schema metadata); readers restore them from it.
    const kv = Object.entries({ huggingface: JSON.stringify({ info: { features: schemaToFeatures(view.table.schema) } }), ...opts.kvMetadata }).map(([key, value]) => ({ key, value }));
    // (An empty key/value list makes arrow-rs misread list columns, so there is always at least this entry.)
    const pq = new ParquetWriter({ writer, schema, codec, compressors, kvMetadata: kv, createdBy: 'ts-finetune (hyparquet-writer)' });
    for (let s = 0; s < view.numRows; s += rowGroupSize) {
      const e = Math.min(view.numRows, s + rowGroupSize);
      const columnData = fields.map((f, c) => {
        const vals = view.columnValues(c, s, e);
        const conv = converters[c];
        return { name: f.name, data: conv ? vals.map(conv) : vals };
      });
      await pq.write({ columnData, rowGroupSize: e - s });
    }
    await pq.finish();
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    if (e instanceof TsFinetuneError) throw e;
    throw new TsFinetuneError('DATASET_ERROR', `Writing parquet file ${file} failed: ${e instanceof Error ? e.message : String(e)}`, { file }, { cause: e });
  }
}
