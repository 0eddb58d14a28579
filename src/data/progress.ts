// A one-line progress bar on stderr, in the spirit of tqdm as `datasets` uses it
// ("Map: 45% ████▌      225000/500000 [00:03<00:04, 71234.5 examples/s]").
// On a terminal it redraws in place at most every 100 ms; elsewhere (CI logs, pipes) it prints one
// final line for long jobs only. HF_DATASETS_DISABLE_PROGRESS_BARS=1 or TS_FINETUNE_NO_PROGRESS=1 turn it off.
// Not here: anything about training logs (src/train).

export interface ProgressOptions {
  /** Label before the bar (datasets' `desc`). */
  desc?: string;
  /** Unit name after the rate. */
  unit?: string;
  /** Force on/off; default: on when stderr is a TTY (final line only otherwise, for runs over 2 s). */
  enabled?: boolean;
}

function disabledByEnv(): boolean {
  const v = (name: string): boolean => ['1', 'true', 'yes', 'on'].includes((process.env[name] ?? '').toLowerCase());
  return v('HF_DATASETS_DISABLE_PROGRESS_BARS') || v('TS_FINETUNE_NO_PROGRESS');
}

function clock(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const t = Math.round(s);
  const mm = String(Math.floor(t / 60) % 60).padStart(2, '0');
  const ss = String(t % 60).padStart(2, '0');
  return t >= 3600 ? `${Math.floor(t / 3600)}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)}${units[i]}`;
}

export class ProgressLine {
  private readonly t0 = Date.now();
  private lastDraw = 0;
  private done = 0;
  private readonly tty: boolean;
  private readonly on: boolean;
  private closed = false;

  constructor(
    private total: number | undefined,
    private readonly opts: ProgressOptions = {},
  ) {
    this.tty = Boolean(process.stderr.isTTY);
    this.on = !disabledByEnv() && opts.enabled !== false;
  }

  setTotal(total: number | undefined): void {
    this.total = total;
  }

  /** Move to `done` units (absolute). */
  update(done: number): void {
    this.done = done;
    if (!this.on || !(this.tty || this.opts.enabled)) return;
    const now = Date.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.draw(false);
  }

  add(n: number): void {
    this.update(this.done + n);
  }

  /** Final line (always on a TTY; elsewhere only when forced or when the job took over 2 s). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.on) return;
    const long = Date.now() - this.t0 > 2000;
    if (this.tty || this.opts.enabled || long) this.draw(true);
  }

  private draw(final: boolean): void {
    const el = (Date.now() - this.t0) / 1000;
    const unit = this.opts.unit ?? 'examples';
    const bytes = unit === 'B';
    const fmt = (n: number): string => (bytes ? formatBytes(n) : String(n));
    const rate = el > 0 ? this.done / el : 0;
    const rateS = bytes ? `${formatBytes(rate)}/s` : `${rate.toFixed(1)} ${unit}/s`;
    let line: string;
    if (this.total !== undefined && this.total > 0) {
      const frac = Math.min(1, this.done / this.total);
      const width = 20;
      const full = Math.floor(frac * width);
      const bar = '█'.repeat(full) + (full < width ? ' '.repeat(width - full) : '');
      const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
      line = `${this.opts.desc ?? ''}: ${String(Math.floor(frac * 100)).padStart(3)}%|${bar}| ${fmt(this.done)}/${fmt(this.total)} [${clock(el)}<${clock(eta)}, ${rateS}]`;
    } else {
      line = `${this.opts.desc ?? ''}: ${fmt(this.done)} [${clock(el)}, ${rateS}]`;
    }
    if (this.tty) process.stderr.write(`\r${line}\x1b[K${final ? '\n' : ''}`);
    else if (final) process.stderr.write(`${line}\n`);
  }
}
