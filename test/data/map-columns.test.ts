// How map builds its output: row by row straight into Arrow builders (column-stream.ts), types widened on
// the fly, columns that first appear mid-chunk backfilled, input columns passed on as the very same buffers
// over many record batches; and how byte columns are built from whole arrays (arrow-bytes.ts): exactly
// sized, UTF-8 the way TextEncoder writes it. Results must not depend on where the record batches fall.

import { describe, expect, it } from 'vitest';
import { Type } from 'apache-arrow';
import { Dataset } from '../../src/data/index.js';

const base = Array.from({ length: 23 }, (_, i) => ({ text: i % 4 === 1 ? null : `t${i} ${'é'.repeat(i % 3)}`, n: i }));

/** The same map at several record-batch sizes must give the same rows and types. */
function mapEvery<T extends object>(fn: (r: (typeof base)[number], i: number) => T, opts: { removeColumns?: string[] } = {}): Dataset[] {
  const ds = Dataset.fromList(base);
  const outs = [1, 5, 10_000].map((w) => ds.map(fn as never, { ...opts, writerBatchSize: w }) as unknown as Dataset);
  for (const o of outs.slice(1)) {
    expect(o.toList()).toEqual(outs[0]!.toList());
    expect(o.features).toEqual(outs[0]!.features);
  }
  return outs;
}

describe('map output columns, built row by row', () => {
  it('nested messages with null lists, null contents and empty lists', () => {
    const [out] = mapEvery((r) => ({
      messages: r.n % 5 === 3 ? null : r.n % 7 === 0 ? [] : [
        { role: 'system', content: r.n % 2 ? null : 'sys' },
        { role: 'user', content: r.text },
      ],
    }));
    const rows = out!.toList();
    expect(rows[3]!.messages).toBeNull();
    expect(rows[7]!.messages).toEqual([]);
    expect(rows[2]!.messages).toEqual([{ role: 'system', content: 'sys' }, { role: 'user', content: 't2 éé' }]);
    expect(rows[1]!.messages).toEqual([{ role: 'system', content: null }, { role: 'user', content: null }]);
    expect(out!.features.messages).toEqual([{ role: { dtype: 'string', _type: 'Value' }, content: { dtype: 'string', _type: 'Value' } }]);
  });

  it('widens as values come: null → string, int → float, structs gaining fields, empty lists → lists of strings', () => {
    const [out] = mapEvery((r) => ({
      late: r.n < 9 ? null : `v${r.n}`,
      num: r.n === 17 ? 2.5 : r.n,
      obj: r.n < 12 ? { a: r.n } : { a: r.n, b: `b${r.n}` },
      tags: r.n < 6 ? [] : [`x${r.n}`],
    }));
    const rows = out!.toList();
    expect(rows.map((r) => r.late)).toEqual(base.map((r) => (r.n < 9 ? null : `v${r.n}`)));
    expect(rows.map((r) => r.num)).toEqual(base.map((r) => (r.n === 17 ? 2.5 : r.n)));
    expect(rows[3]!.obj).toEqual({ a: 3, b: null });
    expect(rows[20]!.obj).toEqual({ a: 20, b: 'b20' });
    expect(rows[2]!.tags).toEqual([]);
    expect(rows[8]!.tags).toEqual(['x8']);
    expect(out!.features.num).toEqual({ dtype: 'float64', _type: 'Value' });
  });

  it('a key first returned mid-chunk: earlier rows keep the input value, or get null when new or removed', () => {
    const fn = (r: (typeof base)[number]): object => (r.n >= 4 ? { text: `new ${r.n}`, extra: r.n } : {});
    const [out] = mapEvery(fn);
    expect(out!.column('text').slice(0, 6)).toEqual([base[0]!.text, base[1]!.text, base[2]!.text, base[3]!.text, 'new 4', 'new 5']);
    expect(out!.column('extra').slice(0, 5)).toEqual([null, null, null, null, 4]);
    const [removed] = mapEvery(fn, { removeColumns: ['text'] });
    expect(removed!.column('text').slice(0, 5)).toEqual([null, null, null, null, 'new 4']);
    expect(removed!.columnNames.sort()).toEqual(['extra', 'n', 'text']);
  });

  it('a disagreement in a later record batch names the first row of the type and the offending row', () => {
    const ds = Dataset.fromList(base);
    expect(() => ds.map((r) => ({ v: r.n === 0 ? null : r.n === 19 ? 'x' : r.n }), { writerBatchSize: 5 })).toThrow(
      "Rows disagree on the type of column 'v': int64 at row 1, string at row 19",
    );
  });

  it('binary, dates and typed arrays (types the cheap check does not cover) in 20k rows stay linear', () => {
    const ds = Dataset.fromList(Array.from({ length: 20_000 }, (_, i) => ({ i })));
    const t0 = performance.now();
    const out = ds.map((r) => ({ b: Uint8Array.of(r.i & 255, 7), d: new Date(r.i * 1000), f: Float32Array.of(r.i, 0.5) }));
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(out.get(300)).toEqual({ i: 300, b: Uint8Array.of(44, 7), d: new Date(300_000), f: [300, 0.5] });
    expect(out.schema.fields.map((f) => f.type.typeId)).toEqual([Type.Int, Type.Binary, Type.Timestamp, Type.List]);
  });

  it('unchanged columns are the very same buffers in every record batch; after a shuffle they are gathered', () => {
    const ds = Dataset.fromList(base);
    const out = ds.map((r) => ({ k: r.n * 2 }), { writerBatchSize: 4 });
    expect(out._view.table.batches.length).toBe(6);
    const input = ds._view.table.batches[0]!.data.children[0]!;
    for (const b of out._view.table.batches) {
      expect(b.data.children[0]!.values.buffer).toBe(input.values.buffer);
      expect(b.data.children[0]!.valueOffsets.buffer).toBe(input.valueOffsets.buffer);
    }
    const sh = ds.shuffle({ seed: 9 });
    const out2 = sh.map((r) => ({ k: r.n * 2 }), { writerBatchSize: 4 });
    expect(out2.toList()).toEqual(sh.toList().map((r) => ({ ...r, k: r.n * 2 })));
  });
});

describe('byte columns from whole arrays', () => {
  it('exact-size UTF-8 (multi-byte, astral, lone surrogates as U+FFFD), empty strings and nulls', () => {
    const texts = ['', 'ascii', 'café', '数据', '😀x', 'a\uD800b', null, 'é'.repeat(100)];
    const ds = Dataset.fromList(texts.map((t) => ({ t })));
    const d = ds._view.table.batches[0]!.data.children[0]!;
    const enc = new TextEncoder();
    const total = texts.reduce((s, t) => s + (t === null ? 0 : enc.encode(t).length), 0);
    expect(d.values.buffer.byteLength).toBe(total);
    expect(d.nullCount).toBe(1);
    expect(ds.column('t')).toEqual(texts.map((t) => (t === null ? null : new TextDecoder().decode(enc.encode(t)))));
  });

  it('large_string and binary columns (strings in binary columns are their UTF-8)', () => {
    const ds = Dataset.fromList([{ s: 'ü', b: Uint8Array.of(1, 2) }, { s: null, b: 'hi' as unknown as Uint8Array }], {
      features: { s: { dtype: 'large_string', _type: 'Value' }, b: { dtype: 'binary', _type: 'Value' } },
    });
    expect(ds.schema.fields.map((f) => f.type.typeId)).toEqual([Type.LargeUtf8, Type.Binary]);
    expect(ds.toList()).toEqual([{ s: 'ü', b: Uint8Array.of(1, 2) }, { s: null, b: Uint8Array.of(104, 105) }]);
  });

  it('a value of the wrong type names the column and row', () => {
    expect(() => Dataset.fromList([{ s: 'a' }, { s: 'b' }, { s: 3 }], { features: { s: { dtype: 'string', _type: 'Value' } } })).toThrow(
      /Column 's' at row 2: expected string, got number 3/,
    );
  });
});

describe('filter reads one row at a time', () => {
  it('over many record batches and through an indices mapping', () => {
    const ds = Dataset.fromList(base).map((r) => ({ m: r.n % 3 }), { writerBatchSize: 4 });
    expect(ds.filter((r) => r.m === 0).column('n')).toEqual([0, 3, 6, 9, 12, 15, 18, 21]);
    const sh = ds.shuffle({ seed: 2 });
    expect(sh.filter((r, i) => r.m === 0 && i % 2 === 0).toList()).toEqual(sh.toList().filter((r, i) => r.m === 0 && i % 2 === 0));
  });
});
