// Dataset basics: construction, row/column access, selection, column edits, concatenation, the typed
// Arrow storage (Utf8, List<Struct>, nulls) and the errors for bad columns.

import { describe, expect, it } from 'vitest';
import { Type } from 'apache-arrow';
import { concatenateDatasets, Dataset, DatasetDict, type Row } from '../../src/data/index.js';

const rows = Array.from({ length: 30 }, (_, i) => ({ instruction: `do ${i}`, output: 'x'.repeat(i % 7), system: i % 4 ? 'sys' : null, n: i }));

describe('Dataset', () => {
  it('stores rows in Arrow with explicit types and gives them back as plain objects', () => {
    const ds = Dataset.fromList([
      { text: 'héllo', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: null }], score: 1, ids: [1, 2] },
      { text: null, messages: null, score: 2.5, ids: [] },
    ]);
    const f = ds.schema.fields;
    expect(f.map((x) => x.type.typeId)).toEqual([Type.Utf8, Type.List, Type.Float, Type.List]);
    expect(ds.features).toEqual({
      text: { dtype: 'string', _type: 'Value' },
      messages: [{ role: { dtype: 'string', _type: 'Value' }, content: { dtype: 'string', _type: 'Value' } }],
      score: { dtype: 'float64', _type: 'Value' },
      ids: { feature: { dtype: 'int64', _type: 'Value' }, _type: 'Sequence' },
    });
    expect(ds.get(0)).toEqual({ text: 'héllo', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: null }], score: 1, ids: [1, 2] });
    expect(ds.get(-1)).toEqual({ text: null, messages: null, score: 2.5, ids: [] });
    expect(() => ds.get(2)).toThrow(/out of range/);
  });

  it('numRows, columnNames, column, iteration, iter batches, toDict', () => {
    const ds = Dataset.fromList(rows);
    expect(ds.numRows).toBe(30);
    expect(ds.shape).toEqual([30, 4]);
    expect(ds.columnNames).toEqual(['instruction', 'output', 'system', 'n']);
    expect(ds.column('n')).toEqual(rows.map((r) => r.n));
    expect([...ds].length).toBe(30);
    const batches = [...ds.iter({ batchSize: 8 })];
    expect(batches.map((b) => b.n.length)).toEqual([8, 8, 8, 6]);
    expect(batches[1]!.instruction[0]).toBe('do 8');
    expect(ds.toDict().system).toEqual(rows.map((r) => r.system));
    expect(String(ds)).toContain('num_rows: 30');
  });

  it('fromDict, fromRecords and features that fix the types', () => {
    const d = Dataset.fromDict({ a: [1, 2, 3], b: ['x', 'y', 'z'] });
    expect(d.toList()).toEqual([{ a: 1, b: 'x' }, { a: 2, b: 'y' }, { a: 3, b: 'z' }]);
    const typed = Dataset.fromRecords([{ a: 1 }, { a: null }], { features: { a: { dtype: 'float32', _type: 'Value' } } });
    expect(typed.features.a).toEqual({ dtype: 'float32', _type: 'Value' });
    expect(() => Dataset.fromDict({ a: [1, 2], b: [1] })).toThrow(/column 'b' has 1 values/);
    expect(() => Dataset.fromList([{ a: 'x' }], { features: { a: { dtype: 'int64', _type: 'Value' } } })).toThrow(/Column 'a' at row 0: expected int64, got string/);
  });

  it('select, slice, take, skip, shard keep the right rows', () => {
    const ds = Dataset.fromList(rows);
    expect(ds.select([5, 1, 5]).column('n')).toEqual([5, 1, 5]);
    expect(ds.select([-1]).column('n')).toEqual([29]);
    expect(ds.slice(3, 6).column('n')).toEqual([3, 4, 5]);
    expect(ds.take(2).column('n')).toEqual([0, 1]);
    expect(ds.skip(28).column('n')).toEqual([28, 29]);
    // 30 rows in 4 shards: 8, 8, 7, 7 (datasets gives the remainder to the first shards)
    expect(ds.shard({ numShards: 4, index: 1 }).column('n')).toEqual([8, 9, 10, 11, 12, 13, 14, 15]);
    expect(ds.shard({ numShards: 4, index: 3 }).numRows).toBe(7);
    expect(ds.shard({ numShards: 4, index: 1, contiguous: false }).column('n')).toEqual([1, 5, 9, 13, 17, 21, 25, 29]);
    expect(ds.select([10, 11, 12]).select([2, 0]).column('n')).toEqual([12, 10]);
    expect(() => ds.select([30])).toThrow(/out of range/);
  });

  it('selectColumns, removeColumns, renameColumn, addColumn', () => {
    const ds = Dataset.fromList(rows);
    expect(ds.selectColumns(['n', 'system']).columnNames).toEqual(['system', 'n']);
    const noSys = ds.removeColumns('system');
    expect(noSys.columnNames).toEqual(['instruction', 'output', 'n']);
    expect(noSys.get(4)).toEqual({ instruction: 'do 4', output: 'xxxx', n: 4 });
    const renamed = ds.renameColumn('n', 'idx');
    expect(renamed.columnNames).toEqual(['instruction', 'output', 'system', 'idx']);
    expect(renamed.get(2).idx).toBe(2);
    const shuffled = ds.shuffle({ seed: 1 });
    const added = shuffled.addColumn('twice', shuffled.column('n').map((v) => v * 2));
    expect(added.toList().every((r) => r.twice === r.n * 2)).toBe(true);
  });

  it('bad column names name the column and list the existing ones', () => {
    const ds = Dataset.fromList(rows);
    expect(() => ds.removeColumns('sytem' as never)).toThrow(/Column to remove 'sytem' not in the dataset, which has columns: 'instruction', 'output', 'system', 'n' \(did you mean 'system'\?\)/);
    expect(() => ds.renameColumn('nope' as never, 'x')).toThrow(/'nope' not in the dataset, which has columns/);
    expect(() => ds.renameColumn('n', 'output')).toThrow(/already has a column 'output'/);
    expect(() => ds.column('zzz' as never)).toThrow(/COLUMN|not in the dataset/);
    expect(() => ds.addColumn('n', [])).toThrow(/already exists/);
    expect(() => ds.addColumn('m', [1])).toThrow(/1 values for 30 rows/);
    try {
      ds.selectColumns(['nn' as never]);
    } catch (e) {
      expect((e as { code: string; details: { columns: string[] } }).code).toBe('COLUMN_NOT_FOUND');
      expect((e as { details: { columns: string[] } }).details.columns).toEqual(['instruction', 'output', 'system', 'n']);
    }
  });

  it('rows whose types disagree fail naming the column, both types and both rows', () => {
    expect(() => Dataset.fromList([{ a: 1 }, { a: 2 }, { a: 'x' }])).toThrow("Rows disagree on the type of column 'a': int64 at row 0, string at row 2");
    expect(() => Dataset.fromList([{ m: [{ role: 'u' }] }, { m: [{ role: 3 }] }])).toThrow(/column 'm'/);
    // Widening is not disagreement: null → anything, int → float, new struct fields.
    const ok = Dataset.fromList([{ a: null, s: { x: 1 } }, { a: 1, s: { y: 'q' } }, { a: 1.5, s: null }]);
    expect(ok.features.a).toEqual({ dtype: 'float64', _type: 'Value' });
    expect(ok.toList()).toEqual([{ a: null, s: { x: 1, y: null } }, { a: 1, s: { x: null, y: 'q' } }, { a: 1.5, s: null }]);
  });

  it('types widen across chunks (first 10k rows int, later float)', () => {
    const many = Array.from({ length: 10_005 }, (_, i) => ({ v: i < 10_000 ? i : i + 0.5 }));
    const ds = Dataset.fromList(many);
    expect(ds.schema.fields[0]!.type.typeId).toBe(Type.Float);
    expect(ds.get(9_999).v).toBe(9_999);
    expect(ds.get(10_004).v).toBe(10_004.5);
  });

  it('concatenateDatasets aligns column order; different schemas fail clearly', () => {
    const a = Dataset.fromList<Row>([{ x: 1, y: 'a' }]);
    const b = Dataset.fromList<Row>([{ y: 'b', x: 2 }]).shuffle({ seed: 0 });
    expect(concatenateDatasets([a, b]).toList()).toEqual([{ x: 1, y: 'a' }, { x: 2, y: 'b' }]);
    const nulls = Dataset.fromList<Row>([{ x: null, y: null }]);
    expect(concatenateDatasets([a, nulls]).toList()).toEqual([{ x: 1, y: 'a' }, { x: null, y: null }]);
    expect(() => concatenateDatasets([a, Dataset.fromList<Row>([{ x: 1, z: 'c' }])])).toThrow(/dataset 1 has columns \[x, z\] but dataset 0 has \[x, y\]; missing: y; extra: z/);
    expect(() => concatenateDatasets([a, Dataset.fromList<Row>([{ x: 'one', y: 'c' }])])).toThrow(/column 'x' is int64 in dataset 0 but string in dataset 1/);
  });

  it('sort, unique, flattenIndices', () => {
    const ds = Dataset.fromList(rows).shuffle({ seed: 9 });
    expect(ds.sort('n').column('n')).toEqual(rows.map((r) => r.n));
    expect(ds.sort('n', { reverse: true }).column('n')[0]).toBe(29);
    expect(new Set(ds.unique('system'))).toEqual(new Set(['sys', null]));
    const flat = ds.flattenIndices();
    expect(flat._view.indices).toBeUndefined();
    expect(flat.toList()).toEqual(ds.toList());
  });

  it('DatasetDict: splits as properties, methods over every split', () => {
    const ds = Dataset.fromList(rows);
    const dd = new DatasetDict({ train: ds.take(20), test: ds.skip(20) });
    expect(dd.keys()).toEqual(['train', 'test']);
    expect(dd.numRows).toEqual({ train: 20, test: 10 });
    const m = dd.map((r: { n: number }) => ({ half: r.n / 2 })) as DatasetDict;
    expect(m.test!.get(0).half).toBe(10);
    expect(() => dd.get('validation')).toThrow(/Unknown split 'validation'; available: train, test/);
    expect(() => new DatasetDict({ map: ds })).toThrow(/cannot be named 'map'/);
    expect(String(dd)).toContain('DatasetDict');
  });
});
