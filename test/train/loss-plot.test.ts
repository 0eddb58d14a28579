import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lossSeries, niceTicks, renderLossPlotSvg, writeLossPlot } from '../../src/train/loss-plot.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsft-plot-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function history() {
  const h: Record<string, number>[] = [];
  for (let s = 10; s <= 300; s += 10) h.push({ loss: 2.5 * Math.exp(-s / 100) + 0.3, grad_norm: 1, step: s, epoch: s / 100 });
  for (let s = 50; s <= 300; s += 50) h.push({ eval_loss: 2 * Math.exp(-s / 110) + 0.4, eval_runtime: 3, step: s });
  h.push({ train_loss: 0.9, train_runtime: 100, step: 300 });
  return h;
}

const attrs = (tag: string) => Object.fromEntries([...tag.matchAll(/([a-z-]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));

describe('niceTicks', () => {
  it('chooses 1/2/5 × 10^k steps', () => {
    expect(niceTicks(0, 2.7, 6)).toEqual({ ticks: [0, 0.5, 1, 1.5, 2, 2.5], step: 0.5 });
    expect(niceTicks(0, 300, 8).step).toBe(50);
    expect(niceTicks(0.31, 0.37, 6)).toEqual({ ticks: [0.31, 0.32, 0.33, 0.34, 0.35, 0.36, 0.37], step: 0.01 });
    expect(niceTicks(0, 7, 8).ticks).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});

describe('renderLossPlotSvg', () => {
  it('draws train and eval loss inside labelled axes', () => {
    const h = history();
    expect(lossSeries(h).map((s) => [s.name, s.points.length])).toEqual([['train loss', 30], ['eval loss', 6]]);
    const svg = renderLossPlotSvg(h, { title: 'SFT <tiny> & co', width: 600, height: 400 });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="600" height="400"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('SFT &lt;tiny&gt; &amp; co');
    expect(svg.match(/<text/g)!.length).toBe(svg.match(/<\/text>/g)!.length);
    expect(svg).toContain('>step</text>');
    expect(svg).toContain('>loss</text>');
    expect(svg).toContain('>train loss</text>');
    expect(svg).toContain('>eval loss</text>');

    const frame = attrs(svg.match(/<rect x=[^>]*fill="none"[^>]*>/)![0]);
    const [fx, fy, fw, fh] = ['x', 'y', 'width', 'height'].map((k) => Number(frame[k]));
    const polylines = [...svg.matchAll(/<polyline [^>]*>/g)].map((m) => attrs(m[0]));
    expect(polylines.map((p) => p['data-name'])).toEqual(['train loss', 'eval loss']);
    const pts = polylines.map((p) => p['points']!.split(' ').map((xy: string) => xy.split(',').map(Number)));
    expect(pts.map((p) => p.length)).toEqual([30, 6]);
    for (const [x, y] of pts.flat()) {
      expect(x).toBeGreaterThanOrEqual(fx!);
      expect(x).toBeLessThanOrEqual(fx! + fw!);
      expect(y).toBeGreaterThanOrEqual(fy!);
      expect(y).toBeLessThanOrEqual(fy! + fh!);
    }
    // loss falls, so y (downwards in SVG) rises along the train curve; x increases with step
    const train = pts[0]!;
    expect(train[29]![1]).toBeGreaterThan(train[0]![1]!);
    expect(train[29]![0]).toBeGreaterThan(train[0]![0]!);
    // the last step sits on the right edge: the x axis ends on the tick 300
    expect(train[29]![0]).toBeCloseTo(fx! + fw!, 1);
    const xLabels = [...svg.matchAll(/<g class="x-ticks"[^]*?<\/g>/g)][0]![0].match(/>([^<]+)<\/text>/g)!.map((s) => s.slice(1, -7));
    expect(xLabels).toEqual(['0', '50', '100', '150', '200', '250', '300']);
    const yLabels = [...svg.matchAll(/<g class="y-ticks"[^]*?<\/g>/g)][0]![0].match(/>([^<]+)<\/text>/g)!.map((s) => s.slice(1, -7));
    expect(yLabels.length).toBeGreaterThanOrEqual(4);
    expect(yLabels.every((l) => /^\d+(\.\d)?$/.test(l))).toBe(true);
  });

  it('copes with no data, one point and non-finite values', () => {
    expect(renderLossPlotSvg([])).toContain('No loss values logged.');
    const one = renderLossPlotSvg([{ loss: 1.5, step: 1 }, { loss: NaN, step: 2 }, { loss: Infinity, step: 3 }]);
    const p = one.match(/points="([^"]*)"/)![1]!;
    expect(p.split(' ')).toHaveLength(1);
    expect(one).not.toContain('NaN');
  });

  it('writes the file', async () => {
    const file = path.join(dir, 'logs', 'loss.svg');
    await writeLossPlot(file, history());
    expect(readFileSync(file, 'utf8')).toContain('<polyline');
  });
});
