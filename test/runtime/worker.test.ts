// The point of the worker: while ORT computes a long step, the caller's event loop keeps running
// (timers, progress bars, Ctrl-C). On the calling thread (worker: false) the same run blocks it.
// Also: the built package (dist/) finds its worker file, from ESM and from CJS.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { createSession } from '../../src/runtime/index.js';
import { slowBytes } from './graphs.js';

const TICK_MS = 5;

/** Timer ticks during `run`, and the longest the event loop went without one (from the start to the end of run). */
async function ticksDuring(run: () => Promise<unknown>): Promise<{ ticks: number; ms: number; maxGap: number }> {
  let ticks = 0;
  const t0 = performance.now();
  let last = t0;
  let maxGap = 0;
  const iv = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, TICK_MS);
  await run();
  const end = performance.now();
  clearInterval(iv);
  return { ticks, ms: end - t0, maxGap: Math.max(maxGap, end - last) };
}

describe('worker thread', () => {
  it('a timer keeps firing during a long run; in-process the same run blocks it', async () => {
    const bytes = slowBytes(12); // ~13 GFLOP: ~40 ms at the ~340 GFLOP/s these VMs reach
    const x = Tensor.zeros('float32', [512, 1024]);
    const inWorker = await createSession(bytes, { reuse: false });
    const inProcess = await createSession(bytes, { reuse: false, worker: false });
    try {
      await inWorker.run({ x }, ['first']); // warm up allocations
      await inProcess.run({ x }, ['first']);
      const w = await ticksDuring(() => inWorker.run({ x }, ['y']));
      const p = await ticksDuring(() => inProcess.run({ x }, ['y']));
      expect(w.ms).toBeGreaterThan(20); // long enough that blocking would show
      expect(p.ms).toBeGreaterThan(20);
      // In the worker the loop is never blocked for long (on a loaded 2-core VM ORT's threads compete with
      // the timer, so allow gaps, but never the whole run); on this thread the run blocks it throughout.
      expect(w.ticks).toBeGreaterThanOrEqual(3);
      expect(w.maxGap).toBeLessThan(w.ms / 2);
      expect(p.ticks).toBeLessThanOrEqual(1);
      expect(p.maxGap).toBeGreaterThan(p.ms * 0.8);
      // fetches limit what is computed and returned
      const out = await inWorker.run({ x }, ['first']);
      expect(Object.keys(out)).toEqual(['first']);
      expect((out['first']!.data as Float32Array)[0]).toBe(1);
    } finally {
      await inWorker.release();
      await inProcess.release();
    }
  });
});

const distBuilt = existsSync(new URL('../../dist/worker.js', import.meta.url)) && existsSync(new URL('../../dist/index.cjs', import.meta.url));

describe.skipIf(!distBuilt)('built package (dist/, from `npx tsup`)', () => {
  const script = (lib: string): string => `
    const { createSession, Tensor, encodeModel } = LIB;
    (async () => {
      const w = new Float32Array([1, 2, 3, 4]);
      const bytes = encodeModel({ irVersion: 10, opsetImport: [{ domain: '', version: 21 }], producerName: 't', producerVersion: '0',
        graph: { name: 'g', node: [{ input: ['x', 'W'], output: ['y'], name: 'mm', opType: 'MatMul', domain: '', attribute: [] }],
          initializer: [{ name: 'W', dims: [2, 2], dataType: 1, rawData: new Uint8Array(w.buffer) }],
          input: [{ name: 'x', elemType: 1, shape: [{ dimValue: 2 }, { dimValue: 2 }] }],
          output: [{ name: 'y', elemType: 1, shape: [{ dimValue: 2 }, { dimValue: 2 }] }], valueInfo: [] } });
      const s = await createSession(bytes, { threads: 1 });
      const out = await s.run({ x: Tensor.fromNumbers([1, 0, 0, 1], [2, 2]) });
      console.log(JSON.stringify(Array.from(out.y.data)));
      await s.release();
    })();`.replace('LIB', lib);

  it('runs a session through dist/worker.js from ESM and CJS', () => {
    const cwd = new URL('../../', import.meta.url).pathname;
    const esm = execFileSync(process.execPath, ['--input-type=module', '-e', `import * as lib from './dist/index.js'; ${script('lib')}`], { cwd, encoding: 'utf8' });
    expect(esm.trim()).toBe('[1,2,3,4]');
    const cjs = execFileSync(process.execPath, ['-e', script("require('./dist/index.cjs')")], { cwd, encoding: 'utf8' });
    expect(cjs.trim()).toBe('[1,2,3,4]');
  });
});
