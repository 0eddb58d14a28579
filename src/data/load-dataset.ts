// loadDataset: datasets' `load_dataset(path, name, data_dir, data_files, split, streaming, revision, token)`.
// `path` is, in this order (as datasets resolves it): a builder name (json, csv, text, parquet, arrow) used with
// dataFiles/dataDir; a local file; a local folder; or a Hub dataset repo id. Folders and repos get their
// splits from the dataset card's `configs:` (if any) or from datasets' default file-name patterns
// (data-files.ts); the builder is the most common data-file extension. Hub files are downloaded into the HF
// cache (reused offline with HF_HUB_OFFLINE=1). `split` may slice and join: "train[:10%]+test".
// Also the top-level `loadFromDisk` (Dataset or DatasetDict folder).
// Not here: the formats (row-sources.ts, parquet-read.ts) or the Hub transport (src/io).

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { TsFinetuneError } from '../core/index.js';
import { cachedCommit, isValidRepoId } from '../io/index.js';
import {
  inferBuilder, inferSplitPatterns, listLocalFiles, matchFiles, onlyDataFiles, resolveLocalPatterns, resolveRepoPatterns, sanitizeDataFiles,
  type DataFilesSpec,
} from './data-files.js';
import { concatenateDatasets, Dataset } from './dataset.js';
import { DatasetDict } from './dataset-dict.js';
import { isDatasetDictDir } from './disk.js';
import { downloadDatasetFile, listDatasetRepoFiles, pickCardConfig, readCardConfigs, type CardConfig } from './hub-data.js';
import { IterableDataset, IterableDatasetDict, type Shard } from './iterable-dataset.js';
import { readFilesTable } from './read-files.js';
import { fileRows, type BuilderName, type ReaderOptions } from './row-sources.js';
import { parseSplit, partRange } from './split.js';
import type { HubAccessOptions, Row } from './types.js';

export interface LoadDatasetOptions extends HubAccessOptions, ReaderOptions {
  /** "train", "test", "train[:10%]", "train[100:200]+validation"; without it, every split (a DatasetDict). */
  split?: string;
  /** Config name from the dataset card's `configs:` (datasets' `name`). */
  name?: string;
  /** Files per split: a path, a glob, a list, or { train: …, test: … } (relative to the folder / repo / cwd). */
  dataFiles?: DataFilesSpec;
  /** Sub-folder of the folder / repo to look in. */
  dataDir?: string;
  /** Return an IterableDataset that reads on demand instead of loading everything. */
  streaming?: boolean;
  /** Progress lines on stderr (default: on a terminal). */
  progress?: boolean;
}

const BUILDER_NAMES: Record<string, BuilderName> = { json: 'json', jsonl: 'json', csv: 'csv', text: 'text', txt: 'text', parquet: 'parquet', arrow: 'arrow' };

interface Plan {
  builder: BuilderName;
  /** split → absolute local paths, or repo paths when `repoId` is set. */
  splits: Record<string, string[]>;
  repoId?: string;
  /** The commit the file list came from: every download pins it, so all files are of one commit. */
  sha?: string;
  where: string;
}

async function statOrUndefined(p: string): Promise<import('node:fs').Stats | undefined> {
  return fsp.stat(p).catch(() => undefined);
}

function configPatterns(config: CardConfig | undefined, opts: LoadDatasetOptions): Record<string, string[]> | undefined {
  if (opts.dataFiles !== undefined) return sanitizeDataFiles(opts.dataFiles);
  if (config?.dataFiles !== undefined) return sanitizeDataFiles(config.dataFiles);
  return undefined;
}

/** Default patterns over a listing → split → matching data files (splits without data files dropped). */
function inferredSplits(files: readonly string[], where: string): Record<string, string[]> {
  let patterns: Record<string, string[]>;
  try {
    patterns = inferSplitPatterns(files);
  } catch {
    throw new TsFinetuneError('FILE_NOT_FOUND', `No data files found in ${where}`, { where });
  }
  const out: Record<string, string[]> = {};
  for (const [split, pats] of Object.entries(patterns)) {
    const hits = onlyDataFiles([...new Set(pats.flatMap((p) => matchFiles(files, p)))]);
    if (hits.length) out[split] = hits;
  }
  if (!Object.keys(out).length) {
    throw new TsFinetuneError('FILE_NOT_FOUND', `No supported data files in ${where} (.parquet, .arrow, .csv, .tsv, .json, .jsonl, .txt)`, { where });
  }
  return out;
}

async function planLocal(pathArg: string, opts: LoadDatasetOptions): Promise<Plan> {
  const builderName = BUILDER_NAMES[pathArg];
  if (builderName) {
    const base = path.resolve(opts.dataDir ?? '.');
    if (opts.dataFiles === undefined && opts.dataDir === undefined) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `loadDataset('${pathArg}') needs dataFiles (or dataDir): e.g. { dataFiles: { train: 'data/*.${pathArg === 'text' ? 'txt' : pathArg}' } }`);
    }
    const patterns = opts.dataFiles !== undefined ? sanitizeDataFiles(opts.dataFiles) : undefined;
    const splits: Record<string, string[]> = {};
    if (patterns) for (const [s, p] of Object.entries(patterns)) splits[s] = await resolveLocalPatterns(p, base, s);
    else {
      const inferred = inferredSplits(await listLocalFiles(base), base);
      for (const [s, f] of Object.entries(inferred)) splits[s] = f.map((x) => path.join(base, x));
    }
    return { builder: builderName, splits, where: base };
  }
  const abs = path.resolve(pathArg);
  const st = await statOrUndefined(abs);
  if (st?.isFile()) {
    const files = opts.dataFiles !== undefined ? sanitizeDataFiles(opts.dataFiles) : { train: [abs] };
    const splits: Record<string, string[]> = {};
    for (const [s, p] of Object.entries(files)) splits[s] = await resolveLocalPatterns(p, path.dirname(abs), s);
    return { builder: inferBuilder(Object.values(splits).flat(), abs), splits, where: abs };
  }
  if (!st?.isDirectory()) throw new Error('not local');
  if (await isDatasetDictDir(abs)) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `${abs} was written by saveToDisk: load it with loadFromDisk / DatasetDict.loadFromDisk`, { dir: abs });
  }
  const config = pickCardConfig(await readCardConfigs(path.join(abs, 'README.md')), opts.name, abs);
  const base = path.join(abs, opts.dataDir ?? config?.dataDir ?? '');
  const patterns = configPatterns(config, opts);
  const splits: Record<string, string[]> = {};
  if (patterns) for (const [s, p] of Object.entries(patterns)) splits[s] = await resolveLocalPatterns(p, base, s);
  else for (const [s, f] of Object.entries(inferredSplits(await listLocalFiles(base), base))) splits[s] = f.map((x) => path.join(base, x));
  return { builder: inferBuilder(Object.values(splits).flat(), abs), splits, where: abs };
}

async function planHub(repoId: string, opts: LoadDatasetOptions): Promise<Plan> {
  const all = await listDatasetRepoFiles(repoId, opts);
  const sha = await cachedCommit(repoId, { repoType: 'dataset', revision: opts.revision ?? 'main', ...(opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {}) });
  const pinned = sha ? { ...opts, revision: sha } : opts;
  const where = `the Hub dataset ${repoId}`;
  let config: CardConfig | undefined;
  if (all.includes('README.md')) {
    const readme = await downloadDatasetFile(repoId, 'README.md', { ...pinned, progress: false });
    config = pickCardConfig(await readCardConfigs(readme), opts.name, where);
  }
  const dataDir = (opts.dataDir ?? config?.dataDir ?? '').replace(/^\/+|\/+$/g, '');
  const files = dataDir ? all.filter((f) => f.startsWith(`${dataDir}/`)).map((f) => f.slice(dataDir.length + 1)) : all;
  const prefix = (f: string): string => (dataDir ? `${dataDir}/${f}` : f);
  const patterns = configPatterns(config, opts);
  const splits: Record<string, string[]> = {};
  if (patterns) for (const [s, p] of Object.entries(patterns)) splits[s] = resolveRepoPatterns(p, files, repoId, s).map(prefix);
  else for (const [s, f] of Object.entries(inferredSplits(files, where))) splits[s] = f.map(prefix);
  return { builder: inferBuilder(Object.values(splits).flat(), where), splits, repoId, ...(sha ? { sha } : {}), where };
}

async function makePlan(pathArg: string, opts: LoadDatasetOptions): Promise<Plan> {
  try {
    return await planLocal(pathArg, opts);
  } catch (e) {
    if (!(e instanceof Error) || e.message !== 'not local') throw e;
  }
  const looksLikePath = /^(?:\.{1,2}[\\/]|[\\/]|~)/.test(pathArg) || /\.(parquet|arrow|csv|tsv|jsonl?|txt)(\.gz)?$/.test(pathArg);
  if (looksLikePath || !isValidRepoId(pathArg)) {
    throw new TsFinetuneError(
      'FILE_NOT_FOUND',
      `'${pathArg}' is not a local file or folder (${path.resolve(pathArg)}), a builder name (json, csv, text, parquet, arrow) or a Hub dataset id`,
      { path: pathArg },
    );
  }
  return planHub(pathArg, opts);
}

async function localFiles(plan: Plan, files: readonly string[], opts: LoadDatasetOptions): Promise<string[]> {
  if (!plan.repoId) return [...files];
  const out: string[] = [];
  const o = plan.sha ? { ...opts, revision: plan.sha } : opts;
  for (const f of files) out.push(await downloadDatasetFile(plan.repoId, f, o));
  return out;
}

function unknownSplit(split: string, plan: Plan): TsFinetuneError {
  return new TsFinetuneError('INVALID_ARGUMENT', `Unknown split '${split}' in ${plan.where}; available: ${Object.keys(plan.splits).join(', ')}`, {
    split,
    splits: Object.keys(plan.splits),
  });
}

async function loadSplit(plan: Plan, split: string, opts: LoadDatasetOptions): Promise<Dataset> {
  const files = plan.splits[split];
  if (!files) throw unknownSplit(split, plan);
  const table = await readFilesTable(plan.builder, await localFiles(plan, files, opts), { ...opts, desc: `Generating ${split} split` });
  return new Dataset(table, { split });
}

function streamSplit(plan: Plan, split: string, opts: LoadDatasetOptions): IterableDataset {
  const files = plan.splits[split];
  if (!files) throw unknownSplit(split, plan);
  const shards: Shard[] = files.map((f) => async function* () {
    // Hub files are fetched when the iteration reaches them, then read from the cache chunk by chunk.
    const [local] = await localFiles(plan, [f], opts);
    yield* fileRows(plan.builder, local!, opts);
  });
  return new IterableDataset(shards, [], undefined, split);
}

/**
 * Load a dataset from the Hub, a local folder or files (datasets' `load_dataset`).
 * @example
 * const train = await loadDataset('jtatman/python-code-dataset-500k', { split: 'train' });
 * const local = await loadDataset('parquet', { dataFiles: { train: 'data/*.parquet' } });
 */
export async function loadDataset<R extends object = Row>(path: string, opts: LoadDatasetOptions & { streaming: true; split: string }): Promise<IterableDataset<R>>;
export async function loadDataset(path: string, opts: LoadDatasetOptions & { streaming: true }): Promise<IterableDatasetDict>;
export async function loadDataset<R extends object = Row>(path: string, opts: LoadDatasetOptions & { split: string }): Promise<Dataset<R>>;
export async function loadDataset<R extends object = Row>(path: string, opts?: LoadDatasetOptions): Promise<DatasetDict<R>>;
export async function loadDataset(pathArg: string, opts: LoadDatasetOptions = {}): Promise<Dataset | DatasetDict | IterableDataset | IterableDatasetDict> {
  const plan = await makePlan(pathArg, opts);
  if (opts.streaming) {
    if (opts.split === undefined) return new IterableDatasetDict(Object.fromEntries(Object.keys(plan.splits).map((s) => [s, streamSplit(plan, s, opts)])));
    const parts = parseSplit(opts.split);
    if (parts.some((p) => p.from || p.to)) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `Split slicing ('${opts.split}') is not supported with streaming: use .skip() and .take()`);
    }
    if (parts.length !== 1) throw new TsFinetuneError('INVALID_ARGUMENT', `Joining splits ('${opts.split}') is not supported with streaming`);
    return streamSplit(plan, parts[0]!.split, opts);
  }
  if (opts.split === undefined) {
    const out: Record<string, Dataset> = {};
    for (const s of Object.keys(plan.splits)) out[s] = await loadSplit(plan, s, opts);
    return new DatasetDict(out);
  }
  const parts = parseSplit(opts.split);
  for (const p of parts) if (!plan.splits[p.split]) throw unknownSplit(p.split, plan);
  const cache = new Map<string, Dataset>();
  const pieces: Dataset[] = [];
  for (const p of parts) {
    let d = cache.get(p.split);
    if (!d) {
      d = await loadSplit(plan, p.split, opts);
      cache.set(p.split, d);
    }
    const [a, b] = partRange(p, d.numRows);
    pieces.push(a === 0 && b === d.numRows ? d : d.slice(a, b));
  }
  return pieces.length === 1 ? pieces[0]! : concatenateDatasets(pieces, { split: opts.split });
}

/** A folder written by saveToDisk: a Dataset, or a DatasetDict when it has dataset_dict.json. */
export async function loadFromDisk(dir: string): Promise<Dataset | DatasetDict> {
  return (await isDatasetDictDir(dir)) ? DatasetDict.loadFromDisk(dir) : Dataset.loadFromDisk(dir);
}
