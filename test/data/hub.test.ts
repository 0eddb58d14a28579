// Hub dataset repos through a fake Hub on 127.0.0.1: loadDataset(repoId, { split }) finds the parquet shards
// and split names as datasets does, downloads them into the HF cache layout, and loads them again with
// HF_HUB_OFFLINE=1 from the cache alone; streaming fetches files when the iteration reaches them;
// the dataset card's configs are honoured; hfHubDownload returns the cached file path.

import { existsSync, lstatSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Dataset, hfHubDownload, loadDataset } from '../../src/data/index.js';
import { startFakeHub, type FakeHub } from '../helpers/fake-hub.js';
import { tempDir } from '../helpers/temp-dir.js';

const FIX = path.join(import.meta.dirname, '..', 'fixtures', 'data');
const pq = (f: string): Buffer => readFileSync(path.join(FIX, `${f}.parquet`));
const source = readFileSync(path.join(FIX, 'parquet-source.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
const SHA = 'c'.repeat(40);
let hub: FakeHub;
let cacheDir: string;

beforeAll(async () => {
  hub = await startFakeHub({
    repos: [
      {
        repoId: 'jtatman/python-code-dataset-500k', repoType: 'dataset', sha: SHA,
        files: {
          'README.md': '---\nlicense: mit\n---\n# Python code',
          '.gitattributes': '*.parquet filter=lfs',
          'data/train-00000-of-00002.parquet': pq('hyparquet-snappy'),
          'data/train-00001-of-00002.parquet': pq('arrow-rs-zstd'),
          'data/test-00000-of-00001.parquet': pq('arrow-rs-snappy'),
        },
      },
      {
        repoId: 'org/jsonl-splits', repoType: 'dataset', sha: 'd'.repeat(40),
        files: { 'train.jsonl': '{"t": "a"}\n{"t": "b"}\n', 'validation.jsonl': '{"t": "c"}\n' },
      },
      {
        repoId: 'org/carded', repoType: 'dataset', sha: 'e'.repeat(40),
        files: {
          'README.md': '---\nconfigs:\n- config_name: small\n  data_files: "small/*.jsonl"\n- config_name: big\n  default: true\n  data_files:\n  - split: train\n    path: big/train/*.jsonl\n---\n',
          'small/x.jsonl': '{"v": 1}\n', 'big/train/0.jsonl': '{"v": 2}\n{"v": 3}\n',
        },
      },
      { repoId: 'org/model', sha: 'f'.repeat(40), files: { 'config.json': '{"a": 1}' } },
    ],
  });
});
afterAll(async () => hub.close());
afterEach(() => {
  delete process.env.HF_HUB_OFFLINE;
});

describe('Hub datasets (fake Hub)', () => {
  it('downloads the sharded parquet split into the HF cache and reloads it offline', async () => {
    cacheDir = tempDir('tsft-hf-');
    const train = await loadDataset('jtatman/python-code-dataset-500k', { split: 'train', hubUrl: hub.url, cacheDir, progress: false });
    expect(train.numRows).toBe(2 * source.length);
    expect(train.get(0)).toEqual(source[0]);
    expect(train.get(source.length + 5)).toEqual(source[5]);
    const repoDir = path.join(cacheDir, 'datasets--jtatman--python-code-dataset-500k');
    expect(readFileSync(path.join(repoDir, 'refs', 'main'), 'utf8').trim()).toBe(SHA);
    const snap = path.join(repoDir, 'snapshots', SHA, 'data', 'train-00000-of-00002.parquet');
    expect(lstatSync(snap).isSymbolicLink() || lstatSync(snap).isFile()).toBe(true);
    expect(existsSync(path.join(repoDir, 'snapshots', SHA, 'data', 'test-00000-of-00001.parquet'))).toBe(false); // only the split asked for

    const all = await loadDataset('jtatman/python-code-dataset-500k', { hubUrl: hub.url, cacheDir, progress: false });
    expect(all.keys()).toEqual(['train', 'test']);

    process.env.HF_HUB_OFFLINE = '1';
    const before = hub.requests.length;
    const again = await loadDataset('jtatman/python-code-dataset-500k', { split: 'train', hubUrl: hub.url, cacheDir });
    expect(hub.requests.length).toBe(before);
    expect(again.toList()).toEqual(train.toList());
    const part = await loadDataset('jtatman/python-code-dataset-500k', { split: 'test[:10%]', hubUrl: hub.url, cacheDir });
    expect(part.numRows).toBe(16);
  });

  it('offline with an empty cache fails with HUB_OFFLINE naming the repo', async () => {
    process.env.HF_HUB_OFFLINE = '1';
    const empty = tempDir('tsft-hf-');
    await expect(loadDataset('org/jsonl-splits', { hubUrl: hub.url, cacheDir: empty })).rejects.toMatchObject({ code: 'HUB_OFFLINE', message: expect.stringContaining('org/jsonl-splits') });
  });

  it('{split}.jsonl files and dataset-card configs', async () => {
    const c = tempDir('tsft-hf-');
    const dd = await loadDataset('org/jsonl-splits', { hubUrl: hub.url, cacheDir: c, progress: false });
    expect(dd.numRows).toEqual({ train: 2, validation: 1 });
    const big = await loadDataset('org/carded', { hubUrl: hub.url, cacheDir: c, split: 'train', progress: false });
    expect(big.column('v')).toEqual([2, 3]);
    const small = await loadDataset('org/carded', { name: 'small', hubUrl: hub.url, cacheDir: c, split: 'train', progress: false });
    expect(small.column('v')).toEqual([1]);
    await expect(loadDataset('org/carded', { name: 'nope', hubUrl: hub.url, cacheDir: c })).rejects.toThrow(/Config 'nope' not found.*available: small, big/);
    await expect(loadDataset('org/missing', { hubUrl: hub.url, cacheDir: c })).rejects.toMatchObject({ code: 'HUB_ERROR' });
  });

  it('streaming reads the repo lazily: take(3) downloads only the first shard', async () => {
    const c = tempDir('tsft-hf-');
    const it = await loadDataset('jtatman/python-code-dataset-500k', { split: 'train', streaming: true, hubUrl: hub.url, cacheDir: c, progress: false });
    expect(it.numShards).toBe(2);
    expect(await it.take(3).toList()).toEqual(source.slice(0, 3));
    const snap = path.join(c, 'datasets--jtatman--python-code-dataset-500k', 'snapshots', SHA, 'data');
    expect(existsSync(path.join(snap, 'train-00000-of-00002.parquet'))).toBe(true);
    expect(existsSync(path.join(snap, 'train-00001-of-00002.parquet'))).toBe(false);
  });

  it('hfHubDownload returns the cached path; Dataset.fromParquet reads it', async () => {
    const c = tempDir('tsft-hf-');
    const file = await hfHubDownload({ repoId: 'jtatman/python-code-dataset-500k', filename: 'data/train-00000-of-00002.parquet', repoType: 'dataset', hubUrl: hub.url, cacheDir: c, progress: false });
    expect(file).toBe(path.join(c, 'datasets--jtatman--python-code-dataset-500k', 'snapshots', SHA, 'data', 'train-00000-of-00002.parquet'));
    expect((await Dataset.fromParquet(file)).toList()).toEqual(source);
    const cfg = await hfHubDownload({ repoId: 'org/model', filename: 'config.json', hubUrl: hub.url, cacheDir: c, progress: false });
    expect(JSON.parse(readFileSync(cfg, 'utf8'))).toEqual({ a: 1 });
  });
});
