// The HF cache without a network: env var resolution, and a cache laid out by hand the way Python's
// huggingface_hub leaves it, read with HF_HUB_OFFLINE=1.
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  cachedFile,
  hubCacheDir,
  hubDownloadFile,
  hubEndpoint,
  hubToken,
  isOffline,
  isValidRepoId,
  listRepoFiles,
  matchesPattern,
  repoFolderName,
  resolveModelDir,
} from '../../src/io/index.js';

const ENV_KEYS = ['HF_HUB_OFFLINE', 'HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_TOKEN_PATH', 'HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_ENDPOINT', 'XDG_CACHE_HOME', 'HOME'];
let saved: Record<string, string | undefined>;
let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-cache-'));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  for (const k of ENV_KEYS) if (k !== 'HOME') delete process.env[k];
});
afterEach(() => {
  for (const k of ENV_KEYS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

describe('cache location and environment', () => {
  it('HF_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME, then ~/.cache/huggingface/hub', () => {
    process.env['HOME'] = '/home/u';
    expect(hubCacheDir()).toBe('/home/u/.cache/huggingface/hub');
    process.env['XDG_CACHE_HOME'] = '/xdg';
    expect(hubCacheDir()).toBe('/xdg/huggingface/hub');
    process.env['HF_HOME'] = '/hf';
    expect(hubCacheDir()).toBe('/hf/hub');
    process.env['HF_HUB_CACHE'] = '~/hubcache';
    expect(hubCacheDir()).toBe('/home/u/hubcache');
    expect(hubCacheDir('/explicit')).toBe('/explicit');
  });

  it('HF_HUB_OFFLINE truthy values, HF_ENDPOINT, HF_TOKEN and the token file', async () => {
    expect(isOffline()).toBe(false);
    for (const v of ['1', 'true', 'YES', 'on']) {
      process.env['HF_HUB_OFFLINE'] = v;
      expect(isOffline()).toBe(true);
    }
    for (const v of ['0', 'false', '']) {
      process.env['HF_HUB_OFFLINE'] = v;
      expect(isOffline()).toBe(false);
    }
    expect(hubEndpoint()).toBe('https://huggingface.co');
    process.env['HF_ENDPOINT'] = 'https://mirror.example/';
    expect(hubEndpoint()).toBe('https://mirror.example');
    expect(hubEndpoint('http://127.0.0.1:9')).toBe('http://127.0.0.1:9');

    process.env['HF_HOME'] = path.join(tmp, 'home');
    expect(hubToken()).toBeUndefined();
    await fsp.mkdir(process.env['HF_HOME'], { recursive: true });
    await fsp.writeFile(path.join(process.env['HF_HOME'], 'token'), 'hf_fromfile\n');
    expect(hubToken()).toBe('hf_fromfile');
    process.env['HF_TOKEN'] = 'hf_env';
    expect(hubToken()).toBe('hf_env');
    expect(hubToken('hf_arg')).toBe('hf_arg');
  });

  it('repo folder names and repo id rules', () => {
    expect(repoFolderName('meta-llama/Llama-2-7b-chat-hf')).toBe('models--meta-llama--Llama-2-7b-chat-hf');
    expect(repoFolderName('jtatman/python-code-dataset-500k', 'dataset')).toBe('datasets--jtatman--python-code-dataset-500k');
    expect(repoFolderName('gpt2')).toBe('models--gpt2');
    for (const ok of ['gpt2', 'org/name', 'Org_1/na.me-2']) expect(isValidRepoId(ok), ok).toBe(true);
    for (const bad of ['a/b/c', 'org--x/y', 'org/..', '', '/abs', 'has space/x', 'org/name-']) expect(isValidRepoId(bad), bad).toBe(false);
  });

  it('fnmatch patterns as huggingface_hub: * crosses /, trailing / means the folder', () => {
    expect(matchesPattern('config.json', '*.json')).toBe(true);
    expect(matchesPattern('sub/x.json', '*.json')).toBe(true);
    expect(matchesPattern('tokenizer.model', 'tokenizer.*')).toBe(true);
    expect(matchesPattern('model-00001-of-00002.safetensors', 'model-0000?-of-*.safetensors')).toBe(true);
    expect(matchesPattern('pytorch_model.bin', '*.safetensors')).toBe(false);
    expect(matchesPattern('onnx/model.onnx', 'onnx/')).toBe(true);
    expect(matchesPattern('a.json', '[ab].json')).toBe(true);
    expect(matchesPattern('c.json', '[!ab].json')).toBe(true);
    expect(matchesPattern('axjson', 'a.json')).toBe(false);
  });
});

describe('a pre-filled cache with HF_HUB_OFFLINE=1', () => {
  const SHA = '0123456789abcdef0123456789abcdef01234567';
  const OLD = 'fedcba9876543210fedcba9876543210fedcba98';
  let cache: string;

  // The layout huggingface_hub leaves: blobs, refs/main, snapshots/<sha>/ with relative symlinks.
  beforeAll(async () => {
    cache = path.join(tmp, 'prefilled');
    const repo = path.join(cache, 'models--org--cached');
    await fsp.mkdir(path.join(repo, 'blobs'), { recursive: true });
    await fsp.mkdir(path.join(repo, 'refs'), { recursive: true });
    await fsp.writeFile(path.join(repo, 'refs', 'main'), SHA); // no trailing newline, as Python writes it
    await fsp.writeFile(path.join(repo, 'refs', 'v0'), `${OLD}\n`);
    await fsp.writeFile(path.join(repo, 'blobs', 'cfgoid'), '{"model_type":"llama"}');
    await fsp.writeFile(path.join(repo, 'blobs', 'oldcfg'), '{"model_type":"mistral"}');
    for (const [sha, blob] of [
      [SHA, 'cfgoid'],
      [OLD, 'oldcfg'],
    ] as const) {
      const snap = path.join(repo, 'snapshots', sha);
      await fsp.mkdir(path.join(snap, 'sub'), { recursive: true });
      await fsp.symlink(path.join('..', '..', 'blobs', blob), path.join(snap, 'config.json'));
    }
    // A link whose blob is gone (an interrupted Python download) counts as missing.
    await fsp.symlink(path.join('..', '..', '..', 'blobs', 'gone'), path.join(repo, 'snapshots', SHA, 'sub', 'broken.json'));
  });
  beforeEach(() => {
    process.env['HF_HUB_OFFLINE'] = '1';
    process.env['HF_HUB_CACHE'] = cache;
    // Any request would fail loudly: there is no server here.
    process.env['HF_ENDPOINT'] = 'http://127.0.0.1:9';
  });

  it('resolves refs/<rev> → snapshots/<sha> for branches, tags and commit shas', async () => {
    const snap = path.join(cache, 'models--org--cached', 'snapshots');
    expect(await resolveModelDir('org/cached')).toBe(path.join(snap, SHA));
    expect(await resolveModelDir('org/cached', { revision: 'v0' })).toBe(path.join(snap, OLD));
    expect(await resolveModelDir('org/cached', { revision: OLD })).toBe(path.join(snap, OLD));
    const cfg = await hubDownloadFile({ repoId: 'org/cached', filename: 'config.json', revision: 'v0' });
    expect(await fsp.readFile(cfg, 'utf8')).toBe('{"model_type":"mistral"}');
    expect(await listRepoFiles({ repoId: 'org/cached' })).toEqual(['config.json']);
    expect(await cachedFile('org/cached', 'sub/broken.json', { cacheDir: cache })).toBeUndefined();
  });

  it('anything not cached is HUB_OFFLINE with the repo, revision, cache folder and fix', async () => {
    for (const attempt of [
      () => resolveModelDir('org/absent'),
      () => resolveModelDir('org/cached', { revision: 'v9' }),
      () => resolveModelDir('org/cached', { revision: '9'.repeat(40) }),
      () => hubDownloadFile({ repoId: 'org/cached', filename: 'model.safetensors' }),
      () => hubDownloadFile({ repoId: 'org/cached', filename: 'sub/broken.json' }),
      () => listRepoFiles({ repoId: 'org/ds', repoType: 'dataset' }),
    ]) {
      const e = (await attempt().catch((x: unknown) => x)) as Error & { code: string };
      expect(e.code).toBe('HUB_OFFLINE');
      expect(e.message).toContain('HF_HUB_OFFLINE is set');
      expect(e.message).toContain(cache);
      expect(e.message).toMatch(/revision '[^']+'/);
      expect(e.message).toContain('To fix');
    }
  });
});
