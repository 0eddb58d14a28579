import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MetricsLog, metricsLogPath, readMetricsLog } from '../../src/train/metrics-log.js';
import { parsePyJson, stringifyPyJson } from '../../src/train/py-json.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsft-ml-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('py-json', () => {
  it('writes what JSON.stringify writes for ordinary values, and Python tokens for non-finite numbers', () => {
    const v = { b: [1, 2.5, 'x"y', null, true, { z: [] }], a: {}, c: -0.001 };
    expect(stringifyPyJson(v)).toBe(JSON.stringify(v));
    expect(stringifyPyJson(v, { indent: 2 })).toBe(JSON.stringify(v, null, 2));
    expect(stringifyPyJson({ b: 1, a: { d: 1, c: 2 } }, { sortKeys: true })).toBe('{"a":{"c":2,"d":1},"b":1}');
    expect(stringifyPyJson({ x: NaN, y: [Infinity, -Infinity], u: undefined })).toBe('{"x":NaN,"y":[Infinity,-Infinity]}');
  });

  it('reads Python JSON back, leaving strings that spell NaN alone', () => {
    const parsed = parsePyJson('{"loss": NaN, "g": [Infinity, -Infinity, 1e-05], "s": "NaN is Infinity \\" NaN"}') as any;
    expect(parsed.loss).toBeNaN();
    expect(parsed.g).toEqual([Infinity, -Infinity, 1e-5]);
    expect(parsed.s).toBe('NaN is Infinity " NaN');
    expect(() => parsePyJson('{"a": nan}')).toThrow();
  });
});

describe('MetricsLog', () => {
  it('appends one JSON object per line, with time, and reads them back', () => {
    const file = metricsLogPath(path.join(dir, 'run1'));
    expect(file).toBe(path.join(dir, 'run1', 'logs', 'metrics.jsonl'));
    const log = MetricsLog.open(file, { now: () => 1_700_000_000_000 });
    log.append({ loss: 1.5, grad_norm: Infinity, learning_rate: 2e-4, epoch: 0.1, step: 10 });
    log.append({ eval_loss: 1.2, step: 10, time: 5 });
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('{"loss":1.5,"grad_norm":Infinity,"learning_rate":0.0002,"epoch":0.1,"step":10,"time":1700000000}');
    expect(readMetricsLog(file)).toEqual([
      { loss: 1.5, grad_norm: Infinity, learning_rate: 2e-4, epoch: 0.1, step: 10, time: 1_700_000_000 },
      { eval_loss: 1.2, step: 10, time: 5 },
    ]);
  });

  it('drops what an interrupted run logged after the checkpoint it resumes from, and a torn last line', () => {
    const file = metricsLogPath(path.join(dir, 'run2'));
    const log = MetricsLog.open(file, { addTime: false });
    for (const step of [10, 20, 30, 40]) log.append({ loss: 1 / step, step });
    log.append({ train_runtime: 12.5 });
    appendFileSync(file, '{"loss": 0.01, "st'); // a crash mid-write
    expect(readMetricsLog(file).length).toBe(5);
    const resumed = MetricsLog.open(file, { resumeStep: 20, addTime: false });
    expect(readMetricsLog(file).map((r) => r['step'] ?? 'summary')).toEqual([10, 20, 'summary']);
    resumed.append({ loss: 0.03, step: 30 });
    expect(readMetricsLog(file).map((r) => r['step'] ?? 'summary')).toEqual([10, 20, 'summary', 30]);
  });

  it('names the line that does not parse', () => {
    const file = path.join(dir, 'broken.jsonl');
    appendFileSync(file, '{"a":1}\nnot json\n');
    expect(() => readMetricsLog(file)).toThrow(/broken\.jsonl:2/);
  });
});
