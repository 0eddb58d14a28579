// Hub dataset repos for loadDataset, and the public `hfHubDownload`: list the repo's files (from the cached
// snapshot when offline), read the dataset card's YAML `configs:` block if there is one (datasets'
// metadata-configs, e.g. `data_files: [{split: train, path: data/train-*}]`), and download data files into the
// HF cache with a stderr progress line. All network and cache work is src/io's hubDownloadFile/listRepoFiles.
// Not here: choosing splits from the file list (data-files.ts).

import { promises as fsp } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { TsFinetuneError } from '../core/index.js';
import { hubDownloadFile, listRepoFiles, type RepoType } from '../io/index.js';
import { ProgressLine } from './progress.js';
import type { DataFilesSpec } from './data-files.js';
import type { HubAccessOptions } from './types.js';

export interface HfHubDownloadOptions extends HubAccessOptions {
  repoId: string;
  filename: string;
  /** 'model' (default, as huggingface_hub), 'dataset' or 'space'. */
  repoType?: RepoType;
  /** Show a download progress line on stderr (default: on a terminal). */
  progress?: boolean;
}

/**
 * Download one file of a Hub repo into the HF cache (or find it there, also offline) and return its local
 * path — huggingface_hub's `hf_hub_download`.
 * @example
 * const file = await hfHubDownload({ repoId: 'jtatman/python-code-dataset-500k',
 *   filename: 'data/train-00000-of-00002.parquet', repoType: 'dataset' });
 * const ds = await Dataset.fromParquet(file);
 */
export async function hfHubDownload(opts: HfHubDownloadOptions): Promise<string> {
  let bar: ProgressLine | undefined;
  try {
    return await hubDownloadFile({
      repoId: opts.repoId,
      filename: opts.filename,
      repoType: opts.repoType ?? 'model',
      ...(opts.revision !== undefined ? { revision: opts.revision } : {}),
      ...(opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {}),
      ...(opts.token !== undefined ? { token: opts.token } : {}),
      ...(opts.hubUrl !== undefined ? { hubUrl: opts.hubUrl } : {}),
      onProgress: (loaded, total) => {
        bar ??= new ProgressLine(total, { desc: `Downloading ${opts.filename}`, unit: 'B', ...(opts.progress !== undefined ? { enabled: opts.progress } : {}) });
        bar.setTotal(total);
        bar.update(loaded);
      },
    });
  } finally {
    bar?.close();
  }
}

function hubOpts(repoId: string, o: HubAccessOptions): Parameters<typeof listRepoFiles>[0] {
  return {
    repoId,
    repoType: 'dataset',
    ...(o.revision !== undefined ? { revision: o.revision } : {}),
    ...(o.cacheDir !== undefined ? { cacheDir: o.cacheDir } : {}),
    ...(o.token !== undefined ? { token: o.token } : {}),
    ...(o.hubUrl !== undefined ? { hubUrl: o.hubUrl } : {}),
  };
}

export async function listDatasetRepoFiles(repoId: string, o: HubAccessOptions): Promise<string[]> {
  return listRepoFiles(hubOpts(repoId, o));
}

/** Download (or find in the cache) one file of a dataset repo. */
export async function downloadDatasetFile(repoId: string, filename: string, o: HubAccessOptions & { progress?: boolean }): Promise<string> {
  return hfHubDownload({ ...o, repoId, filename, repoType: 'dataset' });
}

export interface CardConfig {
  configName: string;
  dataFiles?: DataFilesSpec;
  dataDir?: string;
  isDefault: boolean;
}

/** The `configs:` entries of a dataset card (README.md front matter); [] when there are none. */
export function parseCardConfigs(readme: string, where: string): CardConfig[] {
  const m = /^---\r?\n([\s\S]*?)\r?\n---\s*(?:\r?\n|$)/.exec(readme);
  if (!m) return [];
  let meta: unknown;
  try {
    meta = parseYaml(m[1]!);
  } catch (e) {
    throw new TsFinetuneError('CORRUPT_FILE', `${where}: the YAML header of the dataset card does not parse: ${(e as Error).message}`, { file: where });
  }
  const configs = (meta as { configs?: unknown } | null)?.configs;
  if (!Array.isArray(configs)) return [];
  return configs.map((c: Record<string, unknown>) => {
    const out: CardConfig = { configName: String(c.config_name ?? 'default'), isDefault: c.default === true };
    const df = c.data_files;
    if (typeof df === 'string') out.dataFiles = df;
    else if (Array.isArray(df)) {
      if (df.every((x) => typeof x === 'string')) out.dataFiles = df as string[];
      else {
        const bySplit: Record<string, string[]> = {};
        for (const e of df as { split?: string; path?: string | string[] }[]) {
          const s = String(e.split ?? 'train');
          bySplit[s] = [...(bySplit[s] ?? []), ...(Array.isArray(e.path) ? e.path : e.path !== undefined ? [e.path] : [])];
        }
        out.dataFiles = bySplit;
      }
    } else if (df && typeof df === 'object') out.dataFiles = df as Record<string, string[]>;
    if (typeof c.data_dir === 'string') out.dataDir = c.data_dir;
    return out;
  });
}

/** The config to use: `name`, else the one marked default, else "default", else the only one. */
export function pickCardConfig(configs: CardConfig[], name: string | undefined, where: string): CardConfig | undefined {
  if (!configs.length) return undefined;
  if (name !== undefined) {
    const c = configs.find((x) => x.configName === name);
    if (!c) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `Config '${name}' not found in ${where}; available: ${configs.map((x) => x.configName).join(', ')}`, {
        name,
        configs: configs.map((x) => x.configName),
      });
    }
    return c;
  }
  const c = configs.find((x) => x.isDefault) ?? configs.find((x) => x.configName === 'default') ?? (configs.length === 1 ? configs[0] : undefined);
  if (!c) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `${where} has several configs (${configs.map((x) => x.configName).join(', ')}): pass { name }`, {
      configs: configs.map((x) => x.configName),
    });
  }
  return c;
}

export async function readCardConfigs(readmePath: string): Promise<CardConfig[]> {
  const text = await fsp.readFile(readmePath, 'utf8').catch(() => '');
  return parseCardConfigs(text, readmePath);
}

