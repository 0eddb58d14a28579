// Stack tables row-wise: the rule behind concatenateDatasets and multi-file / multi-row-group loads.
// Columns are matched by name (order may differ; the first table's order wins), as datasets'
// `_check_if_features_can_be_aligned` does; a null-typed column aligns with any type. Loads may also
// widen (int64 in one file, float64 in another → float64); concatenateDatasets does not, like datasets.
// Not here: the Dataset API (concatenateDatasets lives in dataset.ts).

import { DataType, Field, makeData, RecordBatch, Schema, Struct, Table, Type } from 'apache-arrow';
import { TsFinetuneError } from '../core/index.js';
import { typeName, typesEqual, unifyTypes } from './arrow-types.js';
import { conformChunk } from './table-builder.js';

export interface ConcatOptions {
  /** Allow int→float, utf8→large_utf8, struct field unions (loads); default: only null aligns (datasets' concat). */
  widen?: boolean;
  /** How to name table k in errors ("dataset 2", "file data/b.parquet"). */
  label?: (k: number) => string;
}

export function concatTables(tables: readonly Table[], opts: ConcatOptions = {}): Table {
  const label = opts.label ?? ((k: number) => `dataset ${k}`);
  if (tables.length === 0) return new Table();
  const first = tables[0]!;
  const names = first.schema.fields.map((f) => f.name);
  const types = new Map<string, DataType>(first.schema.fields.map((f) => [f.name, f.type]));
  for (let k = 1; k < tables.length; k++) {
    const t = tables[k]!;
    const these = t.schema.fields.map((f) => f.name);
    const missing = names.filter((n) => !these.includes(n));
    const extra = these.filter((n) => !names.includes(n));
    if (missing.length || extra.length) {
      throw new TsFinetuneError(
        'SCHEMA_MISMATCH',
        `Cannot concatenate: ${label(k)} has columns [${these.join(', ')}] but ${label(0)} has [${names.join(', ')}]` +
          `${missing.length ? `; missing: ${missing.join(', ')}` : ''}${extra.length ? `; extra: ${extra.join(', ')}` : ''}`,
        { missing, extra, index: k },
      );
    }
    for (const f of t.schema.fields) {
      const prev = types.get(f.name)!;
      let u: DataType | undefined;
      if (typesEqual(prev, f.type)) u = prev;
      else if (opts.widen) u = unifyTypes(prev, f.type);
      else if (prev.typeId === Type.Null) u = f.type;
      else if (f.type.typeId === Type.Null) u = prev;
      if (!u) {
        throw new TsFinetuneError(
          'SCHEMA_MISMATCH',
          `Cannot concatenate: column '${f.name}' is ${typeName(prev)} in ${label(0)} but ${typeName(f.type)} in ${label(k)}`,
          { column: f.name, types: [typeName(prev), typeName(f.type)], index: k },
        );
      }
      types.set(f.name, u);
    }
  }
  const fields = names.map((n) => new Field(n, types.get(n)!, true));
  const schema = new Schema(fields);
  const structType = new Struct(fields);
  const batches: RecordBatch[] = [];
  for (const t of tables) {
    const idx = names.map((n) => t.schema.fields.findIndex((f) => f.name === n));
    for (const b of t.batches) {
      const children = idx.map((c, j) => conformChunk(b.data.children[c], fields[j]!.type, b.numRows));
      batches.push(new RecordBatch(schema, makeData({ type: structType, length: b.numRows, nullCount: 0, children })));
    }
  }
  return new Table(schema, batches);
}
