// Streaming: loadDataset(…, { streaming: true }) reads on demand — a parquet row group is decoded only when the
// iteration reaches it (proved with a file whose last row group is corrupt) — and map / filter / take / skip /
// shuffle(bufferSize) are lazy, deterministic for a seed, and name the row when a function throws.

import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parquetMetadata } from 'hyparquet';
import { Dataset, loadDataset, type IterableDataset } from '../../src/data/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const FIX = path.join(import.meta.dirname, '..', 'fixtures', 'data');
const source = readFileSync(path.join(FIX, 'parquet-source.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
const tmp = (): string => tempDir('tsft-it-');

async function jsonlStream(n: number, files = 1): Promise<IterableDataset> {
  const d = tmp();
  const per = Math.ceil(n / files);
  for (let f = 0; f < files; f++) {
    const lines = Array.from({ length: Math.min(per, n - f * per) }, (_, k) => JSON.stringify({ n: f * per + k, t: `r${f * per + k}` }));
    writeFileSync(path.join(d, `part-${f}.jsonl`), lines.join('\n') + '\n');
  }
  return loadDataset('json', { dataFiles: path.join(d, '*.jsonl'), split: 'train', streaming: true });
}

describe('IterableDataset', () => {
  it('reads parquet row groups on demand: take() never touches a corrupt last row group', async () => {
    const buf = Buffer.from(readFileSync(path.join(FIX, 'arrow-rs-snappy.parquet')));
    const md = parquetMetadata(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const last = md.row_groups.at(-1)!;
    // Overwrite the data of the last row group with garbage (footer intact).
    const starts = last.columns.map((c) => Number(c.meta_data!.dictionary_page_offset ?? c.meta_data!.data_page_offset));
    const end = Math.max(...last.columns.map((c) => Number(c.meta_data!.data_page_offset) + Number(c.meta_data!.total_compressed_size)));
    buf.fill(0x5a, Math.min(...starts), end);
    const file = path.join(tmp(), 'half-broken.parquet');
    writeFileSync(file, buf);
    const stream = await loadDataset('parquet', { dataFiles: file, split: 'train', streaming: true });
    expect(await stream.take(45).toList()).toEqual(source.slice(0, 45)); // first two row groups of 40
    await expect(Dataset.fromParquet(file)).rejects.toMatchObject({ code: 'CORRUPT_FILE' });
    await expect(stream.toList()).rejects.toMatchObject({ code: 'CORRUPT_FILE' });
  });

  it('lazy map / filter / skip / take / column edits, in order', async () => {
    const s = await jsonlStream(50, 3);
    expect(s.numShards).toBe(3);
    const out = await s.filter((r) => r.n % 2 === 0).map((r) => ({ sq: r.n * r.n })).skip(2).take(3).toList();
    expect(out).toEqual([4, 6, 8].map((n) => ({ n, t: `r${n}`, sq: n * n })));
    const batched = await s.map((b) => ({ len: b.t!.map((t: string) => t.length) }), { batched: true, batchSize: 7 }).take(11).toList();
    expect(batched.map((r) => r.len)).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3]);
    expect(await s.removeColumns('t').renameColumn('n', 'id').take(2).toList()).toEqual([{ id: 0 }, { id: 1 }]);
    expect(await s.selectColumns(['t']).take(1).toList()).toEqual([{ t: 'r0' }]);
    const batches = [];
    for await (const b of s.iter({ batchSize: 20 })) batches.push(b.n!.length);
    expect(batches).toEqual([20, 20, 10]);
    const filtered = await s.filter((b) => b.n!.map((n: number) => n > 45), { batched: true, batchSize: 8 }).toList();
    expect(filtered.map((r) => r.n)).toEqual([46, 47, 48, 49]);
  });

  it('shuffle(seed, bufferSize) is a deterministic permutation; setEpoch changes it deterministically', async () => {
    const s = await jsonlStream(40, 4);
    const a = (await s.shuffle({ seed: 42, bufferSize: 10 }).toList()).map((r) => r.n);
    const b = (await s.shuffle({ seed: 42, bufferSize: 10 }).toList()).map((r) => r.n);
    expect(a).toEqual(b);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(a).not.toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect((await s.shuffle({ seed: 43, bufferSize: 10 }).toList()).map((r) => r.n)).not.toEqual(a);
    const e = s.shuffle({ seed: 42, bufferSize: 10 });
    e.setEpoch(1);
    const c = (await e.toList()).map((r) => r.n);
    expect(c).not.toEqual(a);
    const e2 = s.shuffle({ seed: 42, bufferSize: 10 });
    e2.setEpoch(1);
    expect((await e2.toList()).map((r) => r.n)).toEqual(c);
  });

  it('a throwing map names the row; without a split, every split streams', async () => {
    const s = await jsonlStream(10);
    await expect(s.map((r) => {
      if (r.n === 6) throw new Error('nope');
      return {};
    }).toList()).rejects.toThrow('The map function failed at row 6: nope');
    const d = tmp();
    writeFileSync(path.join(d, 'train.jsonl'), '{"a":1}\n');
    writeFileSync(path.join(d, 'test.jsonl'), '{"a":2}\n');
    const dd = await loadDataset(d, { streaming: true });
    expect(dd.keys()).toEqual(['train', 'test']);
    expect(await dd.get('test').toList()).toEqual([{ a: 2 }]);
    await expect(loadDataset(d, { streaming: true, split: 'train[:1]' })).rejects.toThrow(/not supported with streaming/);
  });
});
