// Parquet from two independent writers (hyparquet-writer in JS, arrow-rs via parquet-wasm) — dictionary pages,
// snappy and zstd, v1 and v2 data pages, several row groups, nulls, a nested messages column — must read back
// equal, row for row, to the rows they were written from (fixtures made by scripts/make_parquet_fixtures.ts).
// Our own writer (toParquet) is checked the other way round: arrow-rs must read what we write.

import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tableFromIPC } from 'apache-arrow';
import * as PW from 'parquet-wasm';
import { parquetMetadata } from 'hyparquet';
import { Dataset, loadDataset } from '../../src/data/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const FIX = path.join(import.meta.dirname, '..', 'fixtures', 'data');
const source = readFileSync(path.join(FIX, 'parquet-source.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
const FILES = ['hyparquet-snappy', 'hyparquet-zstd', 'arrow-rs-snappy', 'arrow-rs-zstd'];
const tmp = (): string => tempDir('tsft-pq-');

describe('parquet from two writers', () => {
  it('fixtures really cover dictionary pages, both codecs, several row groups and both writers', () => {
    const seen = { dict: 0, zstd: 0, snappy: 0, writers: new Set<string>() };
    for (const f of FILES) {
      const buf = readFileSync(path.join(FIX, `${f}.parquet`));
      const md = parquetMetadata(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
      expect(md.row_groups.length).toBeGreaterThan(1);
      const enc = md.row_groups.flatMap((g) => g.columns.flatMap((c) => c.meta_data?.encodings ?? []));
      if (enc.includes('RLE_DICTIONARY')) seen.dict++;
      const codecs = md.row_groups.flatMap((g) => g.columns.map((c) => c.meta_data?.codec));
      if (codecs.includes('ZSTD')) seen.zstd++;
      if (codecs.includes('SNAPPY')) seen.snappy++;
      seen.writers.add((md.created_by ?? '').split(' ')[0]!);
    }
    expect(seen.dict).toBe(4);
    expect(seen.zstd).toBe(2);
    expect(seen.snappy).toBe(2);
    expect(seen.writers).toEqual(new Set(['hyparquet-writer', 'parquet-rs']));
  });

  it.each(FILES)('%s reads back equal to the source rows', async (f) => {
    const ds = await Dataset.fromParquet(path.join(FIX, `${f}.parquet`));
    expect(ds.numRows).toBe(source.length);
    expect(ds.toList()).toEqual(source);
    expect(ds.features.messages).toEqual([{ role: { dtype: 'string', _type: 'Value' }, content: { dtype: 'string', _type: 'Value' } }]);
    expect(ds.features.tags).toEqual({ feature: { dtype: 'string', _type: 'Value' }, _type: 'Sequence' });
    expect(ds.features.id).toEqual({ dtype: 'int64', _type: 'Value' });
    expect(ds.features.score).toEqual({ dtype: 'float64', _type: 'Value' });
  });

  it.each(FILES)('%s streams the same rows, row group by row group', async (f) => {
    const it = await loadDataset('parquet', { dataFiles: path.join(FIX, `${f}.parquet`), split: 'train', streaming: true });
    expect(await it.toList()).toEqual(source);
  });

  it('several files of different writers load as one split', async () => {
    const ds = await loadDataset('parquet', { dataFiles: FILES.map((f) => path.join(FIX, `${f}.parquet`)), split: 'train' });
    expect(ds.numRows).toBe(4 * source.length);
    expect(ds.get(3 * source.length + 7)).toEqual(source[7]);
  });

  it('toParquet output is read by arrow-rs and by us, equal to the input (snappy, gzip, brotli)', async () => {
    const ds = await Dataset.fromParquet(path.join(FIX, 'arrow-rs-zstd.parquet'));
    const dir = tmp();
    for (const codec of ['SNAPPY', 'GZIP', 'BROTLI'] as const) {
      const file = path.join(dir, `out-${codec}.parquet`);
      await ds.toParquet(file, { codec, rowGroupSize: 50 });
      expect((await Dataset.fromParquet(file)).toList()).toEqual(source);
      const md = parquetMetadata(readFileSync(file).buffer as ArrayBuffer);
      expect(md.row_groups.length).toBe(Math.ceil(source.length / 50));
      const t = tableFromIPC(PW.readParquet(readFileSync(file)).intoIPCStream());
      expect(t.numRows).toBe(source.length);
      const row = t.get(12)!.toJSON() as Record<string, unknown>;
      expect(row.output).toBe(source[12]!.output);
      expect(Number(row.id)).toBe(source[12]!.id);
      const msgs = t.getChild('messages')!.get(12);
      expect(msgs === null ? null : [...msgs].map((m) => (m as { toJSON(): unknown }).toJSON())).toEqual(source[12]!.messages);
    }
  });

  it('toParquet of a shuffled selection writes the selected rows in order', async () => {
    const ds = (await Dataset.fromParquet(path.join(FIX, 'hyparquet-snappy.parquet'))).shuffle({ seed: 3 }).take(20);
    const file = path.join(tmp(), 'sel.parquet');
    await ds.toParquet(file);
    expect((await Dataset.fromParquet(file)).toList()).toEqual(ds.toList());
  });

  it('corrupt parquet: bad magic and truncated footer are CORRUPT_FILE errors naming the file', async () => {
    const dir = tmp();
    const good = readFileSync(path.join(FIX, 'hyparquet-snappy.parquet'));
    const badMagic = Buffer.from(good);
    badMagic.write('XXXX', badMagic.length - 4);
    writeFileSync(path.join(dir, 'magic.parquet'), badMagic);
    writeFileSync(path.join(dir, 'trunc.parquet'), good.subarray(0, good.length - 40));
    writeFileSync(path.join(dir, 'tiny.parquet'), 'PAR1');
    for (const f of ['magic', 'trunc', 'tiny']) {
      const file = path.join(dir, `${f}.parquet`);
      await expect(Dataset.fromParquet(file)).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringContaining(file) });
    }
    await expect(Dataset.fromParquet(path.join(dir, 'missing.parquet'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
  });
});
