// adamw_torch through the real runtime (kernels/adamw.ts on onnxruntime-node's CPU EP): bit for bit with
// torch's single-tensor AdamW (golden values from scripts/golden_adamw.py), within 1e-6 of the float64
// closed form over 100 steps, the weight-decay mask, the resume round trip, and errors.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Tensor, isTsFinetuneError } from '../../src/core/index.js';
import { createOptimizer, type Optimizer, type OptimizerOptions } from '../../src/optim/index.js';
import { torchAdamwHyper } from '../../kernels/adamw.js';
import { AdamwF64, firstDiff, hashVec, torchStepF32 } from './adamw-reference.js';

interface GoldenCase {
  name: string;
  n: number;
  steps: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weight_decay: number;
  param: number[];
  exp_avg: number[];
  exp_avg_sq: number[];
}
const golden = JSON.parse(readFileSync(new URL('../fixtures/optim/adamw_torch.json', import.meta.url), 'utf8')) as { cases: GoldenCase[] };

const HF: OptimizerOptions = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
const opened: Optimizer[] = [];
async function make(name: Parameters<typeof createOptimizer>[0], size: number, opts: OptimizerOptions): Promise<Optimizer> {
  const o = await createOptimizer(name, size, opts);
  opened.push(o);
  return o;
}
afterAll(async () => {
  for (const o of opened) await o.release();
});

const gradAt = (n: number, t: number): Float32Array => hashVec(n, t, 2, (i) => 2 ** -(i % 12));
const decayMaskOf = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => (i % 3 !== 0 ? 1 : 0));

describe('adamw_torch', () => {
  for (const c of golden.cases) {
    it(`equals torch's AdamW bit for bit (${c.name}: ${c.n} elements, ${c.steps} steps)`, async () => {
      const opts = { beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weight_decay, decayMask: decayMaskOf(c.n) };
      const opt = await make('adamw_torch', c.n, opts);
      const p = hashVec(c.n, 0, 1, () => 2);
      for (let t = 1; t <= c.steps; t++) await opt.step(p, gradAt(c.n, t), c.lr * (1 - t / 200));
      const st = opt.stateDict();
      expect(firstDiff(p, Float32Array.from(c.param))).toBeUndefined();
      expect(firstDiff(st.get('exp_avg')!.data as Float32Array, Float32Array.from(c.exp_avg))).toBeUndefined();
      expect(firstDiff(st.get('exp_avg_sq')!.data as Float32Array, Float32Array.from(c.exp_avg_sq))).toBeUndefined();
      expect(opt.stepCount).toBe(c.steps);
    });
  }

  it('matches the float64 closed form to 1e-6 over 100 steps, and its own float32 transcription bit for bit', async () => {
    const n = 1000;
    const cfg = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05 };
    const mask = decayMaskOf(n);
    const opt = await make('adamw_torch', n, { ...cfg, decayMask: mask });
    // |p| < 0.5: the gap to float64 is float32 rounding of p itself (≈ 9 ulp after 100 steps near 1.0).
    const p = hashVec(n, 0, 1, () => 1);
    const ref = new AdamwF64(p, cfg, mask);
    const [p32, m32, v32] = [p.slice(), new Float32Array(n), new Float32Array(n)];
    let worst = 0;
    for (let t = 1; t <= 100; t++) {
      const g = gradAt(n, t);
      const lr = 1e-3 * (1 - t / 150);
      await opt.step(p, g, lr);
      ref.step(g, lr);
      torchStepF32(p32, g, m32, v32, torchAdamwHyper({ lr, ...cfg }, t), mask);
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(p[i]! - ref.p[i]!));
    }
    expect(worst).toBeLessThan(1e-6);
    expect(worst).toBeGreaterThan(0); // float32 really ran
    expect(firstDiff(p, p32)).toBeUndefined();
    expect(firstDiff(opt.stateDict().get('exp_avg_sq')!.data as Float32Array, v32)).toBeUndefined();
    const m = opt.stateDict().get('exp_avg')!.data as Float32Array;
    // m averages gradients of scale 2^-(i % 12): compare relative to that scale (m itself may cancel to ~0).
    for (let i = 0; i < n; i++) expect(Math.abs(m[i]! - ref.m[i]!)).toBeLessThanOrEqual(1e-6 * 2 ** -(i % 12));
  });

  it('decays only where the mask is 1 (masked elements equal a weight-decay-0 run)', async () => {
    const n = 300;
    const mask = decayMaskOf(n);
    const withWd = await make('adamw_torch', n, { ...HF, weightDecay: 0.3, decayMask: mask });
    const noWd = await make('adamw_torch', n, HF);
    const allWd = await make('adamw_torch', n, { ...HF, weightDecay: 0.3 });
    const [a, b, c] = [hashVec(n, 0, 1, () => 2), hashVec(n, 0, 1, () => 2), hashVec(n, 0, 1, () => 2)];
    for (let t = 1; t <= 5; t++) {
      const g = gradAt(n, t);
      await withWd.step(a, g, 0.01);
      await noWd.step(b, g, 0.01);
      await allWd.step(c, g, 0.01);
    }
    for (let i = 0; i < n; i++) {
      expect(Object.is(a[i], mask[i] === 1 ? c[i] : b[i])).toBe(true);
      if (mask[i] === 1) expect(a[i]).not.toBe(b[i]);
    }
  });

  it('resumes bit-identically: 3 steps + stateDict / loadStateDict + 3 steps = 6 steps', async () => {
    const n = 777;
    const opts = { ...HF, weightDecay: 0.01, decayMask: decayMaskOf(n) };
    const straight = await make('adamw_torch', n, opts);
    const p6 = hashVec(n, 0, 1, () => 2);
    for (let t = 1; t <= 6; t++) await straight.step(p6, gradAt(n, t), 1e-3);

    const first = await make('adamw_torch', n, opts);
    const p = hashVec(n, 0, 1, () => 2);
    for (let t = 1; t <= 3; t++) await first.step(p, gradAt(n, t), 1e-3);
    // Through plain tensors (what the checkpoint writes), into a fresh optimizer.
    const saved = new Map([...first.stateDict()].map(([k, t]) => [k, new Tensor(t.dtype, t.dims, t.data.slice())] as const));
    const resumed = await make('adamw_torch', n, opts);
    resumed.loadStateDict(saved);
    expect(resumed.stepCount).toBe(3);
    for (let t = 4; t <= 6; t++) await resumed.step(p, gradAt(n, t), 1e-3);
    expect(firstDiff(p, p6)).toBeUndefined();
    expect(firstDiff(resumed.stateDict().get('exp_avg')!.data as Float32Array, straight.stateDict().get('exp_avg')!.data as Float32Array)).toBeUndefined();
  });

  // The CPU default runs the update on the host (src/optim/adamw-host.ts); the graph (kernels/adamw.ts) is
  // what CUDA/WebGPU run. Both must give the same bits, for each branch of the math.
  const engineCases: { name: string; opts: OptimizerOptions; optim: 'adamw_torch' | 'paged_adamw_32bit' }[] = [
    { name: 'HF defaults', opts: HF, optim: 'adamw_torch' },
    { name: 'masked weight decay', opts: { ...HF, weightDecay: 0.1, decayMask: decayMaskOf(3001) }, optim: 'adamw_torch' },
    { name: 'β1 = 0.3 (the other lerp branch)', opts: { ...HF, beta1: 0.3, weightDecay: 0.01 }, optim: 'adamw_torch' },
    { name: 'paged, pageSize 1024', opts: { ...HF, weightDecay: 0.01, pageSize: 1024 }, optim: 'paged_adamw_32bit' },
  ];
  for (const c of engineCases) {
    it(`host loop and update graph give identical bits (${c.name})`, async () => {
      const n = 3001;
      const host = await make(c.optim, n, c.opts);
      const graph = await make(c.optim, n, { ...c.opts, engine: 'graph' });
      expect((host as unknown as { engine: string }).engine).toBe('host');
      expect((graph as unknown as { engine: string }).engine).toBe('graph');
      const [a, b] = [hashVec(n, 0, 1, () => 2), hashVec(n, 0, 1, () => 2)];
      for (let t = 1; t <= 7; t++) {
        const g = hashVec(n, t, 2, (i) => 2 ** -(i % 20));
        await host.step(a, g, 3e-3);
        await graph.step(b, g, 3e-3);
      }
      expect(firstDiff(a, b)).toBeUndefined();
      for (const k of ['exp_avg', 'exp_avg_sq']) {
        expect(firstDiff(host.stateDict().get(k)!.data as Float32Array, graph.stateDict().get(k)!.data as Float32Array)).toBeUndefined();
      }
    });
  }

  it("uses the host engine when device 'auto' resolves to the CPU", async () => {
    const opt = await make('adamw_torch', 64, { ...HF, device: 'auto' });
    expect((opt as unknown as { engine: string }).engine).toBe('host');
  });

  it('rejects a state dict of another shape, naming the key', async () => {
    const opt = await make('adamw_torch', 10, HF);
    const bad = new Map<string, Tensor>([
      ['step', Tensor.int64([1], [])],
      ['exp_avg', Tensor.zeros('float32', [11])],
      ['exp_avg_sq', Tensor.zeros('float32', [10])],
    ]);
    expect(() => opt.loadStateDict(bad)).toThrow(/'exp_avg' is float32\[11\], expected float32\[10\]/);
    expect(() => opt.loadStateDict(new Map([['step', Tensor.int64([1], [])]]))).toThrow(/missing 'exp_avg'/);
  });

  it('checks its arguments', async () => {
    await expect(createOptimizer('adamw_torh' as 'adamw_torch', 4, HF)).rejects.toThrow(/did you mean 'adamw_torch'/);
    await expect(createOptimizer('adamw_torch', 4, { ...HF, beta2: 1 })).rejects.toThrow(/beta2 must be in \[0, 1\)/);
    await expect(createOptimizer('adamw_torch', 4, { ...HF, decayMask: new Float32Array(3) })).rejects.toThrow(/decayMask must be a Float32Array of 4/);
    const opt = await make('adamw_torch', 4, HF);
    await expect(opt.step(new Float32Array(4), new Float32Array(5), 1e-3)).rejects.toThrow(/grads must be a Float32Array of 4/);
    await expect(opt.step(new Float32Array(4), new Float32Array(4), NaN)).rejects.toThrow(/lr must be a finite number/);
    expect(opt.stepCount).toBe(0);
  });

  it("passes the runtime's device error through (cuda is not installed here)", async () => {
    const err = await createOptimizer('adamw_torch', 16, { ...HF, device: 'cuda' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isTsFinetuneError(err, 'EP_UNAVAILABLE')).toBe(true);
    expect(String((err as Error).message)).toMatch(/CUDA/i);
  });
});
