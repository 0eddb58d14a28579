// The loss curve picture written at the end of a run (logs/loss.svg): training `loss` and, when present,
// `eval_loss` against the optimizer step, read from log_history; axes with "nice" ticks (1, 2, 5 × 10^k),
// grid, axis labels, legend and title. Plain SVG text, so no canvas or image library is needed and the
// file opens in any browser. Not here: PNG output, smoothing (TensorBoard does that from the event file).

import { writeFileAtomic } from '../core/fs-atomic.js';

export interface LossPlotOptions {
  width?: number;
  height?: number;
  title?: string;
}

export interface LossSeries {
  name: string;
  color: string;
  points: [number, number][];
}

type Entry = Readonly<Record<string, unknown>>;

function series(history: readonly Entry[], key: string): [number, number][] {
  const out: [number, number][] = [];
  for (const e of history) {
    const step = e['step'];
    const v = e[key];
    if (typeof step === 'number' && typeof v === 'number' && Number.isFinite(step) && Number.isFinite(v)) out.push([step, v]);
  }
  return out;
}

/** The train (`loss`) and eval (`eval_loss`) series of a log_history, empty ones dropped. */
export function lossSeries(history: readonly Entry[]): LossSeries[] {
  return [
    { name: 'train loss', color: '#1f77b4', points: series(history, 'loss') },
    { name: 'eval loss', color: '#d62728', points: series(history, 'eval_loss') },
  ].filter((s) => s.points.length > 0);
}

/** Tick positions covering [lo, hi] at a 1/2/5 × 10^k spacing, about `target` of them. */
export function niceTicks(lo: number, hi: number, target = 6): { ticks: number[]; step: number } {
  if (!(hi > lo)) return { ticks: [lo], step: 1 };
  const raw = (hi - lo) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag);
  return { ticks: ticksFor(lo, hi, step), step };
}

// Index-based, so accumulated float error cannot add or drop a tick.
function ticksFor(lo: number, hi: number, step: number): number[] {
  const ticks: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  const last = Math.floor(hi / step + 1e-9);
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

function tickLabel(v: number, step: number): string {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(Math.min(decimals, 10));
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const r2 = (v: number): string => String(Math.round(v * 100) / 100);

/**
 * SVG text of the loss curves in `logHistory` (entries with `step` and `loss` / `eval_loss`).
 *
 * @example
 * await writeLossPlot('out/logs/loss.svg', state.logHistory, { title: 'SFT — Llama-2-7b' });
 */
export function renderLossPlotSvg(logHistory: readonly Entry[], options: LossPlotOptions = {}): string {
  const W = options.width ?? 720;
  const H = options.height ?? 420;
  const title = options.title ?? 'Loss';
  const m = { left: 70, right: 24, top: 44, bottom: 52 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const head =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
    `font-family="Helvetica, Arial, sans-serif" font-size="12">\n` +
    `<rect width="${W}" height="${H}" fill="white"/>\n` +
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="16">${esc(title)}</text>\n`;
  const all = lossSeries(logHistory);
  if (all.length === 0) {
    return head + `<text x="${W / 2}" y="${H / 2}" text-anchor="middle" fill="#666">No loss values logged.</text>\n</svg>\n`;
  }

  const xs = all.flatMap((s) => s.points.map((p) => p[0]));
  const ys = all.flatMap((s) => s.points.map((p) => p[1]));
  let x0 = Math.min(0, ...xs);
  let x1 = Math.max(...xs);
  if (x1 === x0) x1 = x0 + 1;
  let y0 = Math.min(...ys);
  let y1 = Math.max(...ys);
  const pad = y1 > y0 ? (y1 - y0) * 0.05 : Math.max(Math.abs(y0) * 0.1, 0.5);
  y0 -= pad;
  y1 += pad;
  // Extend the domain to whole ticks so the axes start and end on labelled values.
  const xStep = niceTicks(x0, x1, 8).step;
  const yStep = niceTicks(y0, y1, 6).step;
  x0 = Math.floor(x0 / xStep + 1e-9) * xStep;
  x1 = Math.ceil(x1 / xStep - 1e-9) * xStep;
  y0 = Math.floor(y0 / yStep + 1e-9) * yStep;
  y1 = Math.ceil(y1 / yStep - 1e-9) * yStep;
  const xt = { ticks: ticksFor(x0, x1, xStep), step: xStep };
  const yt = { ticks: ticksFor(y0, y1, yStep), step: yStep };
  const sx = (x: number): number => m.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number): number => m.top + ph - ((y - y0) / (y1 - y0)) * ph;

  let out = head;
  out += `<g stroke="#e5e5e5" stroke-width="1">\n`;
  for (const t of yt.ticks) out += `<line x1="${m.left}" y1="${r2(sy(t))}" x2="${m.left + pw}" y2="${r2(sy(t))}"/>\n`;
  for (const t of xt.ticks) out += `<line x1="${r2(sx(t))}" y1="${m.top}" x2="${r2(sx(t))}" y2="${m.top + ph}"/>\n`;
  out += `</g>\n`;
  out += `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>\n`;
  out += `<g class="y-ticks" text-anchor="end">\n`;
  for (const t of yt.ticks) {
    out += `<text x="${m.left - 6}" y="${r2(sy(t) + 4)}">${tickLabel(t, yt.step)}</text>\n`;
  }
  out += `</g>\n<g class="x-ticks" text-anchor="middle">\n`;
  for (const t of xt.ticks) out += `<text x="${r2(sx(t))}" y="${m.top + ph + 18}">${tickLabel(t, xt.step)}</text>\n`;
  out += `</g>\n`;
  out += `<text x="${m.left + pw / 2}" y="${H - 12}" text-anchor="middle">step</text>\n`;
  out += `<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">loss</text>\n`;

  for (const s of all) {
    const pts = s.points.map(([x, y]) => `${r2(sx(x))},${r2(sy(y))}`).join(' ');
    out += `<polyline class="series" data-name="${esc(s.name)}" fill="none" stroke="${s.color}" stroke-width="1.6" points="${pts}"/>\n`;
    // Sparse series (evaluations) get markers so single points are visible.
    if (s.points.length <= 60) {
      for (const [x, y] of s.points) out += `<circle cx="${r2(sx(x))}" cy="${r2(sy(y))}" r="2.5" fill="${s.color}"/>\n`;
    }
  }
  out += `<g class="legend">\n`;
  all.forEach((s, i) => {
    const ly = m.top + 14 + i * 18;
    const lx = m.left + pw - 110;
    out += `<line x1="${lx}" y1="${ly - 4}" x2="${lx + 20}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"/>\n`;
    out += `<text x="${lx + 26}" y="${ly}">${esc(s.name)}</text>\n`;
  });
  out += `</g>\n</svg>\n`;
  return out;
}

/** Render and write atomically. */
export async function writeLossPlot(file: string, logHistory: readonly Entry[], options: LossPlotOptions = {}): Promise<void> {
  await writeFileAtomic(file, renderLossPlotSvg(logHistory, options));
}
