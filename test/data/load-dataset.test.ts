// loadDataset on local files: the json/csv/text/parquet/arrow builders, dataFiles as a string, array, glob or
// {split: files}, folders whose splits come from file names as datasets finds them, split slicing, and the
// bad inputs (missing file, glob matching nothing, a jsonl line that is not JSON, types that disagree).

import { mkdirSync, writeFileSync, copyFileSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { tableToIPC, Table, vectorFromArray, Utf8 } from 'apache-arrow';
import { Dataset, DatasetDict, loadDataset } from '../../src/data/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const FIX = path.join(import.meta.dirname, '..', 'fixtures', 'data');
const tmp = (): string => tempDir('tsft-load-');
const jsonl = (rows: object[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const rows = Array.from({ length: 12 }, (_, i) => ({ instruction: `q${i}`, output: `a${i}`, n: i }));

describe('loadDataset builders', () => {
  it('json: JSON Lines (also .gz), a JSON array, a dict of columns, rows under a field', async () => {
    const d = tmp();
    writeFileSync(path.join(d, 'a.jsonl'), jsonl(rows));
    writeFileSync(path.join(d, 'b.json'), JSON.stringify(rows));
    writeFileSync(path.join(d, 'c.json'), JSON.stringify({ instruction: rows.map((r) => r.instruction), output: rows.map((r) => r.output), n: rows.map((r) => r.n) }, null, 2));
    writeFileSync(path.join(d, 'd.json'), JSON.stringify({ version: 1, data: rows }));
    writeFileSync(path.join(d, 'e.jsonl.gz'), gzipSync(jsonl(rows)));
    for (const f of ['a.jsonl', 'b.json', 'c.json', 'e.jsonl.gz']) {
      const ds = await loadDataset('json', { dataFiles: path.join(d, f), split: 'train' });
      expect(ds.toList()).toEqual(rows);
    }
    expect((await loadDataset('json', { dataFiles: path.join(d, 'd.json'), field: 'data', split: 'train' })).toList()).toEqual(rows);
    // A local file path alone picks the builder from its extension; the default split is "train".
    const dd = await loadDataset(path.join(d, 'a.jsonl'));
    expect(dd.keys()).toEqual(['train']);
  });

  it('csv (pandas-like typing, quotes, embedded newlines, tsv) and text (lines, paragraphs, document)', async () => {
    const d = tmp();
    writeFileSync(path.join(d, 'x.csv'), 'text,label,score,ok\n"hello, world",1,0.5,True\n"multi\nline ""quoted""",2,,False\nplain,3,1e3,\n');
    const csv = await loadDataset('csv', { dataFiles: path.join(d, 'x.csv'), split: 'train' });
    expect(csv.toList()).toEqual([
      { text: 'hello, world', label: 1, score: 0.5, ok: true },
      { text: 'multi\nline "quoted"', label: 2, score: null, ok: false },
      { text: 'plain', label: 3, score: 1000, ok: null },
    ]);
    expect(csv.features.label).toEqual({ dtype: 'int64', _type: 'Value' });
    writeFileSync(path.join(d, 'y.tsv'), 'a\tb\n1\tx\n2\ty\n');
    expect((await loadDataset(path.join(d, 'y.tsv'), { split: 'train' })).toList()).toEqual([{ a: 1, b: 'x' }, { a: 2, b: 'y' }]);
    writeFileSync(path.join(d, 't.txt'), 'first line\n\nsecond para l1\nsecond para l2\n');
    expect((await loadDataset('text', { dataFiles: path.join(d, 't.txt'), split: 'train' })).column('text')).toEqual(['first line', '', 'second para l1', 'second para l2']);
    expect((await loadDataset('text', { dataFiles: path.join(d, 't.txt'), split: 'train', sampleBy: 'paragraph' })).column('text')).toEqual(['first line', 'second para l1\nsecond para l2']);
    expect((await loadDataset('text', { dataFiles: path.join(d, 't.txt'), split: 'train', sampleBy: 'document' })).numRows).toBe(1);
    expect((await loadDataset('text', { dataFiles: path.join(d, 't.txt'), split: 'train', keepLinebreaks: true })).get(0).text).toBe('first line\n');
  });

  it('parquet and arrow files, and dataFiles as array, glob and {split: files}', async () => {
    const d = tmp();
    mkdirSync(path.join(d, 'data'));
    copyFileSync(path.join(FIX, 'hyparquet-snappy.parquet'), path.join(d, 'data', 'part-0.parquet'));
    copyFileSync(path.join(FIX, 'arrow-rs-zstd.parquet'), path.join(d, 'data', 'part-1.parquet'));
    writeFileSync(path.join(d, 'extra.arrow'), tableToIPC(new Table({ text: vectorFromArray(['p', 'q'], new Utf8()) }), 'file'));
    const cwd = process.cwd();
    process.chdir(d);
    try {
      const local = await loadDataset('parquet', { dataFiles: { train: 'data/*.parquet' } });
      expect(local).toBeInstanceOf(Object);
      expect(local.train!.numRows).toBe(320);
      const arr = await loadDataset('parquet', { dataFiles: ['data/part-1.parquet', 'data/part-0.parquet'], split: 'train' });
      expect(arr.get(0)).toEqual(local.train!.get(160));
      const bySplit = await loadDataset('parquet', { dataFiles: { train: 'data/part-0.parquet', test: ['data/part-1.parquet'] } });
      expect(bySplit.keys()).toEqual(['train', 'test']);
      expect((await loadDataset('arrow', { dataFiles: 'extra.arrow', split: 'train' })).column('text')).toEqual(['p', 'q']);
      const sliced = await loadDataset('parquet', { dataFiles: { train: 'data/**/*.parquet' }, split: 'train[10:15]+train[-2:]' });
      expect(sliced.column('id')).toEqual([...local.train!.slice(10, 15).column('id'), ...local.train!.slice(318).column('id')]);
    } finally {
      process.chdir(cwd);
    }
  });

  it('folders: splits from file and folder names, as datasets finds them', async () => {
    const byName = tmp();
    writeFileSync(path.join(byName, 'train.jsonl'), jsonl(rows.slice(0, 8)));
    writeFileSync(path.join(byName, 'my_test-file.jsonl'), jsonl(rows.slice(8)));
    writeFileSync(path.join(byName, 'README.md'), '# card');
    const a = await loadDataset(byName);
    expect(a.keys()).toEqual(['train', 'test']);
    expect(a.numRows).toEqual({ train: 8, test: 4 });

    const byDir = tmp();
    for (const s of ['train', 'validation']) mkdirSync(path.join(byDir, s));
    writeFileSync(path.join(byDir, 'train', '0.jsonl'), jsonl(rows.slice(0, 6)));
    writeFileSync(path.join(byDir, 'train', '1.jsonl'), jsonl(rows.slice(6, 10)));
    writeFileSync(path.join(byDir, 'validation', '0.jsonl'), jsonl(rows.slice(10)));
    expect((await loadDataset(byDir)).numRows).toEqual({ train: 10, validation: 2 });

    const sharded = tmp();
    mkdirSync(path.join(sharded, 'data'));
    copyFileSync(path.join(FIX, 'hyparquet-snappy.parquet'), path.join(sharded, 'data', 'train-00000-of-00002.parquet'));
    copyFileSync(path.join(FIX, 'arrow-rs-snappy.parquet'), path.join(sharded, 'data', 'train-00001-of-00002.parquet'));
    copyFileSync(path.join(FIX, 'arrow-rs-zstd.parquet'), path.join(sharded, 'data', 'test-00000-of-00001.parquet'));
    copyFileSync(path.join(FIX, 'arrow-rs-zstd.parquet'), path.join(sharded, 'data', 'extra-00000-of-00001.parquet'));
    const s = await loadDataset(sharded);
    expect(s.keys()).toEqual(['train', 'test', 'extra']);
    expect(s.numRows).toEqual({ train: 320, test: 160, extra: 160 });

    const plain = tmp();
    writeFileSync(path.join(plain, 'data.csv'), 'a,b\n1,2\n');
    writeFileSync(path.join(plain, '.hidden.csv'), 'a,b\n9,9\n');
    expect((await loadDataset(plain)).numRows).toEqual({ train: 1 });

    const carded = tmp();
    writeFileSync(path.join(carded, 'README.md'), '---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: "raw/a*.jsonl"\n  - split: dev\n    path: raw/b.jsonl\n---\n# card\n');
    mkdirSync(path.join(carded, 'raw'));
    writeFileSync(path.join(carded, 'raw', 'a1.jsonl'), jsonl(rows.slice(0, 3)));
    writeFileSync(path.join(carded, 'raw', 'b.jsonl'), jsonl(rows.slice(3, 4)));
    expect((await loadDataset(carded)).numRows).toEqual({ train: 3, dev: 1 });
  });

  it('bad inputs: missing file, glob matching nothing, bad JSON line, unknown split, disagreeing types', async () => {
    const d = tmp();
    await expect(loadDataset('json', { dataFiles: path.join(d, 'nope.jsonl') })).rejects.toMatchObject({ code: 'FILE_NOT_FOUND', message: expect.stringContaining('nope.jsonl') });
    await expect(loadDataset('json', { dataFiles: path.join(d, '*.jsonl') })).rejects.toThrow(/Unable to find any data file matching '.*\*\.jsonl'/);
    await expect(loadDataset(path.join(d, 'missing.parquet'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    await expect(loadDataset('./no/such/dir')).rejects.toThrow(/not a local file or folder/);
    writeFileSync(path.join(d, 'bad.jsonl'), '{"a": 1}\n{"a": 2}\n\n{"a": 3,}\n');
    await expect(loadDataset('json', { dataFiles: path.join(d, 'bad.jsonl') })).rejects.toThrow(new RegExp(`bad\\.jsonl line 4 is not valid JSON`));
    writeFileSync(path.join(d, 'types.jsonl'), '{"a": 1}\n{"a": 2}\n{"a": "three"}\n');
    await expect(loadDataset('json', { dataFiles: path.join(d, 'types.jsonl') })).rejects.toThrow(/Rows disagree on the type of column 'a': int64 at .*types\.jsonl line 1, string at .*types\.jsonl line 3/);
    writeFileSync(path.join(d, 'ok.jsonl'), jsonl(rows));
    await expect(loadDataset('json', { dataFiles: path.join(d, 'ok.jsonl'), split: 'test' })).rejects.toThrow(/Unknown split 'test'.*available: train/);
    await expect(loadDataset('json', {})).rejects.toThrow(/needs dataFiles/);
    writeFileSync(path.join(d, 'short.csv'), 'a,b\n1,2,3\n');
    await expect(loadDataset(path.join(d, 'short.csv'))).rejects.toThrow(/short\.csv line 2: 3 fields, but the header has 2/);
  });

  it('Dataset.fromJson / fromCsv / fromText', async () => {
    const d = tmp();
    writeFileSync(path.join(d, 'a.jsonl'), jsonl(rows));
    writeFileSync(path.join(d, 'a.csv'), 'x\n1\n2\n');
    writeFileSync(path.join(d, 'a.txt'), 'l1\nl2');
    expect((await Dataset.fromJson(path.join(d, 'a.jsonl'))).numRows).toBe(12);
    expect((await Dataset.fromCsv(path.join(d, 'a.csv'))).column('x')).toEqual([1, 2]);
    expect((await Dataset.fromText(path.join(d, 'a.txt'))).column('text')).toEqual(['l1', 'l2']);
    expect(DatasetDict).toBeDefined();
  });
});
