// logs/metrics.jsonl: one JSON object per line for every log event of a run (train logs, evaluations,
// the final summary), appended as it happens so `tail -f` and pandas.read_json(lines=True) work during
// training. Lines are written with Python's JSON conventions (NaN / Infinity as bare tokens, see py-json.ts).
// Not here: what goes in a record (the trainer decides; HF's log_history entries are the model).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsFinetuneError } from '../core/errors.js';
import { parsePyJson, stringifyPyJson } from './py-json.js';

export type MetricsRecord = Record<string, number | string | boolean | null>;

/** `<outputDir>/logs/metrics.jsonl`. */
export function metricsLogPath(outputDir: string): string {
  return path.join(outputDir, 'logs', 'metrics.jsonl');
}

export interface MetricsLogOptions {
  /**
   * Resuming from a checkpoint at this global step: lines with a larger `step` (logged by the interrupted
   * run after that checkpoint) are dropped first, so the file reads as one uninterrupted run.
   */
  resumeStep?: number;
  /** Add `time` (Unix seconds) to records that lack it. Default true. */
  addTime?: boolean;
  now?: () => number;
}

/**
 * Appends records to a JSON Lines file, one synchronous write per record (a crash loses nothing logged).
 *
 * @example
 * const log = MetricsLog.open(metricsLogPath('out'));
 * log.append({ loss: 1.23, grad_norm: 0.8, learning_rate: 2e-4, epoch: 0.1, step: 10 });
 */
export class MetricsLog {
  readonly file: string;
  private readonly addTime: boolean;
  private readonly now: () => number;

  private constructor(file: string, addTime: boolean, now: () => number) {
    this.file = file;
    this.addTime = addTime;
    this.now = now;
  }

  static open(file: string, options: MetricsLogOptions = {}): MetricsLog {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (options.resumeStep !== undefined && fs.existsSync(file)) {
      const keep = readMetricsLog(file).filter((r) => typeof r['step'] !== 'number' || r['step'] <= options.resumeStep!);
      fs.writeFileSync(file, keep.map((r) => stringifyPyJson(r) + '\n').join(''));
    }
    return new MetricsLog(file, options.addTime ?? true, options.now ?? Date.now);
  }

  append(record: Readonly<MetricsRecord>): void {
    const r: MetricsRecord = this.addTime && !('time' in record) ? { ...record, time: this.now() / 1000 } : { ...record };
    try {
      fs.appendFileSync(this.file, stringifyPyJson(r) + '\n');
    } catch (e) {
      throw new TsFinetuneError('RUNTIME_ERROR', `Cannot append to ${this.file}: ${(e as Error).message}`, { file: this.file }, { cause: e });
    }
  }
}

/** Every record of a metrics.jsonl file (blank lines and a final line cut short by a crash skipped). */
export function readMetricsLog(file: string): MetricsRecord[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: MetricsRecord[] = [];
  const lines = text.split('\n');
  // Every complete record ends in a newline; text after the last one is a write a crash interrupted.
  lines.pop();
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(parsePyJson(line) as MetricsRecord);
    } catch (e) {
      throw new TsFinetuneError('CORRUPT_FILE', `${file}:${i + 1}: not a JSON object (${(e as Error).message}).`, { file, line: i + 1 });
    }
  });
  return out;
}
