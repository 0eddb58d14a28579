// Talking to the Hub through @huggingface/hub and placing what comes back in the HF cache layout.
// The HTTP protocol (repo info, tree listing, paths-info, resolve URLs, Xet) is the library's; the cache
// placement is ours, because its `downloadFileToCacheDir` puts a branch download under the snapshot of the
// file's *last commit* rather than the repo head, writes no `refs/`, has no progress callback and logs to
// the console. We resolve the revision to the head sha first (and record it in `refs/<revision>`), then
// store blobs by ETag and link them from `snapshots/<sha>/` exactly as huggingface_hub does.
// Not here: the public functions and the offline fallback policy (hub.ts).
// Follows huggingface_hub `file_download.py` (`hf_hub_download`, `_create_symlink`, `.incomplete` blobs).

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { datasetInfo, downloadFile, HubApiError, listFiles, modelInfo, pathsInfo, spaceInfo } from '@huggingface/hub';
import { TsFinetuneError } from '../core/index.js';
import { checkRelativePath, hubCacheDir, hubEndpoint, hubToken, repoCacheDir, type HubOptions, type RepoType } from './hf-cache.js';

export interface HubContext {
  repoId: string;
  repoType: RepoType;
  revision: string;
  hubUrl: string;
  accessToken: string | undefined;
  cacheDir: string;
  /** `<cache>/models--org--name` */
  repoDir: string;
}

export function hubContext(repoId: string, opts: HubOptions = {}): HubContext {
  const repoType = opts.repoType ?? 'model';
  const accessToken = hubToken(opts.token);
  if (accessToken !== undefined && !accessToken.startsWith('hf_')) {
    throw new TsFinetuneError('INVALID_ARGUMENT', 'The Hugging Face token (token option, HF_TOKEN or the token file) must start with "hf_"', {});
  }
  return {
    repoId,
    repoType,
    revision: opts.revision ?? 'main',
    hubUrl: hubEndpoint(opts.hubUrl),
    accessToken,
    cacheDir: hubCacheDir(opts.cacheDir),
    repoDir: repoCacheDir(repoId, repoType, opts.cacheDir),
  };
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
]);

/** True when the Hub could not be reached at all (as opposed to answering with an error). */
export function isUnreachable(e: unknown): boolean {
  if (e instanceof HubApiError) return e.statusCode >= 500;
  const code = (e as { cause?: { code?: unknown } }).cause?.code ?? (e as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  return e instanceof TypeError && /fetch failed/i.test(e.message);
}

function describe(e: unknown): string {
  const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause;
  const msg = e instanceof Error ? e.message : String(e);
  return cause && typeof cause.code === 'string' ? `${msg} (${cause.code})` : msg;
}

/** Turn a library/HTTP failure into our typed error (network failures are handled by the caller). */
export function hubError(e: unknown, ctx: HubContext, what: string): TsFinetuneError {
  if (e instanceof TsFinetuneError) return e;
  const where = `${ctx.repoType} '${ctx.repoId}' (revision '${ctx.revision}') at ${ctx.hubUrl}`;
  if (e instanceof HubApiError) {
    const hint =
      e.statusCode === 401 || e.statusCode === 403
        ? ctx.accessToken
          ? ' The token was refused: check that it can read this repo (gated repos need their terms accepted on the website).'
          : ' The repo may be private or gated, or may not exist: set HF_TOKEN to a token that can read it.'
        : e.statusCode === 404
          ? ' Check the repo id, repo type and revision.'
          : '';
    return new TsFinetuneError('HUB_ERROR', `Hub request failed while ${what} for ${where}: HTTP ${e.statusCode}: ${e.message}.${hint}`, {
      repoId: ctx.repoId,
      revision: ctx.revision,
      status: e.statusCode,
      url: e.url,
    }, { cause: e });
  }
  return new TsFinetuneError('HUB_ERROR', `Hub request failed while ${what} for ${where}: ${describe(e)}`, {
    repoId: ctx.repoId,
    revision: ctx.revision,
  }, { cause: e });
}

/** The commit sha the revision points at now (one API call). */
export async function fetchCommitSha(ctx: HubContext): Promise<string> {
  const common = { name: ctx.repoId, hubUrl: ctx.hubUrl, revision: ctx.revision, accessToken: ctx.accessToken };
  const info =
    ctx.repoType === 'dataset'
      ? await datasetInfo({ ...common, additionalFields: ['sha'] })
      : ctx.repoType === 'space'
        ? await spaceInfo({ ...common, additionalFields: ['sha'] })
        : await modelInfo({ ...common, additionalFields: ['sha'] });
  const sha = (info as { sha?: unknown }).sha;
  if (typeof sha !== 'string' || !/^[0-9a-f]{40}$/.test(sha)) {
    throw new TsFinetuneError('HUB_ERROR', `The Hub at ${ctx.hubUrl} returned no commit sha for ${ctx.repoId}@${ctx.revision}`, {
      repoId: ctx.repoId,
      revision: ctx.revision,
    });
  }
  return sha;
}

/** Every file path in the repo at `sha` (the tree API, recursive, paginated by the library). */
export async function fetchFileList(ctx: HubContext, sha: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of listFiles({
    repo: { type: ctx.repoType, name: ctx.repoId },
    recursive: true,
    revision: sha,
    hubUrl: ctx.hubUrl,
    accessToken: ctx.accessToken,
  })) {
    if (entry.type === 'file') out.push(entry.path);
  }
  return out.sort();
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.stat(p);
    return true;
  } catch {
    return false;
  }
}

async function link(blob: string, pointer: string): Promise<void> {
  await fsp.mkdir(path.dirname(pointer), { recursive: true });
  await fsp.rm(pointer, { force: true });
  try {
    // Relative, so the cache folder can be moved (huggingface_hub does the same).
    await fsp.symlink(path.relative(path.dirname(pointer), blob), pointer);
  } catch {
    await fsp.copyFile(blob, pointer);
  }
}

export type ProgressFn = (loaded: number, total: number | undefined) => void;

/**
 * Make `snapshots/<sha>/<filename>` exist, downloading its blob if the cache lacks it. The blob is streamed
 * to a unique `.incomplete` file and renamed when its size checks out, so a crash or a concurrent download
 * never leaves a partial blob under the real name.
 */
export async function downloadToCache(ctx: HubContext, sha: string, filename: string, onProgress?: ProgressFn): Promise<string> {
  checkRelativePath(filename, 'filename');
  const pointer = path.join(ctx.repoDir, 'snapshots', sha, filename);
  if (await exists(pointer)) return pointer;

  const repo = { type: ctx.repoType, name: ctx.repoId };
  const infos = await pathsInfo({ repo, paths: [filename], revision: sha, hubUrl: ctx.hubUrl, accessToken: ctx.accessToken });
  const info = infos.find((i) => i.path === filename && i.type === 'file');
  const etag = info?.lfs?.oid ?? info?.xetHash ?? info?.oid;
  if (!info || etag === undefined) {
    throw new TsFinetuneError('FILE_NOT_FOUND', `File '${filename}' is not in ${ctx.repoType} '${ctx.repoId}' at revision '${ctx.revision}' (${sha}) on ${ctx.hubUrl}`, {
      repoId: ctx.repoId,
      revision: ctx.revision,
      filename,
    });
  }
  checkRelativePath(etag, 'etag');
  const blobPath = path.join(ctx.repoDir, 'blobs', etag);
  if (await exists(blobPath)) {
    await link(blobPath, pointer);
    return pointer;
  }

  const total = info.lfs?.size ?? info.size;
  const blob = await downloadFile({ repo, path: filename, revision: sha, hubUrl: ctx.hubUrl, accessToken: ctx.accessToken });
  if (!blob) {
    throw new TsFinetuneError('FILE_NOT_FOUND', `File '${filename}' is not in ${ctx.repoType} '${ctx.repoId}' at revision '${ctx.revision}' on ${ctx.hubUrl}`, {
      repoId: ctx.repoId,
      revision: ctx.revision,
      filename,
    });
  }
  await fsp.mkdir(path.dirname(blobPath), { recursive: true });
  const incomplete = `${blobPath}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.incomplete`;
  const fh = await fsp.open(incomplete, 'w');
  let loaded = 0;
  try {
    const reader = blob.stream().getReader();
    onProgress?.(0, total);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let off = 0;
      while (off < value.length) off += (await fh.write(value, off, value.length - off)).bytesWritten;
      loaded += value.length;
      onProgress?.(loaded, total);
    }
    await fh.close();
    if (typeof total === 'number' && loaded !== total) {
      throw new TsFinetuneError('HUB_ERROR', `Download of '${filename}' from ${ctx.repoId} stopped at ${loaded} of ${total} bytes`, {
        repoId: ctx.repoId,
        filename,
        loaded,
        total,
      });
    }
    await fsp.rename(incomplete, blobPath);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(incomplete, { force: true });
    // WebBlob aborts its stream with a bare string reason; give it a shape.
    throw typeof e === 'string' ? new Error(e) : e;
  }
  await link(blobPath, pointer);
  return pointer;
}
