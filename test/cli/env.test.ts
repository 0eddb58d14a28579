// `ts-finetune env`: the JSON report has every section; bad flags are refused. (--no-probe keeps it fast;
// probing itself is tested in test/runtime/devices.test.ts.)
import { afterEach, describe, expect, it, vi } from 'vitest';
import { envCommand } from '../../src/cli/env.js';
import { runCli } from '../../src/cli/run.js';

function capture(): { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  return { out: () => out, err: () => err };
}

describe('ts-finetune env', () => {
  afterEach(() => vi.restoreAllMocks());

  it('--json --no-probe reports versions, EPs, CPU, memory and caches', async () => {
    const io = capture();
    expect(await runCli(['env', '--json', '--no-probe'])).toBe(0);
    const r = JSON.parse(io.out());
    expect(r.tsFinetune).toMatch(/^\d+\.\d+\.\d+/);
    expect(r.node).toBe(process.version);
    expect(r.onnxruntimeNode).toMatch(/^1\.\d+\.\d+/);
    expect(r.onnxruntimeTelemetry.disableValue).toBe(process.env.ORT_DISABLE_TELEMETRY); // runtime/telemetry.ts
    expect(r.executionProviders.map((e: { device: string }) => e.device)).toEqual(['cpu', 'cuda', 'webgpu']);
    expect(r.cpu.physicalCores).toBeGreaterThanOrEqual(1);
    expect(r.cpu.ortThreads).toBe(r.cpu.physicalCores);
    expect(r.memory.totalBytes).toBeGreaterThan(0);
    expect(r.caches.hubCache).toMatch(/hub$/);
    expect(typeof r.caches.tokenSet).toBe('boolean');
  });

  it('text output, and a refused unknown flag', async () => {
    const io = capture();
    expect(await envCommand(['--no-probe'])).toBe(0);
    expect(io.out()).toMatch(/onnxruntime-node\s+1\./);
    expect(io.out()).toMatch(/telemetry\s+ORT_DISABLE_TELEMETRY=\S+ \((your setting|ts-finetune's default: off)\)/);
    expect(io.out()).toContain('Execution providers:');
    expect(await envCommand(['--bogus'])).toBe(2);
    expect(io.err()).toContain("unknown option '--bogus'");
  });
});
