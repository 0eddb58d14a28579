// Paged optimizers: the page mechanics (views vs zero-padded copies, write-back, compact state), and
// paged_adamw_32bit / paged_adamw_8bit equal to their unpaged forms bit for bit — parameters and state
// dicts — with pages that split tensors and a zero-padded last page.
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/index.js';
import { AdamW, createOptimizer, DEFAULT_PAGE_SIZE, type Optimizer, type OptimizerName, type OptimizerOptions } from '../../src/optim/index.js';
import { PagedDomain, resolvePageSize } from '../../src/optim/paged.js';
import { firstDiff, hashVec } from './adamw-reference.js';

const HF: OptimizerOptions = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
const opened: Optimizer[] = [];
async function make(name: OptimizerName, size: number, opts: OptimizerOptions): Promise<Optimizer> {
  const o = await createOptimizer(name, size, opts);
  opened.push(o);
  return o;
}
afterAll(async () => {
  for (const o of opened) await o.release();
});

function sameState(a: Map<string, Tensor>, b: Map<string, Tensor>): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [k, t] of a) {
    const u = b.get(k)!;
    expect(u.dims, k).toEqual(t.dims);
    expect(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), k).toBe(true);
  }
}

describe('PagedDomain', () => {
  it('reads whole pages as views and the padded last page as a zeroed copy', () => {
    const d = PagedDomain.identity(1000, 256);
    expect(d.pageCount).toBe(4);
    const flat = Float32Array.from({ length: 1000 }, (_, i) => i + 1);
    const p0 = d.read(flat, 0, () => new Float32Array(256));
    expect(p0.buffer).toBe(flat.buffer); // no copy
    const scratch = new Float32Array(256).fill(-7);
    const p3 = d.read(flat, 3, () => scratch);
    expect(p3).toBe(scratch);
    expect([p3[0], p3[231], p3[232], p3[255]]).toEqual([769, 1000, 0, 0]);
    expect(d.gapsOf(3)).toEqual([[232, 24]]);
    const out = new Float32Array(1000);
    for (let i = 0; i < 4; i++) d.write(d.read(flat, i, () => new Float32Array(256)), i, out);
    expect(out).toEqual(flat);
  });

  it('maps a re-arranged domain (tensors padded to blocks) and compacts it back to flat order', () => {
    // flat [0, 300) → dom [0, 300); flat [500, 600) → dom [512, 612); the rest is padding
    const d = new PagedDomain(768, 256, [
      { flat: 0, dom: 0, length: 300 },
      { flat: 500, dom: 512, length: 100 },
    ]);
    const flat = Float32Array.from({ length: 600 }, (_, i) => i);
    const pages = [0, 1, 2].map((i) => d.read(flat, i, () => new Float32Array(256).fill(NaN)).slice());
    expect(d.gapsOf(1)).toEqual([[44, 212]]);
    expect(d.gapsOf(2)).toEqual([[100, 156]]);
    expect([pages[1]![43], pages[1]![44], pages[2]![0], pages[2]![99], pages[2]![100]]).toEqual([299, 0, 500, 599, 0]);
    const compact = d.compact(pages, new Float32Array(d.elements));
    expect(compact.length).toBe(400);
    expect([compact[299], compact[300], compact[399]]).toEqual([299, 500, 599]);
    const back = [0, 1, 2].map(() => new Float32Array(256));
    d.expand(compact, back);
    expect(back[2]!.subarray(0, 100)).toEqual(pages[2]!.subarray(0, 100));
  });

  it('sizes pages: whole vector unpaged, 1,048,576 by default, multiples of 256 only', () => {
    expect(resolvePageSize(1000, false, undefined)).toBe(1000);
    expect(resolvePageSize(5_000_000, true, undefined)).toBe(DEFAULT_PAGE_SIZE);
    expect(resolvePageSize(1000, true, undefined)).toBe(1024);
    expect(() => resolvePageSize(1000, true, 100)).toThrow(/pageSize must be a positive multiple of 256/);
  });
});

describe('paged optimizers', () => {
  it('paged_adamw_32bit equals adamw_torch bit for bit (4 pages, padded last page, decay mask)', async () => {
    const n = 1000;
    const mask = Float32Array.from({ length: n }, (_, i) => (i % 4 === 0 ? 0 : 1));
    const opts = { ...HF, weightDecay: 0.1, decayMask: mask };
    const paged = await make('paged_adamw_32bit', n, { ...opts, pageSize: 256 });
    const plain = await make('adamw_torch', n, opts);
    expect((paged as AdamW).pageSize).toBe(256);
    expect((plain as AdamW).pageSize).toBe(n);
    const a = hashVec(n, 0, 1, () => 1);
    const b = a.slice();
    for (let t = 1; t <= 8; t++) {
      const g = hashVec(n, t, 2, (i) => 2 ** -(i % 9));
      await paged.step(a, g, 1e-2);
      await plain.step(b, g, 1e-2);
    }
    expect(firstDiff(a, b)).toBeUndefined();
    sameState(paged.stateDict(), plain.stateDict());
  });

  it('paged and unpaged state dicts are interchangeable (resume either way)', async () => {
    const n = 600;
    const paged = await make('paged_adamw_32bit', n, { ...HF, pageSize: 256 });
    const p = hashVec(n, 0, 1, () => 1);
    for (let t = 1; t <= 3; t++) await paged.step(p, hashVec(n, t, 2, () => 0.1), 1e-2);
    const plain = await make('adamw_torch', n, HF);
    plain.loadStateDict(paged.stateDict());
    const q = p.slice();
    await paged.step(p, hashVec(n, 4, 2, () => 0.1), 1e-2);
    await plain.step(q, hashVec(n, 4, 2, () => 0.1), 1e-2);
    expect(firstDiff(p, q)).toBeUndefined();
  });

  it('paged_adamw_8bit equals adamw_8bit bit for bit, with pages that split tensors', async () => {
    const sizes = [5000, 300, 8192, 17, 4353, 1000];
    const ranges: [number, number][] = [];
    let at = 0;
    for (const s of sizes) ranges.push([at, (at += s)]);
    const n = at;
    const mask = Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 0 : 1));
    const opts = { ...HF, weightDecay: 0.05, decayMask: mask, paramRanges: ranges };
    const paged = await make('paged_adamw_8bit', n, { ...opts, pageSize: 1024 });
    const plain = await make('adamw_8bit', n, opts);
    const a = hashVec(n, 0, 1, () => 1);
    const b = a.slice();
    for (let t = 1; t <= 6; t++) {
      const g = hashVec(n, t, 2, (i) => 2 ** -((i >> 6) % 10));
      await paged.step(a, g, 1e-2);
      await plain.step(b, g, 1e-2);
    }
    expect(firstDiff(a, b)).toBeUndefined();
    sameState(paged.stateDict(), plain.stateDict());
  });

  it('lets the event loop run between pages', async () => {
    const n = 256 * 16;
    const paged = await make('paged_adamw_32bit', n, { ...HF, pageSize: 256 });
    let ticks = 0;
    let on = true;
    const tick = (): void => {
      ticks++;
      if (on) setImmediate(tick);
    };
    setImmediate(tick);
    await paged.step(new Float32Array(n), new Float32Array(n).fill(1), 1e-3);
    on = false;
    expect(ticks).toBeGreaterThanOrEqual(15);
  });
});
