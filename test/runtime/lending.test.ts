// Session.runLending: feeds a worker borrows for one run and hands back without a copy (4-bit weights fed as
// inputs, so ORT holds no second copy). The caller's arrays are detached during the run and `returned`
// gets live ones with the same bytes, after a success and after an ORT error alike; on this thread nothing
// moves. A lent feed that views part of a bigger buffer is refused, naming it, unless it is one of the
// lent `views` of one buffer (a flat parameter vector), which moves once and comes back whole.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { createSession, type Lending } from '../../src/runtime/index.js';
import { lendViewWire } from '../../src/runtime/wire.js';
import { gatherBytes } from './graphs.js';

const data = (): Tensor => Tensor.fromNumbers([5, 6, 7], [3]);

for (const worker of [true, false]) {
  describe(`runLending (${worker ? 'worker' : 'this thread'})`, () => {
    it('hands the lent feed back after a run and after a failed one', async () => {
      const s = await createSession(gatherBytes(), { worker, logSeverityLevel: 4 });
      let d = data();
      const sent = d.data as Float32Array;
      const back: Tensor[] = [];
      const lending = { names: ['data'], returned: (t: Record<string, Tensor>) => back.push((d = t['data']!)) };
      const out = await s.runLending({ data: d, idx: Tensor.int64([2], [1]) }, lending);
      expect(Array.from(out['out']!.data as Float32Array)).toEqual([7]);
      expect(back).toHaveLength(1);
      // A worker borrowed the buffer: the sent array is detached, the returned one holds the same bytes.
      expect(sent.length).toBe(worker ? 0 : 3);
      expect(Array.from(d.data as Float32Array)).toEqual([5, 6, 7]);
      await expect(s.runLending({ data: d, idx: Tensor.int64([9], [1]) }, lending)).rejects.toMatchObject({ code: 'RUNTIME_ERROR' });
      expect(back).toHaveLength(2);
      expect(Array.from(d.data as Float32Array)).toEqual([5, 6, 7]);
      await s.release();
    });

    it('writes an output into a lent buffer and hands it back, after a run and after a failed one', async () => {
      const s = await createSession(gatherBytes(), { worker, logSeverityLevel: 4 });
      let buf: Tensor = new Tensor('float32', [1], new Float32Array([-1]));
      const sent = buf.data as Float32Array;
      const back: string[] = [];
      const lending = (): Lending => ({ names: [], into: { out: buf }, returned: (t) => { back.push(...Object.keys(t)); buf = t['out']!; } });
      const out = await s.runLending({ data: data(), idx: Tensor.int64([1], [1]) }, lending());
      expect(Array.from(out['out']!.data as Float32Array)).toEqual([6]);
      // The result is the lent buffer itself: the returned tensor holds the value ORT wrote in place.
      expect(Array.from(buf.data as Float32Array)).toEqual([6]);
      expect(out['out']!.data.buffer).toBe(buf.data.buffer);
      expect(sent.length).toBe(worker ? 0 : 1);
      if (!worker) expect(sent[0]).toBe(6);
      await expect(s.runLending({ data: data(), idx: Tensor.int64([9], [1]) }, lending())).rejects.toMatchObject({ code: 'RUNTIME_ERROR' });
      expect(back).toEqual(['out', 'out']);
      expect(buf.data.length).toBe(1);
      await s.release();
    });
  });
}

it('lends views of one buffer together: it moves once, each view keeps its offset, all come back over it', async () => {
  const s = await createSession(gatherBytes(), { logSeverityLevel: 4 });
  const flat = new Float32Array([1, 5, 6, 7]);
  const back: Record<string, Tensor> = {};
  const lending: Lending = { names: ['data', 'idx'], views: ['data'], returned: (t) => Object.assign(back, t) };
  const out = await s.runLending({ data: new Tensor('float32', [3], flat.subarray(1)), idx: Tensor.int64([2], [1]) }, lending);
  expect(Array.from(out['out']!.data as Float32Array)).toEqual([7]);
  expect(flat.length).toBe(0); // moved to the worker
  const view = back['data']!.data as Float32Array;
  expect(view.byteOffset).toBe(4);
  expect(Array.from(new Float32Array(view.buffer))).toEqual([1, 5, 6, 7]);
  // A buffer the views share with a lent feed outside them is refused before anything moves.
  const buf = new ArrayBuffer(24);
  const feeds = { data: new Tensor('float32', [3], new Float32Array(buf, 12, 3)), idx: new Tensor('int64', [1], new BigInt64Array(buf, 0, 1)) };
  await expect(s.runLending(feeds, { names: ['data', 'idx'], views: ['data'], returned: () => undefined })).rejects.toThrow(/lent feed 'idx' must own its whole buffer/);
  expect(buf.byteLength).toBe(24);
  const transfer = new Set<ArrayBuffer>([buf]);
  expect(() => lendViewWire('data', feeds.data, transfer, new Set())).toThrow(/lent view 'data' shares its buffer with a feed that is not one of the lent views/);
  await expect(s.runLending({ data: data(), idx: Tensor.int64([0], [1]) }, { names: ['idx'], views: ['data'], returned: () => undefined })).rejects.toThrow(
    /view 'data' is not among the lent names/,
  );
  await s.release();
});

it('refuses an output buffer that is not an output or does not fit it', async () => {
  const s = await createSession(gatherBytes(), { logSeverityLevel: 4 });
  const feeds = { data: data(), idx: Tensor.int64([0], [1]) };
  const lend = (into: Record<string, Tensor>): Lending => ({ names: [], into, returned: () => undefined });
  await expect(s.runLending(feeds, lend({ nope: Tensor.fromNumbers([0], [1]) }))).rejects.toThrow(/'nope', which is not an output/);
  await expect(s.runLending(feeds, lend({ out: Tensor.fromNumbers([0, 0], [2]) }))).rejects.toMatchObject({
    code: 'SHAPE_MISMATCH',
    message: expect.stringContaining("output 'out' is float32[2], the output is float32[1]"),
  });
  await s.release();
});

it('refuses to lend a view of a bigger buffer, naming the feed', async () => {
  const s = await createSession(gatherBytes(), { logSeverityLevel: 4 });
  const view = new Tensor('float32', [3], new Float32Array(8).subarray(1, 4));
  await expect(s.runLending({ data: view, idx: Tensor.int64([0], [1]) }, { names: ['data'], returned: () => undefined })).rejects.toMatchObject({
    code: 'INVALID_ARGUMENT',
    message: expect.stringContaining("'data'"),
  });
  await expect(s.runLending({ idx: Tensor.int64([0], [1]), data: data() }, { names: ['nope'], returned: () => undefined })).rejects.toThrow(/'nope' is not among the feeds/);
  await s.release();
});
