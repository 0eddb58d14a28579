// Session.runLending: feeds a worker borrows for one run and hands back without a copy (4-bit weights fed as
// inputs, so ORT holds no second copy). The caller's arrays are detached during the run and `returned`
// gets live ones with the same bytes, after a success and after an ORT error alike; on this thread nothing
// moves. A lent feed that views part of a bigger buffer is refused, naming it.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { createSession, type Lending } from '../../src/runtime/index.js';
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
