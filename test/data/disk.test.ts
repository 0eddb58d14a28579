// saveToDisk / loadFromDisk: the folder layout datasets writes (Arrow IPC *stream* shards, dataset_info.json,
// state.json; dataset_dict.json for a DatasetDict), reading a folder in that layout written by another Arrow
// writer, and atomicity: a failed save leaves the previous folder intact and no temp folder behind.

import { existsSync, readdirSync, readFileSync, promises as fsp, writeFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Table, tableFromIPC, tableToIPC, vectorFromArray, Utf8, Int64, List, Field, Struct } from 'apache-arrow';
import { Dataset, DatasetDict, loadDataset, loadFromDisk } from '../../src/data/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const tmp = (): string => tempDir('tsft-disk-');
const rows = Array.from({ length: 40 }, (_, i) => ({ text: `row ${i}`, n: i, messages: i % 5 ? [{ role: 'user', content: `q${i}` }] : null }));

afterEach(() => vi.restoreAllMocks());

describe('saveToDisk / loadFromDisk', () => {
  it('writes datasets\' layout: stream-format shard, dataset_info.json, state.json', async () => {
    const dir = path.join(tmp(), 'ds');
    const ds = Dataset.fromList(rows).shuffle({ seed: 4 });
    await ds.saveToDisk(dir);
    expect(readdirSync(dir).sort()).toEqual(['data-00000-of-00001.arrow', 'dataset_info.json', 'state.json']);
    const state = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8'));
    expect(Object.keys(state).sort()).toEqual(['_data_files', '_fingerprint', '_format_columns', '_format_kwargs', '_format_type', '_output_all_columns', '_split']);
    expect(state._data_files).toEqual([{ filename: 'data-00000-of-00001.arrow' }]);
    expect(state._fingerprint).toMatch(/^[0-9a-f]{16}$/);
    const info = JSON.parse(readFileSync(path.join(dir, 'dataset_info.json'), 'utf8'));
    expect(info.features).toEqual(ds.features);
    const bytes = readFileSync(path.join(dir, 'data-00000-of-00001.arrow'));
    expect(bytes.readUInt32LE(0)).toBe(0xffffffff); // IPC stream continuation marker, not the "ARROW1" file magic
    const t = tableFromIPC(bytes);
    expect(t.numRows).toBe(40);
    expect(JSON.parse(t.schema.metadata.get('huggingface')!)).toEqual({ info: { features: ds.features } });
    const again = await Dataset.loadFromDisk(dir);
    expect(again.toList()).toEqual(ds.toList());
    expect(again.features).toEqual(ds.features);
  });

  it('DatasetDict round trip, and loadFromDisk picks Dataset or DatasetDict', async () => {
    const dir = path.join(tmp(), 'dd');
    const { train, test } = Dataset.fromList(rows).trainTestSplit({ testSize: 0.25, seed: 1 });
    await new DatasetDict({ train, test }).saveToDisk(dir);
    expect(JSON.parse(readFileSync(path.join(dir, 'dataset_dict.json'), 'utf8'))).toEqual({ splits: ['train', 'test'] });
    expect(JSON.parse(readFileSync(path.join(dir, 'test', 'state.json'), 'utf8'))._split).toBe('test');
    const dd = (await DatasetDict.loadFromDisk(dir)) as DatasetDict;
    expect(dd.keys()).toEqual(['train', 'test']);
    expect(dd.test!.toList()).toEqual(test.toList());
    expect(dd.train!.split).toBe('train');
    expect(((await loadFromDisk(dir)) as DatasetDict).keys()).toEqual(['train', 'test']);
    expect((await loadFromDisk(path.join(dir, 'train'))).numRows).toBe(30);
    await expect(Dataset.loadFromDisk(dir)).rejects.toThrow(/holds a DatasetDict/);
    await expect(loadDataset(dir)).rejects.toThrow(/written by saveToDisk/);
  });

  it('reads a folder in datasets\' layout written by another Arrow writer (two shards, extra info fields)', async () => {
    const dir = tmp();
    const mk = (from: number): Table => new Table({
      text: vectorFromArray([`a${from}`, `b${from}`], new Utf8()),
      label: vectorFromArray([BigInt(from), BigInt(from + 1)], new Int64()),
      turns: vectorFromArray([[{ role: 'user', content: 'x' }], []], new List(new Field('item', new Struct([new Field('role', new Utf8(), true), new Field('content', new Utf8(), true)]), true))),
    });
    writeFileSync(path.join(dir, 'data-00000-of-00002.arrow'), tableToIPC(mk(0), 'stream'));
    writeFileSync(path.join(dir, 'data-00001-of-00002.arrow'), tableToIPC(mk(10), 'stream'));
    writeFileSync(path.join(dir, 'state.json'), JSON.stringify({
      _data_files: [{ filename: 'data-00000-of-00002.arrow' }, { filename: 'data-00001-of-00002.arrow' }],
      _fingerprint: 'f0e1d2c3b4a59687', _format_columns: null, _format_kwargs: {}, _format_type: null, _output_all_columns: false, _split: 'train',
    }));
    writeFileSync(path.join(dir, 'dataset_info.json'), JSON.stringify({
      builder_name: 'parquet', citation: '', config_name: 'default', dataset_name: 'x', description: 'demo', homepage: '',
      features: { text: { dtype: 'string', _type: 'Value' }, label: { names: ['a', 'b'], _type: 'ClassLabel' } }, license: 'mit',
      splits: { train: { name: 'train', num_bytes: 1, num_examples: 4, dataset_name: 'x' } }, version: { version_str: '0.0.0', major: 0, minor: 0, patch: 0 },
    }));
    const ds = await Dataset.loadFromDisk(dir);
    expect(ds.split).toBe('train');
    expect(ds.info.description).toBe('demo');
    expect(ds.info.license).toBe('mit');
    expect(ds.toList()).toEqual([
      { text: 'a0', label: 0, turns: [{ role: 'user', content: 'x' }] }, { text: 'b0', label: 1, turns: [] },
      { text: 'a10', label: 10, turns: [{ role: 'user', content: 'x' }] }, { text: 'b10', label: 11, turns: [] },
    ]);
  });

  it('a failed save leaves the previous folder intact and no temp folder behind', async () => {
    const parent = tmp();
    const dir = path.join(parent, 'ds');
    await Dataset.fromList(rows.slice(0, 3)).saveToDisk(dir);
    const spy = vi.spyOn(fsp, 'writeFile').mockRejectedValueOnce(new Error('disk full'));
    await expect(Dataset.fromList(rows).saveToDisk(dir)).rejects.toThrow('disk full');
    expect(spy).toHaveBeenCalled();
    expect(readdirSync(parent)).toEqual(['ds']);
    expect((await Dataset.loadFromDisk(dir)).numRows).toBe(3);
  });

  it('a map function that throws leaves nothing on disk', async () => {
    const dir = path.join(tmp(), 'never');
    const ds = Dataset.fromList(rows);
    await expect(async () => ds.map((r) => {
      if (r.n === 21) throw new Error('bad row');
      return { k: 1 };
    }).saveToDisk(dir)).rejects.toMatchObject({ code: 'MAP_FUNCTION_FAILED', message: expect.stringContaining('row 21') });
    expect(existsSync(dir)).toBe(false);
  });

  it('empty datasets save and load with their schema', async () => {
    const dir = path.join(tmp(), 'empty');
    const ds = Dataset.fromList(rows).take(0);
    await ds.saveToDisk(dir);
    const again = await Dataset.loadFromDisk(dir);
    expect(again.numRows).toBe(0);
    expect(again.columnNames).toEqual(['text', 'n', 'messages']);
  });

  it('missing folder / missing state.json are FILE_NOT_FOUND', async () => {
    const dir = tmp();
    mkdirSync(path.join(dir, 'x'));
    await expect(Dataset.loadFromDisk(path.join(dir, 'x'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    await expect(Dataset.loadFromDisk(path.join(dir, 'nope'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
  });
});
