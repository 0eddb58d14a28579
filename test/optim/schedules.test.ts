import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isTsFinetuneError } from '../../src/core/errors.js';
import { LrScheduler, getScheduler, type SchedulerOptions, type SchedulerType } from '../../src/optim/schedules.js';

const golden = JSON.parse(readFileSync(new URL('../fixtures/optim/schedules.json', import.meta.url), 'utf8')) as {
  cases: { type: SchedulerType; options: SchedulerOptions; values: number[] }[];
};

describe('getScheduler', () => {
  it('matches the independent Python reference for every schedule, warmup and edge step', () => {
    expect(golden.cases.length).toBeGreaterThanOrEqual(10);
    for (const c of golden.cases) {
      const lambda = getScheduler(c.type, c.options);
      c.values.forEach((v, step) => {
        expect(lambda(step), `${c.type} ${JSON.stringify(c.options)} step ${step}`).toBeCloseTo(v, 14);
      });
    }
  });

  it('gives the hand-computed values', () => {
    const lin = getScheduler('linear', { numWarmupSteps: 2, numTrainingSteps: 10 });
    expect([0, 1, 2, 6, 10, 11].map(lin)).toEqual([0, 0.5, 1, 0.5, 0, 0]);
    const cos = getScheduler('cosine', { numWarmupSteps: 0, numTrainingSteps: 100 });
    expect(cos(0)).toBe(1);
    expect(cos(50)).toBeCloseTo(0.5, 15);
    expect(cos(100)).toBeCloseTo(0, 15);
    // Hard restarts: 2 cycles over 10 steps → back to 1 at step 5, 0 from the last step on.
    const hr = getScheduler('cosine_with_restarts', { numWarmupSteps: 0, numTrainingSteps: 10, numCycles: 2 });
    expect(hr(5)).toBe(1);
    expect(hr(4)).toBeCloseTo(0.5 * (1 + Math.cos(Math.PI * 0.8)), 15);
    expect(hr(10)).toBe(0);
    // Polynomial, power 1: straight line from 1 to lrEnd/lrInit.
    const poly = getScheduler('polynomial', { numWarmupSteps: 0, numTrainingSteps: 4, lrInit: 1, lrEnd: 0.2 });
    [1, 0.6, 0.2, 0.2].forEach((v, i) => expect(poly([0, 2, 4, 9][i]!)).toBeCloseTo(v, 15));
    expect(getScheduler('constant', {})(123)).toBe(1);
    expect(getScheduler('constant_with_warmup', { numWarmupSteps: 4 })(2)).toBe(0.5);
    const minlr = getScheduler('cosine_with_min_lr', { numWarmupSteps: 0, numTrainingSteps: 10, minLr: 1e-5, lrInit: 1e-4 });
    expect(minlr(10)).toBeCloseTo(0.1, 15);
  });

  it('rejects missing or inconsistent arguments', () => {
    const codes = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isTsFinetuneError(e) ? e.code : 'other';
      }
      return 'none';
    };
    expect(codes(() => getScheduler('linear', { numWarmupSteps: 0 }))).toBe('INVALID_ARGUMENT');
    expect(codes(() => getScheduler('cosine', { numTrainingSteps: 3 }))).toBe('INVALID_ARGUMENT');
    expect(codes(() => getScheduler('polynomial', { numWarmupSteps: 0, numTrainingSteps: 3, lrInit: 1e-8 }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codes(() => getScheduler('cosine_with_min_lr', { numWarmupSteps: 0, numTrainingSteps: 3 }))).toBe('INVALID_ARGUMENT');
    expect(codes(() => getScheduler('wsd' as SchedulerType, {}))).toBe('INVALID_ARGUMENT');
  });
});

describe('LrScheduler', () => {
  it('steps like torch LambdaLR and round-trips through its JSON state', () => {
    const s = new LrScheduler('linear', { numWarmupSteps: 2, numTrainingSteps: 10 }, 1e-3);
    expect(s.lr).toBe(0); // the first update uses λ(0)
    s.step();
    expect(s.lr).toBeCloseTo(5e-4, 18);
    s.step();
    s.step();
    const state = JSON.parse(JSON.stringify(s.toJSON()));
    expect(state.last_epoch).toBe(3);
    expect(state._step_count).toBe(4);
    expect(state.base_lrs).toEqual([1e-3]);
    const r = LrScheduler.fromJSON(state);
    expect(r.lr).toBe(s.lr);
    r.step();
    s.step();
    expect(r.lr).toBe(s.lr);
    expect(r.lr).toBeCloseTo(1e-3 * (6 / 8), 18);
  });

  it('passes the base lr to polynomial as lrInit', () => {
    const s = new LrScheduler('polynomial', { numWarmupSteps: 0, numTrainingSteps: 2, lrEnd: 1e-4 }, 1e-3);
    s.step();
    s.step();
    expect(s.lr).toBeCloseTo(1e-4, 18);
  });
});
