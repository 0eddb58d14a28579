// The training progress display. In a terminal: one line redrawn in place (carriage return), tqdm-style —
// percent, bar, step/total, elapsed<ETA, tokens/s, loss, learning rate. Elsewhere (CI logs, files, pipes):
// a plain line at most every `logIntervalMs` (and every `logEverySteps` steps if set), plus the first and
// the last step. It writes to the stream it is given, so tests read exactly what a user would see.
// Not here: computing the numbers (the trainer passes loss, cumulative tokens and the learning rate).

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Total optimizer steps. */
  total: number;
  /** Default process.stderr (stdout stays clean for the program's own output). */
  stream?: ProgressStream;
  /** Redraw in place; default `stream.isTTY`. */
  isTTY?: boolean;
  /** The step a resumed run starts from: rates and ETA count only the steps done in this session. */
  initialStep?: number;
  /** Tokens already counted when this session starts (a resumed run's num_tokens). Default 0. */
  initialTokens?: number;
  /** Label in front of the bar, e.g. 'train'. */
  desc?: string;
  /** Minimum time between redraws in a terminal. Default 100 ms. */
  minIntervalMs?: number;
  /** Minimum time between lines when not a terminal. Default 30 s. */
  logIntervalMs?: number;
  /** Also print a line every N steps when not a terminal. Default: time only. */
  logEverySteps?: number;
  /** Print nothing (TrainingArguments.disableTqdm). */
  disable?: boolean;
  now?: () => number;
}

export interface ProgressInfo {
  loss?: number;
  learningRate?: number;
  /** Tokens processed since the run started (cumulative, as num_tokens); tokens/s is derived from it. */
  tokens?: number;
  epoch?: number;
}

/** mm:ss, or h:mm:ss from one hour, as tqdm. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const two = (n: number): string => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(sec)}` : `${two(m)}:${two(sec)}`;
}

function formatRate(tokPerSec: number): string {
  if (tokPerSec >= 1e6) return `${(tokPerSec / 1e6).toFixed(2)}M tok/s`;
  if (tokPerSec >= 1e4) return `${(tokPerSec / 1e3).toFixed(1)}k tok/s`;
  return `${Math.round(tokPerSec)} tok/s`;
}

function formatNum(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : v.toFixed(4);
}

const BLOCKS = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];

/**
 * @example
 * const bar = new ProgressReporter({ total: plan.maxSteps, desc: 'train' });
 * bar.update(step, { loss, learningRate: sched.lr, tokens: numTokens });
 * bar.write('{"eval_loss": 1.02}');   // printed above the bar
 * bar.close();
 */
export class ProgressReporter {
  private readonly total: number;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly o: ProgressOptions;
  private readonly now: () => number;
  private readonly start: number;
  private readonly initialStep: number;
  private readonly startTokens: number;
  private step: number;
  private info: ProgressInfo = {};
  private lastDraw = -Infinity;
  private lastLineStep = -1;
  private closed = false;

  constructor(options: ProgressOptions) {
    this.o = options;
    this.total = Math.max(0, options.total);
    this.stream = options.stream ?? process.stderr;
    this.tty = options.isTTY ?? this.stream.isTTY === true;
    this.now = options.now ?? Date.now;
    this.start = this.now();
    this.initialStep = options.initialStep ?? 0;
    this.step = this.initialStep;
    this.startTokens = options.initialTokens ?? 0;
  }

  /** Report that `step` optimizer steps are done. */
  update(step: number, info: ProgressInfo = {}): void {
    if (this.closed || this.o.disable === true) return;
    this.step = step;
    this.info = { ...this.info, ...info };
    const t = this.now();
    const last = step >= this.total;
    if (this.tty) {
      if (last || t - this.lastDraw >= (this.o.minIntervalMs ?? 100)) this.draw(t);
      return;
    }
    const everySteps = this.o.logEverySteps;
    const due =
      this.lastLineStep < 0 ||
      last ||
      t - this.lastDraw >= (this.o.logIntervalMs ?? 30_000) ||
      (everySteps !== undefined && everySteps > 0 && step % everySteps === 0);
    if (due) this.line(t);
  }

  /** Print a message (eval results, warnings) without garbling the bar. */
  write(message: string): void {
    if (this.o.disable === true) return;
    if (this.tty && !this.closed && this.lastDraw > -Infinity) {
      this.stream.write('\r\x1b[K' + message + '\n');
      this.draw(this.now());
    } else {
      this.stream.write(message + '\n');
    }
  }

  /** Final state and a newline; later updates are ignored. */
  close(): void {
    if (this.closed || this.o.disable === true) return;
    const t = this.now();
    if (this.tty) {
      if (this.lastDraw > -Infinity) {
        this.draw(t);
        this.stream.write('\n');
      }
    } else if (this.lastLineStep !== this.step) {
      this.line(t);
    }
    this.closed = true;
  }

  private stats(t: number): { elapsed: number; eta: number; rate: number | undefined; pct: number } {
    const elapsed = (t - this.start) / 1000;
    const done = this.step - this.initialStep;
    const eta = done > 0 ? (elapsed / done) * Math.max(0, this.total - this.step) : NaN;
    const tokens = this.info.tokens;
    const rate = tokens !== undefined && elapsed > 0 ? (tokens - this.startTokens) / elapsed : undefined;
    const pct = this.total > 0 ? Math.min(100, (100 * this.step) / this.total) : 100;
    return { elapsed, eta, rate, pct };
  }

  private extras(rate: number | undefined, sep: string): string[] {
    const parts: string[] = [];
    if (rate !== undefined) parts.push(formatRate(rate));
    if (this.info.loss !== undefined) parts.push(`loss${sep}${formatNum(this.info.loss)}`);
    if (this.info.learningRate !== undefined) parts.push(`lr${sep}${this.info.learningRate.toExponential(2)}`);
    if (this.info.epoch !== undefined) parts.push(`epoch${sep}${this.info.epoch.toFixed(2)}`);
    return parts;
  }

  private draw(t: number): void {
    const { elapsed, eta, rate, pct } = this.stats(t);
    const head = `${this.o.desc !== undefined ? this.o.desc + ' ' : ''}${pct.toFixed(0).padStart(3)}%|`;
    const tail =
      `| ${this.step}/${this.total} [${formatDuration(elapsed)}<${formatDuration(eta)}` +
      this.extras(rate, '=').map((p) => ', ' + p).join('') +
      ']';
    const columns = this.stream.columns ?? 80;
    const width = Math.max(10, Math.min(40, columns - head.length - tail.length - 1));
    const filled = (pct / 100) * width;
    const full = Math.floor(filled);
    const partial = full < width ? BLOCKS[Math.floor((filled - full) * 8)]! : '';
    const bar = '█'.repeat(full) + partial + ' '.repeat(Math.max(0, width - full - partial.length));
    this.stream.write('\r' + head + bar + tail + '\x1b[K');
    this.lastDraw = t;
  }

  private line(t: number): void {
    const { elapsed, eta, rate, pct } = this.stats(t);
    const parts = [
      `${this.o.desc !== undefined ? this.o.desc + ' ' : ''}step ${this.step}/${this.total} (${pct.toFixed(0)}%)`,
      ...this.extras(rate, ' '),
      `elapsed ${formatDuration(elapsed)}`,
      `eta ${formatDuration(eta)}`,
    ];
    this.stream.write(parts.join(' | ') + '\n');
    this.lastDraw = t;
    this.lastLineStep = this.step;
  }
}
