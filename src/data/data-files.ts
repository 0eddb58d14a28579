// Which files make up which split, the way datasets decides it (data_files.py):
//   - `dataFiles` given as a string, array, glob or {split: files} (sanitize_patterns; default split "train");
//   - otherwise the default patterns, tried in order: `data/{split}-00000-of-00002*.*` shards, split names
//     in directory names (`train/*.parquet`), in file names (`train.jsonl`, `my_test-1.csv`), and finally
//     every file → "train". Split keywords: train/training, validation/valid/dev/val, test/testing/eval/evaluation.
// Globs follow fsspec ≥ 2023.12 (= Python glob): `*` stays within a path segment, `**` spans segments;
// hidden (`.x`) and `__x` paths are skipped unless the pattern names them; README.md and the dataset json
// files are ignored. The same resolution runs on a local folder and on a Hub repo's file list.
// Not here: reading files (row-sources.ts) or downloading (hub-data.ts).

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { TsFinetuneError } from '../core/index.js';
import type { BuilderName } from './row-sources.js';

export type DataFilesSpec = string | readonly string[] | Readonly<Record<string, string | readonly string[]>>;

const SPLIT_KEYWORDS: [string, string[]][] = [
  ['train', ['train', 'training']],
  ['validation', ['validation', 'valid', 'dev', 'val']],
  ['test', ['test', 'testing', 'eval', 'evaluation']],
];
const SEP = '-._ 0-9';
const IN_FILENAME = ['**/{k}[{s}]*', '**/*[{s}]{k}[{s}]*'];
const IN_DIRNAME = ['**/{k}/**', '**/{k}[{s}]*/**', '**/*[{s}]{k}/**', '**/*[{s}]{k}[{s}]*/**'];
const SHARDED = 'data/{split}-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]*.*';
const FILES_TO_IGNORE = new Set(['README.md', 'config.json', 'dataset_info.json', 'dataset_infos.json', 'dummy_data.zip', 'dataset_dict.json']);
const SPLIT_RE = /^\w+(\.\w+)*$/;

function keywordPatterns(templates: string[]): Record<string, string[]> {
  return Object.fromEntries(SPLIT_KEYWORDS.map(([split, kws]) => [split, kws.flatMap((k) => templates.map((t) => t.replaceAll('{k}', k).replaceAll('{s}', SEP)))]));
}

export const DEFAULT_PATTERN_GROUPS: Record<string, string[]>[] = [keywordPatterns(IN_DIRNAME), keywordPatterns(IN_FILENAME), { train: ['**'] }];

export function hasMagic(p: string): boolean {
  return /[*?[]/.test(p);
}

/** A glob as a RegExp over '/'-separated relative paths. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        const atSegStart = i === 0 || pattern[i - 1] === '/';
        i++;
        if (atSegStart && pattern[i + 1] === '/') {
          re += '(?:[^/]*/)*'; // "**/": zero or more directories
          i++;
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) re += '\\[';
      else {
        let body = pattern.slice(i + 1, close).replace(/\\/g, '\\\\');
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        else if (body.startsWith('^')) body = `\\${body}`;
        re += `[${body}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function countParts(p: string, pred: (part: string) => boolean): number {
  return p.split('/').filter(pred).length;
}
const hidden = (s: string): boolean => s.startsWith('.') && !/^\.+$/.test(s);
const special = (s: string): boolean => s.startsWith('__');

/** Files of `all` (relative '/'-paths) matching `pattern`, with datasets' hidden/special/ignored rules. */
export function matchFiles(all: readonly string[], pattern: string): string[] {
  const re = globToRegExp(pattern);
  const ignore = new Set([...FILES_TO_IGNORE].filter((f) => f !== path.posix.basename(pattern)));
  const patDirs = pattern.split('/').slice(0, -1).join('/');
  return all.filter((f) => {
    if (!re.test(f)) return false;
    if (ignore.has(path.posix.basename(f))) return false;
    if (countParts(f, hidden) !== countParts(pattern, hidden)) return false;
    const fDirs = f.split('/').slice(0, -1).join('/');
    return countParts(fDirs, special) === countParts(patDirs, special);
  });
}

/** datasets' sanitize_patterns: → {split: patterns}. */
export function sanitizeDataFiles(spec: DataFilesSpec): Record<string, string[]> {
  if (typeof spec === 'string') return { train: [spec] };
  if (Array.isArray(spec)) return { train: [...(spec as string[])] };
  return Object.fromEntries(Object.entries(spec as Record<string, string | string[]>).map(([k, v]) => [k, typeof v === 'string' ? [v] : [...v]]));
}

const KNOWN_SPLITS = ['train', 'validation', 'test'];

/** The split → patterns datasets would pick for these files (get_data_patterns). */
export function inferSplitPatterns(files: readonly string[]): Record<string, string[]> {
  const sharded = matchFiles(files, SHARDED.replace('{split}', '*'));
  if (sharded.length) {
    const re = /^(.*)-\d{5}-of-\d{5}.*\..*$/;
    const splits = new Set(sharded.map((f) => re.exec(path.posix.basename(f))?.[1] ?? ''));
    const bad = [...splits].filter((s) => !SPLIT_RE.test(s));
    if (bad.length) throw new TsFinetuneError('DATASET_ERROR', `Split names must match ${SPLIT_RE} but got ${bad.join(', ')}`);
    const ordered = [...KNOWN_SPLITS.filter((s) => splits.has(s)), ...[...splits].filter((s) => !KNOWN_SPLITS.includes(s)).sort()];
    return Object.fromEntries(ordered.map((s) => [s, [SHARDED.replace('{split}', s)]]));
  }
  for (const group of DEFAULT_PATTERN_GROUPS) {
    const found = Object.entries(group).filter(([, pats]) => pats.some((p) => matchFiles(files, p).length > 0));
    if (found.length) return Object.fromEntries(found);
  }
  throw new TsFinetuneError('FILE_NOT_FOUND', 'No data files found', { files: files.length });
}

const EXT_BUILDER: Record<string, BuilderName> = {
  parquet: 'parquet', arrow: 'arrow', csv: 'csv', tsv: 'csv', json: 'json', jsonl: 'json', txt: 'text',
};

/** The builder for a file name from its extension (`.jsonl.gz` → json), or undefined. */
export function builderForFile(file: string): BuilderName | undefined {
  const base = path.posix.basename(file.replaceAll('\\', '/')).toLowerCase().replace(/\.gz$/, '');
  const ext = base.includes('.') ? base.slice(base.lastIndexOf('.') + 1) : '';
  return EXT_BUILDER[ext];
}

/** The most common builder among files (datasets' infer_module_for_data_files). */
export function inferBuilder(files: readonly string[], where: string): BuilderName {
  const counts = new Map<BuilderName, number>();
  for (const f of files) {
    const b = builderForFile(f);
    if (b) counts.set(b, (counts.get(b) ?? 0) + 1);
  }
  let best: BuilderName | undefined;
  let n = 0;
  for (const [b, c] of counts) {
    if (c > n) {
      best = b;
      n = c;
    }
  }
  if (!best) {
    throw new TsFinetuneError('DATASET_ERROR', `No supported data files in ${where} (expected .parquet, .arrow, .csv, .tsv, .json, .jsonl or .txt, optionally .gz)`, {
      files: files.slice(0, 20),
    });
  }
  return best;
}

/** Every file under dir, as '/'-separated paths relative to it (sorted). */
export async function listLocalFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await fsp.readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile() || e.isSymbolicLink()) out.push(r);
    }
  };
  await walk('');
  return out.sort();
}

/** Resolve user patterns against a local base folder → absolute file paths; a pattern matching nothing is an error. */
export async function resolveLocalPatterns(patterns: readonly string[], base: string, split: string): Promise<string[]> {
  const out: string[] = [];
  for (const p of patterns) {
    const abs = path.isAbsolute(p) ? p : path.join(base, p);
    if (!hasMagic(p)) {
      const st = await fsp.stat(abs).catch(() => undefined);
      if (!st) throw new TsFinetuneError('FILE_NOT_FOUND', `Data file not found: ${abs} (split '${split}')`, { file: abs, split });
      if (st.isDirectory()) {
        out.push(...(await listLocalFiles(abs)).filter((f) => !FILES_TO_IGNORE.has(path.posix.basename(f)) && countParts(f, hidden) === 0).map((f) => path.join(abs, f)));
      } else out.push(abs);
      continue;
    }
    // Walk from the deepest folder without wildcards, match the rest of the pattern.
    const segs = abs.split(path.sep);
    const firstMagic = segs.findIndex((s) => hasMagic(s));
    const root = segs.slice(0, firstMagic).join(path.sep) || path.sep;
    const rest = segs.slice(firstMagic).join('/');
    const files = await listLocalFiles(root).catch(() => [] as string[]);
    const hits = matchFiles(files, rest).map((f) => path.join(root, f));
    if (!hits.length) {
      throw new TsFinetuneError('FILE_NOT_FOUND', `Unable to find any data file matching '${p}' in ${root} (split '${split}')`, { pattern: p, base: root, split });
    }
    out.push(...hits);
  }
  return [...new Set(out)];
}

/** Resolve patterns against a Hub repo's file list → repo paths; a pattern matching nothing is an error. */
export function resolveRepoPatterns(patterns: readonly string[], files: readonly string[], repoId: string, split: string): string[] {
  const out: string[] = [];
  for (const p of patterns) {
    const rel = p.replace(/^\.?\//, '');
    const hits = hasMagic(rel) ? matchFiles(files, rel) : files.includes(rel) ? [rel] : matchFiles(files, `${rel.replace(/\/$/, '')}/**`);
    if (!hits.length) {
      throw new TsFinetuneError('FILE_NOT_FOUND', `Unable to find any data file matching '${p}' in the Hub dataset ${repoId} (split '${split}')`, { pattern: p, repoId, split });
    }
    out.push(...hits);
  }
  return [...new Set(out)];
}

/** Keep data files (a known extension), as datasets' allowed_extensions filter does. */
export function onlyDataFiles(files: readonly string[]): string[] {
  return files.filter((f) => builderForFile(f) !== undefined);
}
