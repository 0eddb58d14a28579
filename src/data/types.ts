// The value and schema types the datasets module speaks: what a row holds in JS, and the HF-style
// `features` description of a schema (the JSON that `datasets` writes into dataset_info.json).
// Not here: the Arrow types themselves (arrow-types.ts maps between the two).
// Follows datasets `features/features.py` (Value, Sequence/List, python-list-of-dict for list<struct>).

/** One cell as a JS value. int64 cells come back as `number` (exact up to 2**53; larger ones as `bigint`). */
export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Date
  | Uint8Array
  | Value[]
  | { [key: string]: Value };

/**
 * An untyped row. Like the Python dicts `datasets` hands out, its fields are not checked by the compiler,
 * so `row.output.length` type-checks; pass your own row type (`Dataset<MyRow>`) to get real checking.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- deliberate: untyped rows behave like HF's dicts (see API.md §2)
export type Row = Record<string, any>;

/**
 * Columns of a batch: column name → one value per row (the `batched: true` map/filter argument).
 * Known columns keep their types (`text: string[]`); untyped ones are `any[]`.
 */
export type Batch<R extends object = Row> = { [K in keyof R]: R[K][] };

/** A scalar feature: `{ dtype: 'string', _type: 'Value' }` (dtype is pyarrow's type name). */
export interface ValueFeature {
  dtype: string;
  _type: 'Value';
}

/** A variable-length list (datasets < 4 writes `Sequence`, datasets ≥ 4 `List`; both are read). */
export interface SequenceFeature {
  feature: Feature;
  length?: number;
  _type: 'Sequence' | 'List' | 'LargeList';
}

/** A struct: field name → feature. A one-element JS array `[struct]` is a list of that struct. */
export interface FeatureDict {
  [field: string]: Feature;
}

export type Feature = ValueFeature | SequenceFeature | Feature[] | FeatureDict;

/** Column name → feature, in column order. */
export type Features = Record<string, Feature>;

/** What `datasets` keeps next to the data (dataset_info.json); only the descriptive fields are carried. */
export interface DatasetInfo {
  description: string;
  citation: string;
  homepage: string;
  license: string;
}

export function emptyInfo(): DatasetInfo {
  return { description: '', citation: '', homepage: '', license: '' };
}

/** Options shared by every Hub-touching call (same names as `datasets` / `huggingface_hub`). */
export interface HubAccessOptions {
  revision?: string;
  cacheDir?: string;
  token?: string;
  /** Hub endpoint (default `HF_ENDPOINT` or https://huggingface.co); tests point it at a local fake. */
  hubUrl?: string;
}
