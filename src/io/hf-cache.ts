// The Hugging Face cache on disk and the environment that configures it, shared with Python's
// huggingface_hub so a model downloaded by either is found by both:
//   <cache>/models--org--name/blobs/<etag>            file contents, named by ETag (sha256 for LFS, git sha1 else)
//   <cache>/models--org--name/refs/<revision>          the commit sha a branch/tag pointed at when last resolved
//   <cache>/models--org--name/snapshots/<sha>/<path>   relative symlinks into blobs/
// (`datasets--org--name`, `spaces--org--name` likewise). Here: paths, env vars, and resolving a revision to a
// cached snapshot without the network. Not here: downloading (hub.ts).
// Follows huggingface_hub `constants.py` (HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_TOKEN, HF_ENDPOINT) and
// `file_download.py` (`try_to_load_from_cache`, `_cache_commit_hash_for_specific_revision`).

import { readFileSync, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TsFinetuneError } from '../core/index.js';

export type RepoType = 'model' | 'dataset' | 'space';

export interface HubOptions {
  /** Branch, tag or 40-hex commit sha. Default `main`. */
  revision?: string;
  /** Cache root; default from HF_HUB_CACHE / HF_HOME (see hubCacheDir). */
  cacheDir?: string;
  /** Access token (`hf_…`); default HF_TOKEN, then the token file `huggingface-cli login` writes. */
  token?: string;
  repoType?: RepoType;
  /** Hub URL; default HF_ENDPOINT, then https://huggingface.co. */
  hubUrl?: string;
}

export const DEFAULT_HUB_URL = 'https://huggingface.co';
export const COMMIT_SHA_RE = /^[0-9a-f]{40}$/;

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`. */
export function hfHome(): string {
  const home = env('HF_HOME');
  if (home) return expandHome(home);
  return path.join(expandHome(env('XDG_CACHE_HOME') ?? '~/.cache'), 'huggingface');
}

/** The hub cache: the argument, else `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`. */
export function hubCacheDir(cacheDir?: string): string {
  if (cacheDir) return path.resolve(expandHome(cacheDir));
  const c = env('HF_HUB_CACHE') ?? env('HUGGINGFACE_HUB_CACHE');
  return path.resolve(c ? expandHome(c) : path.join(hfHome(), 'hub'));
}

/** `HF_HUB_OFFLINE` set to 1 / true / yes / on (any case), as huggingface_hub's `_is_true`. */
export function isOffline(): boolean {
  const v = env('HF_HUB_OFFLINE');
  return v !== undefined && ['1', 'ON', 'YES', 'TRUE'].includes(v.toUpperCase());
}

/** The Hub URL without a trailing slash: the argument, else `HF_ENDPOINT`, else https://huggingface.co. */
export function hubEndpoint(hubUrl?: string): string {
  return (hubUrl ?? env('HF_ENDPOINT') ?? DEFAULT_HUB_URL).replace(/\/+$/, '');
}

/** The argument, else `HF_TOKEN`, else the token file (`HF_TOKEN_PATH`, default `HF_HOME/token`). */
export function hubToken(token?: string): string | undefined {
  if (token) return token;
  const t = env('HF_TOKEN') ?? env('HUGGING_FACE_HUB_TOKEN');
  if (t) return t.trim();
  try {
    const fromFile = readFileSync(expandHome(env('HF_TOKEN_PATH') ?? path.join(hfHome(), 'token')), 'utf8').trim();
    return fromFile === '' ? undefined : fromFile;
  } catch {
    return undefined;
  }
}

/** huggingface_hub's repo id rule: `name` or `org/name`, [\w.-], no `--` or `..`, at most 96 per part. */
export function isValidRepoId(repoId: string): boolean {
  return /^(?:[\w.-]{1,96}\/)?[\w.-]{1,96}$/.test(repoId) && !repoId.includes('--') && !repoId.includes('..') && !/^[.-]|[.-]$/.test(repoId);
}

export function checkRepoId(repoId: string): void {
  if (!isValidRepoId(repoId)) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `'${repoId}' is not a valid Hub repo id (expected 'name' or 'org/name' of letters, digits, '-', '_', '.')`, {
      repoId,
    });
  }
}

/** `models--org--name`, `datasets--org--name`, `spaces--org--name`. */
export function repoFolderName(repoId: string, repoType: RepoType = 'model'): string {
  return [`${repoType}s`, ...repoId.split('/')].join('--');
}

export function repoCacheDir(repoId: string, repoType: RepoType = 'model', cacheDir?: string): string {
  return path.join(hubCacheDir(cacheDir), repoFolderName(repoId, repoType));
}

/** Refuse revisions and file names that would step outside the cache folder. */
export function checkRelativePath(p: string, what: string): void {
  const parts = p.split(/[\\/]/);
  if (p === '' || path.isAbsolute(p) || /^[A-Za-z]:|^[\\/]/.test(p) || parts.includes('..') || parts.includes('')) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `Invalid ${what} '${p}': must be a relative path without '..' or empty parts`, { [what]: p });
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await fsp.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** The commit sha `revision` resolves to in the cache, or undefined. A sha resolves to itself if its snapshot exists. */
export async function cachedCommit(repoId: string, opts: { revision?: string; repoType?: RepoType; cacheDir?: string } = {}): Promise<string | undefined> {
  const revision = opts.revision ?? 'main';
  checkRelativePath(revision, 'revision');
  const repoDir = repoCacheDir(repoId, opts.repoType, opts.cacheDir);
  if (COMMIT_SHA_RE.test(revision)) return (await isDir(path.join(repoDir, 'snapshots', revision))) ? revision : undefined;
  let sha: string;
  try {
    sha = (await fsp.readFile(path.join(repoDir, 'refs', revision), 'utf8')).trim();
  } catch {
    return undefined;
  }
  if (!COMMIT_SHA_RE.test(sha)) return undefined;
  return (await isDir(path.join(repoDir, 'snapshots', sha))) ? sha : undefined;
}

/** `snapshots/<sha>` for a cached revision, or undefined. */
export async function cachedSnapshotDir(repoId: string, opts: { revision?: string; repoType?: RepoType; cacheDir?: string } = {}): Promise<string | undefined> {
  const sha = await cachedCommit(repoId, opts);
  return sha === undefined ? undefined : path.join(repoCacheDir(repoId, opts.repoType, opts.cacheDir), 'snapshots', sha);
}

/** A cached file's path, or undefined (a symlink whose blob is gone counts as missing). */
export async function cachedFile(
  repoId: string,
  filename: string,
  opts: { revision?: string; repoType?: RepoType; cacheDir?: string } = {},
): Promise<string | undefined> {
  checkRelativePath(filename, 'filename');
  const snap = await cachedSnapshotDir(repoId, opts);
  if (snap === undefined) return undefined;
  const p = path.join(snap, filename);
  try {
    return (await fsp.stat(p)).isFile() ? p : undefined;
  } catch {
    return undefined;
  }
}

/** Files under a snapshot folder, as repo paths with `/`, sorted; broken symlinks are skipped. */
export async function listSnapshotFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const ent of await fsp.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel === '' ? ent.name : `${rel}/${ent.name}`;
      let st;
      try {
        st = await fsp.stat(path.join(dir, r));
      } catch {
        continue;
      }
      if (st.isDirectory()) await walk(r);
      else if (st.isFile()) out.push(r);
    }
  };
  await walk('');
  return out.sort();
}

/** Record that `revision` pointed at `sha` (what lets offline runs resolve `main` later). */
export async function writeRef(repoDir: string, revision: string, sha: string): Promise<void> {
  if (revision === sha) return;
  checkRelativePath(revision, 'revision');
  const ref = path.join(repoDir, 'refs', revision);
  await fsp.mkdir(path.dirname(ref), { recursive: true });
  const tmp = `${ref}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`;
  await fsp.writeFile(tmp, sha);
  await fsp.rename(tmp, ref);
}
