// save_to_disk / load_from_disk folders, laid out as datasets writes them (arrow_dataset.py):
//   data-00000-of-0000N.arrow   Arrow IPC *stream* format (datasets' ArrowWriter uses RecordBatchStreamWriter
//                               and reads back with pa.ipc.open_stream, so the IPC file format would not load there)
//   dataset_info.json           {citation, description, features, homepage, license}
//   state.json                  {_data_files: [{filename}], _fingerprint, _format_*, _output_all_columns, _split}
// and for a DatasetDict, dataset_dict.json {"splits": [...]} with one such folder per split.
// Shards are cut at 500 MB like datasets' default max_shard_size. The folder is built under a temp
// name and renamed into place, so a failure leaves the previous one (or nothing), never half a dataset.
// Not here: the Dataset class (dataset.ts wraps these).

import { promises as fsp, createWriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { makeData, RecordBatch, RecordBatchStreamWriter, Schema, Struct, Table, tableFromIPC, tableToIPC } from 'apache-arrow';
import { TsFinetuneError, writeDirAtomic } from '../core/index.js';
import { schemaToFeatures } from './arrow-types.js';
import { shardRange } from './split.js';
import { concatTables } from './table-concat.js';
import type { TableView } from './table-view.js';
import { emptyInfo, type DatasetInfo } from './types.js';

const MAX_SHARD_BYTES = 500 * 1000 * 1000;

export interface DiskDataset {
  table: Table;
  info: DatasetInfo;
  split: string | null;
}

function tableBytes(view: TableView): number {
  let n = 0;
  for (const b of view.table.batches) n += b.data.byteLength;
  return view.indices ? (n * view.numRows) / Math.max(1, view.table.numRows) : n;
}

/** The schema with datasets' `huggingface` metadata (features), so pyarrow/datasets see the same features. */
export function schemaWithHfMetadata(schema: Schema): Schema {
  const md = new Map(schema.metadata);
  md.set('huggingface', JSON.stringify({ info: { features: schemaToFeatures(schema) } }));
  return new Schema(schema.fields, md);
}

async function writeShard(file: string, view: TableView, schema: Schema, start: number, end: number): Promise<void> {
  const shard = view.slice(start, end);
  if (shard.numRows === 0) {
    await fsp.writeFile(file, tableToIPC(new Table(schema), 'stream'));
    return;
  }
  const writer = new RecordBatchStreamWriter();
  const done = pipeline(writer.toNodeStream(), createWriteStream(file));
  const type = new Struct(schema.fields);
  for (const w of shard.windows(10_000)) {
    const children = schema.fields.map((_, c) => shard.columnData(c, w));
    writer.write(new RecordBatch(schema, makeData({ type, length: w.end - w.start, nullCount: 0, children })));
  }
  writer.finish();
  await done;
}

async function fillDatasetDir(dir: string, view: TableView, info: DatasetInfo, split: string | null): Promise<void> {
  const numShards = Math.floor(tableBytes(view) / MAX_SHARD_BYTES) + 1;
  const schema = schemaWithHfMetadata(view.table.schema);
  const files: { filename: string }[] = [];
  for (let k = 0; k < numShards; k++) {
    const filename = `data-${String(k).padStart(5, '0')}-of-${String(numShards).padStart(5, '0')}.arrow`;
    const [s, e] = shardRange(view.numRows, numShards, k);
    await writeShard(path.join(dir, filename), view, schema, s, e);
    files.push({ filename });
  }
  const state = {
    _data_files: files,
    _fingerprint: randomBytes(8).toString('hex'),
    _format_columns: null,
    _format_kwargs: {},
    _format_type: null,
    _output_all_columns: false,
    _split: split,
  };
  const datasetInfo = {
    citation: info.citation,
    description: info.description,
    features: schemaToFeatures(view.table.schema),
    homepage: info.homepage,
    license: info.license,
  };
  await fsp.writeFile(path.join(dir, 'state.json'), JSON.stringify(state, null, 2));
  await fsp.writeFile(path.join(dir, 'dataset_info.json'), JSON.stringify(datasetInfo, null, 2));
}

export async function saveDataset(dir: string, view: TableView, info: DatasetInfo, split: string | null): Promise<void> {
  await writeDirAtomic(dir, (tmp) => fillDatasetDir(tmp, view, info, split));
}

export async function saveDatasetDict(dir: string, splits: [string, { view: TableView; info: DatasetInfo }][]): Promise<void> {
  await writeDirAtomic(dir, async (tmp) => {
    await fsp.writeFile(path.join(tmp, 'dataset_dict.json'), JSON.stringify({ splits: splits.map(([s]) => s) }));
    for (const [name, d] of splits) {
      const sub = path.join(tmp, name);
      await fsp.mkdir(sub, { recursive: true });
      await fillDatasetDir(sub, d.view, d.info, name);
    }
  });
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    throw new TsFinetuneError('FILE_NOT_FOUND', `No such file: ${file}`, { file });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TsFinetuneError('CORRUPT_FILE', `${file} is not valid JSON: ${(e as Error).message}`, { file });
  }
}

export async function isDatasetDictDir(dir: string): Promise<boolean> {
  return fsp.access(path.join(dir, 'dataset_dict.json')).then(() => true, () => false);
}

/** Read an Arrow IPC file (stream or file format) completely. */
export async function readArrowFile(file: string): Promise<Table> {
  let bytes: Uint8Array;
  try {
    bytes = await fsp.readFile(file);
  } catch {
    throw new TsFinetuneError('FILE_NOT_FOUND', `Arrow file not found: ${file}`, { file });
  }
  try {
    return tableFromIPC(bytes);
  } catch (e) {
    throw new TsFinetuneError('CORRUPT_FILE', `Cannot read Arrow IPC file ${file}: ${(e as Error).message}`, { file }, { cause: e });
  }
}

export async function loadDataset(dir: string): Promise<DiskDataset> {
  const statePath = path.join(dir, 'state.json');
  const hasState = await fsp.access(statePath).then(() => true, () => false);
  if (!hasState) {
    const dict = await isDatasetDictDir(dir);
    throw new TsFinetuneError(
      'FILE_NOT_FOUND',
      dict
        ? `${dir} holds a DatasetDict (dataset_dict.json), not a Dataset: use DatasetDict.loadFromDisk or loadFromDisk`
        : `${dir} is not a dataset saved with saveToDisk (no state.json)`,
      { dir },
    );
  }
  const state = (await readJson(statePath)) as { _data_files?: { filename: string }[]; _split?: string | null };
  const infoRaw = (await readJson(path.join(dir, 'dataset_info.json')).catch(() => ({}))) as Partial<DatasetInfo>;
  const files = state._data_files ?? [];
  if (!files.length) throw new TsFinetuneError('CORRUPT_FILE', `${statePath} lists no _data_files`, { file: statePath });
  const tables: Table[] = [];
  for (const f of files) tables.push(await readArrowFile(path.join(dir, f.filename)));
  const table = tables.length === 1 ? tables[0]! : concatTables(tables, { label: (k) => `file ${files[k]!.filename}` });
  const info = emptyInfo();
  for (const k of ['description', 'citation', 'homepage', 'license'] as const) if (typeof infoRaw[k] === 'string') info[k] = infoRaw[k];
  return { table, info, split: state._split ?? null };
}

export async function loadDatasetDictSplits(dir: string): Promise<string[]> {
  const j = (await readJson(path.join(dir, 'dataset_dict.json'))) as { splits?: unknown };
  if (!Array.isArray(j.splits) || !j.splits.every((s) => typeof s === 'string')) {
    throw new TsFinetuneError('CORRUPT_FILE', `${path.join(dir, 'dataset_dict.json')} has no "splits" list`, { dir });
  }
  return j.splits as string[];
}
