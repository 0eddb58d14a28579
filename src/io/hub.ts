// Getting files and model folders from the Hugging Face Hub, through the shared HF cache:
// `hubDownloadFile` (one file → its path in snapshots/<sha>/), `listRepoFiles`, and `resolveModelDir`
// (a local folder, or a Hub id downloaded by patterns into the cache). Online, the revision is resolved to a
// commit sha, recorded in refs/, and only missing blobs are fetched. With HF_HUB_OFFLINE=1, or when the Hub
// cannot be reached, everything is answered from the cache; what the cache lacks is a HUB_OFFLINE error that
// says which repo, revision and cache folder were tried, and how to fix it.
// Not here: cache paths and env (hf-cache.ts), the HTTP side (hub-download.ts), dataset loading (src/data).
// Follows huggingface_hub `hf_hub_download`, `snapshot_download` (allow_patterns), `list_repo_files`.

import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TsFinetuneError } from '../core/index.js';
import {
  cachedCommit,
  cachedFile,
  checkRelativePath,
  checkRepoId,
  isOffline,
  isValidRepoId,
  listSnapshotFiles,
  writeRef,
  type HubOptions,
} from './hf-cache.js';
import { downloadToCache, fetchCommitSha, fetchFileList, hubContext, hubError, isUnreachable, type HubContext, type ProgressFn } from './hub-download.js';
import { readJsonObject } from './json-file.js';

/** Files `resolveModelDir` fetches by default: configs, weights, chat templates, tokenizers. */
export const DEFAULT_MODEL_PATTERNS: readonly string[] = ['*.json', '*.safetensors', '*.jinja', 'tokenizer.*', 'merges.txt'];

/** fnmatch-style glob as huggingface_hub's `filter_repo_objects`: `*` also crosses `/`; `dir/` means `dir/*`. */
export function matchesPattern(file: string, pattern: string): boolean {
  const p = pattern.endsWith('/') ? `${pattern}*` : pattern;
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = p.indexOf(']', i + 2);
      if (close === -1) re += '\\[';
      else {
        let body = p.slice(i + 1, close);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's').test(file);
}

function offlineError(ctx: HubContext, reason: string, what: string, extra = ''): TsFinetuneError {
  return new TsFinetuneError(
    'HUB_OFFLINE',
    `${reason}, and ${what} of ${ctx.repoType} '${ctx.repoId}' (revision '${ctx.revision}') is not in the HF cache ${ctx.cacheDir}.${extra} ` +
      'To fix: connect to the network (and unset HF_HUB_OFFLINE) to download it; or point HF_HUB_CACHE / HF_HOME at a cache ' +
      'that has it (e.g. one filled on a connected machine); or pass the path of a local folder instead of a Hub id.',
    { repoId: ctx.repoId, repoType: ctx.repoType, revision: ctx.revision, cacheDir: ctx.cacheDir },
  );
}

const OFFLINE_REASON = 'HF_HUB_OFFLINE is set';
const unreachableReason = (ctx: HubContext, e: unknown): string =>
  `The Hub at ${ctx.hubUrl} cannot be reached (${e instanceof Error ? e.message : String(e)})`;

/**
 * Resolve the revision online, or report why not. `undefined` means: use the cache (offline, or unreachable).
 * The reason is kept for the error message when the cache has nothing either.
 */
async function onlineSha(ctx: HubContext): Promise<{ sha: string } | { offlineReason: string }> {
  if (isOffline()) return { offlineReason: OFFLINE_REASON };
  try {
    const sha = await fetchCommitSha(ctx);
    await writeRef(ctx.repoDir, ctx.revision, sha);
    return { sha };
  } catch (e) {
    if (isUnreachable(e)) return { offlineReason: unreachableReason(ctx, e) };
    throw hubError(e, ctx, 'resolving the revision');
  }
}

/**
 * Download one file of a Hub repo into the HF cache (or find it there) and return its local path,
 * `<cache>/<repo folder>/snapshots/<sha>/<filename>`.
 */
export async function hubDownloadFile(opts: HubOptions & { repoId: string; filename: string; onProgress?: ProgressFn }): Promise<string> {
  checkRepoId(opts.repoId);
  checkRelativePath(opts.filename, 'filename');
  const ctx = hubContext(opts.repoId, opts);
  const cacheOpts = { revision: ctx.revision, repoType: ctx.repoType, cacheDir: ctx.cacheDir };
  // A commit sha never moves: a cached copy is current, no request needed.
  if (/^[0-9a-f]{40}$/.test(ctx.revision)) {
    const hit = await cachedFile(ctx.repoId, opts.filename, cacheOpts);
    if (hit) return hit;
  }
  const online = await onlineSha(ctx);
  if ('sha' in online) {
    try {
      return await downloadToCache(ctx, online.sha, opts.filename, opts.onProgress);
    } catch (e) {
      if (!isUnreachable(e)) throw hubError(e, ctx, `downloading '${opts.filename}'`);
      const hit = await cachedFile(ctx.repoId, opts.filename, cacheOpts);
      if (hit) return hit;
      throw offlineError(ctx, unreachableReason(ctx, e), `file '${opts.filename}'`);
    }
  }
  const hit = await cachedFile(ctx.repoId, opts.filename, cacheOpts);
  if (hit) return hit;
  throw offlineError(ctx, online.offlineReason, `file '${opts.filename}'`);
}

/** Python's name for hubDownloadFile (`hf_hub_download`), as listed in API.md. */
export const hfHubDownload = hubDownloadFile;

/** Every file path in a repo (sorted). Online: the Hub's tree API; offline: the files of the cached snapshot. */
export async function listRepoFiles(opts: HubOptions & { repoId: string }): Promise<string[]> {
  checkRepoId(opts.repoId);
  const ctx = hubContext(opts.repoId, opts);
  const online = await onlineSha(ctx);
  if ('sha' in online) {
    try {
      return await fetchFileList(ctx, online.sha);
    } catch (e) {
      if (!isUnreachable(e)) throw hubError(e, ctx, 'listing files');
      return listCached(ctx, unreachableReason(ctx, e));
    }
  }
  return listCached(ctx, online.offlineReason);
}

async function listCached(ctx: HubContext, reason: string): Promise<string[]> {
  const sha = await cachedCommit(ctx.repoId, { revision: ctx.revision, repoType: ctx.repoType, cacheDir: ctx.cacheDir });
  if (sha === undefined) throw offlineError(ctx, reason, 'the file list');
  return listSnapshotFiles(path.join(ctx.repoDir, 'snapshots', sha));
}

export interface ResolveModelDirOptions extends HubOptions {
  /** Globs of files to fetch from the Hub (default DEFAULT_MODEL_PATTERNS). Ignored for local folders. */
  allowPatterns?: string[];
  /** Parse config.json if present and fail with INVALID_CONFIG on bad JSON (default true). */
  validateConfig?: boolean;
  onProgress?: (file: string, loaded: number, total: number | undefined) => void;
}

async function statOrUndefined(p: string): Promise<import('node:fs').Stats | undefined> {
  try {
    return await fsp.stat(p);
  } catch {
    return undefined;
  }
}

/**
 * A model folder on disk: an existing local folder is returned as is (absolute); otherwise `idOrDir` is a Hub
 * repo id whose matching files are downloaded into the HF cache, and the snapshot folder is returned.
 */
export async function resolveModelDir(idOrDir: string, opts: ResolveModelDirOptions = {}): Promise<string> {
  const dir = await resolveDir(idOrDir, opts);
  if (opts.validateConfig !== false) {
    const config = path.join(dir, 'config.json');
    if (await statOrUndefined(config)) await readJsonObject(config);
  }
  return dir;
}

async function resolveDir(idOrDir: string, opts: ResolveModelDirOptions): Promise<string> {
  const local = path.resolve(idOrDir.startsWith('~/') ? path.join(os.homedir(), idOrDir.slice(2)) : idOrDir);
  const st = await statOrUndefined(local);
  if (st?.isDirectory()) return local;
  if (st) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `${local} is a file; a model is a folder (or a Hub repo id)`, { path: local });
  }
  const looksLikePath = /^(?:\.{1,2}[\\/]|[\\/]|~)/.test(idOrDir) || idOrDir.includes('\\');
  if (looksLikePath || !isValidRepoId(idOrDir)) {
    throw new TsFinetuneError('FILE_NOT_FOUND', `Model folder not found: ${local} (and '${idOrDir}' is not a Hub repo id)`, { path: local });
  }

  const ctx = hubContext(idOrDir, opts);
  const notLocal = ` (There is no local folder ${local} either.)`;
  const online = await onlineSha(ctx);
  if ('sha' in online) {
    try {
      const patterns = opts.allowPatterns ?? DEFAULT_MODEL_PATTERNS;
      const files = (await fetchFileList(ctx, online.sha)).filter((f) => patterns.some((p) => matchesPattern(f, p)));
      for (const f of files) {
        await downloadToCache(ctx, online.sha, f, opts.onProgress ? (l, t) => opts.onProgress!(f, l, t) : undefined);
      }
      const snap = path.join(ctx.repoDir, 'snapshots', online.sha);
      await fsp.mkdir(snap, { recursive: true });
      return snap;
    } catch (e) {
      if (!isUnreachable(e)) throw hubError(e, ctx, 'downloading the model');
      return cachedDir(ctx, unreachableReason(ctx, e), notLocal);
    }
  }
  return cachedDir(ctx, online.offlineReason, notLocal);
}

async function cachedDir(ctx: HubContext, reason: string, extra: string): Promise<string> {
  const sha = await cachedCommit(ctx.repoId, { revision: ctx.revision, repoType: ctx.repoType, cacheDir: ctx.cacheDir });
  if (sha === undefined) throw offlineError(ctx, reason, 'a snapshot', extra);
  return path.join(ctx.repoDir, 'snapshots', sha);
}
