import { describe, expect, it } from 'vitest';
import { ProgressReporter, formatDuration } from '../../src/train/progress.js';

function sink(isTTY: boolean, columns = 120) {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY, columns, write: (s: string) => chunks.push(s) } };
}

describe('formatDuration', () => {
  it('formats like tqdm', () => {
    expect(formatDuration(0)).toBe('00:00');
    expect(formatDuration(83)).toBe('01:23');
    expect(formatDuration(3 * 3600 + 5)).toBe('3:00:05');
    expect(formatDuration(NaN)).toBe('?');
  });
});

describe('ProgressReporter in a terminal', () => {
  it('redraws one line with step/total, ETA, tokens/s and loss', () => {
    let t = 0;
    const { chunks, stream } = sink(true);
    const bar = new ProgressReporter({ total: 10, stream, now: () => t, desc: 'train' });
    t = 10_000;
    bar.update(5, { loss: 1.234, learningRate: 2e-4, tokens: 1000 });
    expect(chunks).toHaveLength(1);
    const line = chunks[0]!;
    expect(line.startsWith('\rtrain  50%|')).toBe(true);
    expect(line).toContain('| 5/10 [00:10<00:10, 100 tok/s, loss=1.2340, lr=2.00e-4]');
    expect(line.endsWith('\x1b[K')).toBe(true);
    expect(line).not.toContain('\n');
    // half the bar is full
    const barText = line.slice(line.indexOf('|') + 1, line.lastIndexOf('|'));
    expect(barText.length).toBeGreaterThanOrEqual(10);
    expect([...barText].filter((c) => c === '█').length).toBe(barText.length / 2);

    // throttled: a redraw within 100 ms is skipped, the last step is always drawn
    t = 10_050;
    bar.update(6, { loss: 1.1 });
    expect(chunks).toHaveLength(1);
    t = 10_060;
    bar.write('eval_loss 0.9');
    expect(chunks[1]).toBe('\r\x1b[Keval_loss 0.9\n');
    expect(chunks[2]).toContain(' 6/10 ');
    t = 10_070;
    bar.update(10, { tokens: 2000 });
    expect(chunks[3]).toContain('100%|');
    expect(chunks[3]).toContain('10/10 [00:10<00:00');
    bar.close();
    expect(chunks[chunks.length - 1]).toBe('\n');
    const n = chunks.length;
    bar.update(10);
    bar.close();
    expect(chunks.length).toBe(n);
  });

  it('counts rates and ETA from the resumed step', () => {
    let t = 0;
    const { chunks, stream } = sink(true);
    const bar = new ProgressReporter({ total: 100, stream, now: () => t, initialStep: 50, initialTokens: 5000 });
    t = 20_000;
    bar.update(60, { tokens: 7000 });
    expect(chunks[0]).toContain('60/100 [00:20<01:20, 100 tok/s');
  });
});

describe('ProgressReporter elsewhere', () => {
  it('prints plain lines: the first, then at most every logIntervalMs or logEverySteps, and the last', () => {
    let t = 0;
    const { chunks, stream } = sink(false);
    const bar = new ProgressReporter({ total: 100, stream, now: () => t, logIntervalMs: 30_000, logEverySteps: 25 });
    t = 1000;
    bar.update(1, { loss: 2 });
    expect(chunks).toEqual(['step 1/100 (1%) | loss 2.0000 | elapsed 00:01 | eta 01:39\n']);
    for (let s = 2; s <= 24; s++) {
      t += 1000;
      bar.update(s, { loss: 1.5 });
    }
    expect(chunks).toHaveLength(1);
    t += 1000;
    bar.update(25);
    expect(chunks).toHaveLength(2);
    expect(chunks[1]).toMatch(/^step 25\/100 \(25%\) \| loss 1\.5000 \| elapsed 00:25 \| eta 01:15\n$/);
    t += 31_000;
    bar.update(26);
    expect(chunks).toHaveLength(3);
    t += 1000;
    bar.update(27);
    bar.close(); // prints the final state that was not printed yet
    expect(chunks).toHaveLength(4);
    expect(chunks[3]).toContain('step 27/100');
    expect(chunks.every((c) => !c.includes('\r'))).toBe(true);
    bar.write('done');
    expect(chunks[4]).toBe('done\n');
  });

  it('prints nothing when disabled', () => {
    const { chunks, stream } = sink(false);
    const bar = new ProgressReporter({ total: 3, stream, disable: true });
    bar.update(1);
    bar.write('x');
    bar.close();
    expect(chunks).toEqual([]);
  });
});
