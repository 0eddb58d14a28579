// map and filter as datasets does them: per row or batched, with indices, removeColumns before the update,
// sync and async functions, errors that name the row, and unchanged columns passed on untouched.

import { describe, expect, it, vi } from 'vitest';
import { Dataset } from '../../src/data/index.js';

const rows = Array.from({ length: 25 }, (_, i) => ({ instruction: `do ${i}`, output: 'x'.repeat(i), system: i % 3 ? 'sys' : null, n: i }));

describe('map', () => {
  it('walkthrough §2: conversations, added columns, removeColumns', () => {
    const train = Dataset.fromList(rows);
    const conv = train.map((s) => ({ messages: [
      { role: 'system', content: s.system }, { role: 'user', content: s.instruction }, { role: 'assistant', content: s.output }] }));
    expect(conv.columnNames).toEqual(['instruction', 'output', 'system', 'n', 'messages']);
    expect(conv.get(3).messages).toEqual([{ role: 'system', content: null }, { role: 'user', content: 'do 3' }, { role: 'assistant', content: 'xxx' }]);
    expect(conv.features.messages).toEqual([{ role: { dtype: 'string', _type: 'Value' }, content: { dtype: 'string', _type: 'Value' } }]);
    const withLen = train.map((s) => ({ length: s.output.length }));
    expect(withLen.column('length')).toEqual(rows.map((r) => r.n));
    const only = train.map((s) => ({ output: s.output.toUpperCase() }), { removeColumns: ['instruction', 'output'] });
    expect(only.columnNames).toEqual(['system', 'n', 'output']);
    expect(only.get(2)).toEqual({ system: 'sys', n: 2, output: 'XX' });
  });

  it('keeps unchanged columns as the very same Arrow chunks (zero-copy)', () => {
    const ds = Dataset.fromList(rows);
    const out = ds.map((s) => ({ k: s.n + 1 }));
    const before = ds._view.table.batches[0]!.data.children[0]!;
    const after = out._view.table.batches[0]!.data.children[0]!;
    expect(after.values).toBe(before.values);
  });

  it('after a shuffle, map sees and writes rows in the shuffled order', () => {
    const sh = Dataset.fromList(rows).shuffle({ seed: 5 });
    const out = sh.map((s, i) => ({ pos: i, n2: s.n * 2 }));
    expect(out.column('pos')).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(out.toList().every((r) => r.n2 === r.n * 2)).toBe(true);
    expect(out.column('n')).toEqual(sh.column('n'));
  });

  it('withIndices and batched with batchSize (exact batch sizes, indices per batch)', () => {
    const ds = Dataset.fromList(rows);
    const sizes: number[] = [];
    const firsts: number[] = [];
    const out = ds.map((b, idx) => {
      sizes.push(b.n.length);
      firsts.push(idx[0]!);
      return { len: b.output.map((o) => o.length) };
    }, { batched: true, batchSize: 10, withIndices: true });
    expect(sizes).toEqual([10, 10, 5]);
    expect(firsts).toEqual([0, 10, 20]);
    expect(out.column('len')).toEqual(rows.map((r) => r.n));
    const whole: number[] = [];
    ds.map((b) => (whole.push(b.n.length), {}), { batched: true, batchSize: null });
    expect(whole).toEqual([25]);
  });

  it('batched map may change the row count when the input columns are removed', () => {
    const ds = Dataset.fromList(rows.slice(0, 4));
    const chunks = ds.map((b) => ({ piece: b.output.flatMap((o) => (o.length ? [o.slice(0, 1), o.slice(1)] : [])) }), {
      batched: true, removeColumns: ds.columnNames,
    });
    expect(chunks.column('piece')).toEqual(['x', '', 'x', 'x', 'x', 'xx']);
    expect(() => ds.map((b) => ({ piece: b.output.slice(1) }), { batched: true })).toThrow(/turned 4 rows into 3.*removeColumns: \['instruction', 'output', 'system', 'n'\]/);
  });

  it('async functions give a Promise and keep order', async () => {
    const ds = Dataset.fromList(rows);
    const out = await ds.map(async (s) => {
      await new Promise((r) => setTimeout(r, s.n % 3));
      return { z: s.n * 3 };
    });
    expect(out.column('z')).toEqual(rows.map((r) => r.n * 3));
    const empty = ds.take(0).map(async () => ({ z: 1 }));
    expect(empty).toBeInstanceOf(Promise);
    expect((await empty).numRows).toBe(0);
  });

  it('a throwing function fails with MAP_FUNCTION_FAILED naming the row (sync, async, batched)', async () => {
    const ds = Dataset.fromList(rows);
    expect(() => ds.map((s) => {
      if (s.n === 13) throw new Error('boom');
      return {};
    })).toThrow('The map function failed at row 13: boom');
    await expect(ds.map(async (s) => {
      if (s.n === 7) throw new Error('late');
      return {};
    })).rejects.toMatchObject({ code: 'MAP_FUNCTION_FAILED', details: { row: 7 }, message: expect.stringContaining('row 7: late') });
    expect(() => ds.map((b) => {
      if (b.n[0] === 10) throw new Error('bad batch');
      return {};
    }, { batched: true, batchSize: 10 })).toThrow('The map function failed at the batch of rows 10–19: bad batch');
    expect(() => ds.map(() => 42 as never)).toThrow(/must return an object/);
  });

  it('outputs whose types disagree across rows fail naming both rows', () => {
    const ds = Dataset.fromList(rows);
    expect(() => ds.map((s) => ({ v: s.n === 4 ? 'four' : s.n }))).toThrow("Rows disagree on the type of column 'v': int64 at row 0, string at row 4");
  });

  it('removeColumns naming a missing column lists the existing ones', () => {
    const ds = Dataset.fromList(rows);
    expect(() => ds.map((s) => s, { removeColumns: ['sistem'] })).toThrow(/Column to remove 'sistem' not in the dataset, which has columns: 'instruction', 'output', 'system', 'n'/);
  });

  it('a batched map that outputs no rows keeps a schema with its new columns', () => {
    const ds = Dataset.fromList(rows);
    const none = ds.map(() => ({ piece: [] as string[] }), { batched: true, removeColumns: ds.columnNames });
    expect(none.numRows).toBe(0);
    expect(none.columnNames).toEqual(['piece']);
  });

  it('draws a progress line with desc on stderr when asked', () => {
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let out = '';
    try {
      Dataset.fromList(rows).map((s) => ({ k: s.n }), { desc: 'To messages', progress: true });
      out = spy.mock.calls.map((c) => String(c[0])).join('');
    } finally {
      spy.mockRestore();
    }
    expect(out).toMatch(/To messages: 100%\|█+\| 25\/25 \[/);
  });

  it('returning nothing leaves the row unchanged; returning a column replaces it', () => {
    const ds = Dataset.fromList(rows);
    expect(ds.map(() => undefined).toList()).toEqual(rows);
    expect(ds.map((s) => ({ n: String(s.n) })).column('n')).toEqual(rows.map((r) => String(r.n)));
  });
});

describe('filter', () => {
  it('row, batched and async filters; indices composed with earlier selections', async () => {
    const ds = Dataset.fromList(rows);
    const short = ds.filter((s) => s.output.length <= 5);
    expect(short.column('n')).toEqual([0, 1, 2, 3, 4, 5]);
    expect(short.filter((_s, i) => i % 2 === 0).column('n')).toEqual([0, 2, 4]);
    expect(ds.filter((b) => b.n.map((v) => v > 20), { batched: true, batchSize: 7 }).column('n')).toEqual([21, 22, 23, 24]);
    expect((await ds.filter(async (s) => s.system === null)).column('n')).toEqual([0, 3, 6, 9, 12, 15, 18, 21, 24]);
    expect(() => ds.filter((s) => {
      if (s.n === 3) throw new Error('no');
      return true;
    })).toThrow('The filter function failed at row 3: no');
    expect(() => ds.filter(() => [true], { batched: true })).toThrow(/one boolean per row/);
  });
});
