// Hub downloads against the fake Hub (test/helpers/fake-hub.ts) on 127.0.0.1: cache layout, reuse,
// patterns, auth, errors, and the fallback to the cache when the Hub is unreachable.
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/index.js';
import { hfHubDownload, hubDownloadFile, listRepoFiles, resolveModelDir, serializeSafetensors, SafetensorsFile } from '../../src/io/index.js';
import { startFakeHub, type FakeHub } from '../helpers/fake-hub.js';

const SHA = 'a'.repeat(40);
const DS_SHA = 'b'.repeat(40);
const weights = serializeSafetensors({ 'model.norm.weight': Tensor.fromNumbers([1, 2, 3], [3]) }, { format: 'pt' });
const files = {
  'config.json': JSON.stringify({ model_type: 'llama', hidden_size: 8 }),
  'model.safetensors': weights,
  'tokenizer.json': '{"version":"1.0"}',
  'tokenizer_config.json': '{}',
  'chat_template.jinja': '{{ messages }}',
  'README.md': '# tiny',
  'pytorch_model.bin': new Uint8Array(64),
  'sub/extra.json': '[]',
};

const ENV_KEYS = ['HF_HUB_OFFLINE', 'HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_TOKEN_PATH', 'HF_HOME', 'HF_HUB_CACHE', 'HF_ENDPOINT'];
let saved: Record<string, string | undefined>;
let hub: FakeHub;
let cacheDir: string;
let tmp: string;

beforeAll(async () => {
  hub = await startFakeHub({
    repos: [
      { repoId: 'org/tiny-llama', sha: SHA, files, revisions: ['v1'] },
      { repoId: 'org/ds', repoType: 'dataset', sha: DS_SHA, files: { 'data/train-00000-of-00001.parquet': new Uint8Array([80, 65, 82, 49]), 'README.md': 'ds' } },
      { repoId: 'org/private', sha: 'c'.repeat(40), files: { 'config.json': '{}' }, token: 'hf_secret' },
      { repoId: 'org/badconfig', sha: 'd'.repeat(40), files: { 'config.json': '{"model_type": "llama",' } },
    ],
  });
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-hub-'));
});
afterAll(async () => {
  await hub.close();
  await fsp.rm(tmp, { recursive: true, force: true });
});
beforeEach(async () => {
  saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  for (const k of ENV_KEYS) delete process.env[k];
  process.env['HF_TOKEN_PATH'] = path.join(tmp, 'no-token-file');
  cacheDir = await fsp.mkdtemp(path.join(tmp, 'cache-'));
  hub.requests.length = 0;
});
afterEach(() => {
  for (const k of ENV_KEYS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

const gitOid = (s: string | Uint8Array): string => {
  const b = Buffer.from(s);
  return createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
};

async function closedPortUrl(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

describe('hubDownloadFile', () => {
  it('downloads into the HF cache layout: blobs by ETag, refs/main, snapshot symlinks', async () => {
    const progress: [number, number | undefined][] = [];
    const p = await hubDownloadFile({ repoId: 'org/tiny-llama', filename: 'config.json', hubUrl: hub.url, cacheDir, onProgress: (l, t) => progress.push([l, t]) });
    const repoDir = path.join(cacheDir, 'models--org--tiny-llama');
    expect(p).toBe(path.join(repoDir, 'snapshots', SHA, 'config.json'));
    expect(await fsp.readFile(p, 'utf8')).toBe(files['config.json']);
    expect(await fsp.readlink(p)).toBe(path.join('..', '..', 'blobs', gitOid(files['config.json'])));
    expect((await fsp.readFile(path.join(repoDir, 'refs', 'main'), 'utf8')).trim()).toBe(SHA);
    expect(progress.at(-1)).toEqual([files['config.json'].length, files['config.json'].length]);

    // LFS files are stored under their sha256, and are real safetensors afterwards.
    const w = await hubDownloadFile({ repoId: 'org/tiny-llama', filename: 'model.safetensors', hubUrl: hub.url, cacheDir });
    const sha256 = createHash('sha256').update(weights).digest('hex');
    expect(await fsp.readlink(w)).toBe(path.join('..', '..', 'blobs', sha256));
    const f = await SafetensorsFile.open(w);
    expect(f.keys()).toEqual(['model.norm.weight']);
    await f.close();
    expect((await fsp.readdir(path.join(repoDir, 'blobs'))).sort()).toEqual([gitOid(files['config.json']), sha256].sort());
  });

  it('reuses the cache: a branch costs one revision lookup, a commit sha no request at all', async () => {
    await hubDownloadFile({ repoId: 'org/tiny-llama', filename: 'config.json', hubUrl: hub.url, cacheDir });
    hub.requests.length = 0;
    await hubDownloadFile({ repoId: 'org/tiny-llama', filename: 'config.json', hubUrl: hub.url, cacheDir });
    expect(hub.requests.map((r) => r.url.split('?')[0])).toEqual(['/api/models/org/tiny-llama/revision/main']);
    hub.requests.length = 0;
    await hubDownloadFile({ repoId: 'org/tiny-llama', filename: 'config.json', hubUrl: hub.url, cacheDir, revision: SHA });
    expect(hub.requests).toEqual([]);
    // Another revision name for the same commit shares the snapshot and records its own ref.
    const v1 = await hubDownloadFile({ repoId: 'org/tiny-llama', filename: 'config.json', hubUrl: hub.url, cacheDir, revision: 'v1' });
    expect(v1).toContain(path.join('snapshots', SHA));
    expect((await fsp.readFile(path.join(cacheDir, 'models--org--tiny-llama', 'refs', 'v1'), 'utf8')).trim()).toBe(SHA);
  });

  it('downloads dataset files into datasets--org--name, and hfHubDownload is the same function', async () => {
    const p = await hfHubDownload({ repoId: 'org/ds', repoType: 'dataset', filename: 'data/train-00000-of-00001.parquet', hubUrl: hub.url, cacheDir });
    expect(p).toBe(path.join(cacheDir, 'datasets--org--ds', 'snapshots', DS_SHA, 'data', 'train-00000-of-00001.parquet'));
    expect([...(await fsp.readFile(p))]).toEqual([80, 65, 82, 49]);
    expect(hfHubDownload).toBe(hubDownloadFile);
  });

  it('uses HF_ENDPOINT and HF_HUB_CACHE when no options are given', async () => {
    process.env['HF_ENDPOINT'] = `${hub.url}/`;
    process.env['HF_HUB_CACHE'] = cacheDir;
    const p = await hubDownloadFile({ repoId: 'org/tiny-llama', filename: 'README.md' });
    expect(p.startsWith(cacheDir)).toBe(true);
  });

  it('sends the token to private repos (option or HF_TOKEN) and explains a 401 without one', async () => {
    await expect(hubDownloadFile({ repoId: 'org/private', filename: 'config.json', hubUrl: hub.url, cacheDir })).rejects.toMatchObject({
      code: 'HUB_ERROR',
      message: expect.stringMatching(/org\/private.*HTTP 401.*set HF_TOKEN/s),
    });
    expect(await hubDownloadFile({ repoId: 'org/private', filename: 'config.json', hubUrl: hub.url, cacheDir, token: 'hf_secret' })).toContain('models--org--private');
    hub.requests.length = 0;
    process.env['HF_TOKEN'] = 'hf_secret';
    await hubDownloadFile({ repoId: 'org/private', filename: 'config.json', hubUrl: hub.url, cacheDir });
    expect(hub.requests.every((r) => r.auth === 'Bearer hf_secret')).toBe(true);
    await expect(hubDownloadFile({ repoId: 'org/private', filename: 'config.json', hubUrl: hub.url, cacheDir, token: 'secret' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it('missing file, unknown repo, unknown revision, bad ids and paths are typed errors', async () => {
    await expect(hubDownloadFile({ repoId: 'org/tiny-llama', filename: 'nope.json', hubUrl: hub.url, cacheDir })).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
      message: expect.stringContaining("'nope.json' is not in model 'org/tiny-llama'"),
    });
    await expect(hubDownloadFile({ repoId: 'org/none', filename: 'config.json', hubUrl: hub.url, cacheDir })).rejects.toMatchObject({
      code: 'HUB_ERROR',
      message: expect.stringContaining("'org/none'"),
    });
    await expect(hubDownloadFile({ repoId: 'org/tiny-llama', filename: 'config.json', revision: 'nobranch', hubUrl: hub.url, cacheDir })).rejects.toMatchObject({
      code: 'HUB_ERROR',
      message: expect.stringContaining("revision 'nobranch'"),
    });
    await expect(hubDownloadFile({ repoId: 'org/a/b', filename: 'x', hubUrl: hub.url, cacheDir })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(hubDownloadFile({ repoId: 'org/tiny-llama', filename: '../../etc/passwd', hubUrl: hub.url, cacheDir })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    // Nothing half-written is left in the cache by the failures.
    const blobs = path.join(cacheDir, 'models--org--tiny-llama', 'blobs');
    expect(await fsp.readdir(blobs).catch(() => [])).toEqual([]);
  });

  it('falls back to the cache when the Hub is unreachable or failing, else HUB_OFFLINE', async () => {
    await hubDownloadFile({ repoId: 'org/tiny-llama', filename: 'config.json', hubUrl: hub.url, cacheDir });
    const dead = await closedPortUrl();
    const p = await hubDownloadFile({ repoId: 'org/tiny-llama', filename: 'config.json', hubUrl: dead, cacheDir });
    expect(p).toBe(path.join(cacheDir, 'models--org--tiny-llama', 'snapshots', SHA, 'config.json'));
    hub.failNext(1);
    expect(await hubDownloadFile({ repoId: 'org/tiny-llama', filename: 'config.json', hubUrl: hub.url, cacheDir })).toBe(p);
    const e = await hubDownloadFile({ repoId: 'org/tiny-llama', filename: 'tokenizer.json', hubUrl: dead, cacheDir }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'HUB_OFFLINE', details: { repoId: 'org/tiny-llama', revision: 'main', cacheDir } });
    expect((e as Error).message).toContain(`The Hub at ${dead} cannot be reached`);
    expect((e as Error).message).toContain("file 'tokenizer.json'");
  });
});

describe('listRepoFiles', () => {
  it('lists the repo online and the cached snapshot offline', async () => {
    expect(await listRepoFiles({ repoId: 'org/tiny-llama', hubUrl: hub.url, cacheDir })).toEqual(Object.keys(files).sort());
    await hubDownloadFile({ repoId: 'org/tiny-llama', filename: 'sub/extra.json', hubUrl: hub.url, cacheDir });
    process.env['HF_HUB_OFFLINE'] = '1';
    hub.requests.length = 0;
    expect(await listRepoFiles({ repoId: 'org/tiny-llama', hubUrl: hub.url, cacheDir })).toEqual(['sub/extra.json']);
    expect(hub.requests).toEqual([]);
    await expect(listRepoFiles({ repoId: 'org/ds', repoType: 'dataset', hubUrl: hub.url, cacheDir })).rejects.toMatchObject({ code: 'HUB_OFFLINE' });
  });
});

describe('resolveModelDir', () => {
  it('downloads the default patterns only and returns the snapshot folder', async () => {
    const seen = new Set<string>();
    const dir = await resolveModelDir('org/tiny-llama', { hubUrl: hub.url, cacheDir, onProgress: (f) => seen.add(f) });
    expect(dir).toBe(path.join(cacheDir, 'models--org--tiny-llama', 'snapshots', SHA));
    const got = (await fsp.readdir(dir, { recursive: true })).map(String).sort();
    expect(got).toEqual(['chat_template.jinja', 'config.json', 'model.safetensors', 'sub', 'sub/extra.json', 'tokenizer.json', 'tokenizer_config.json']);
    expect([...seen].sort()).toEqual(got.filter((f) => f !== 'sub'));
    // Second time: revision lookup + listing, no file downloads.
    hub.requests.length = 0;
    expect(await resolveModelDir('org/tiny-llama', { hubUrl: hub.url, cacheDir })).toBe(dir);
    expect(hub.requests.filter((r) => r.url.includes('/resolve/') || r.url.includes('paths-info'))).toEqual([]);
  });

  it('honours allowPatterns', async () => {
    const dir = await resolveModelDir('org/tiny-llama', { hubUrl: hub.url, cacheDir, allowPatterns: ['config.json', '*.md'] });
    expect((await fsp.readdir(dir)).sort()).toEqual(['README.md', 'config.json']);
  });

  it('returns an existing local folder as is, and rejects files and missing paths', async () => {
    const local = path.join(tmp, 'local-model');
    await fsp.mkdir(local, { recursive: true });
    await fsp.writeFile(path.join(local, 'config.json'), '{"model_type":"llama"}');
    expect(await resolveModelDir(local)).toBe(local);
    expect(await resolveModelDir(path.relative(process.cwd(), local))).toBe(local);
    await expect(resolveModelDir(path.join(local, 'config.json'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(resolveModelDir('./no/such/dir')).rejects.toMatchObject({ code: 'FILE_NOT_FOUND', message: expect.stringContaining('no/such/dir') });
  });

  it('a non-JSON config.json is INVALID_CONFIG naming the file, local or from the Hub', async () => {
    const local = path.join(tmp, 'bad-local');
    await fsp.mkdir(local, { recursive: true });
    await fsp.writeFile(path.join(local, 'config.json'), '{"hidden_size": 8,,}');
    await expect(resolveModelDir(local)).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
      message: expect.stringContaining(`${path.join(local, 'config.json')} is not valid JSON`),
    });
    expect(await resolveModelDir(local, { validateConfig: false })).toBe(local);
    await fsp.writeFile(path.join(local, 'config.json'), '[1]');
    await expect(resolveModelDir(local)).rejects.toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringContaining('must hold a JSON object') });
    await expect(resolveModelDir('org/badconfig', { hubUrl: hub.url, cacheDir })).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
      details: { file: path.join(cacheDir, 'models--org--badconfig', 'snapshots', 'd'.repeat(40), 'config.json') },
    });
  });

  it('offline or unreachable with nothing cached: HUB_OFFLINE naming repo, revision, cache and the fix', async () => {
    process.env['HF_HUB_OFFLINE'] = '1';
    const e = (await resolveModelDir('org/tiny-llama', { hubUrl: hub.url, cacheDir, revision: 'v1' }).catch((x: unknown) => x)) as Error;
    expect(e).toMatchObject({ code: 'HUB_OFFLINE' });
    for (const s of ['HF_HUB_OFFLINE is set', "'org/tiny-llama'", "revision 'v1'", cacheDir, 'To fix', 'no local folder']) expect(e.message).toContain(s);
    expect(hub.requests).toEqual([]);
    delete process.env['HF_HUB_OFFLINE'];
    await expect(resolveModelDir('org/tiny-llama', { hubUrl: await closedPortUrl(), cacheDir })).rejects.toMatchObject({
      code: 'HUB_OFFLINE',
      message: expect.stringContaining('cannot be reached'),
    });
  });
});
