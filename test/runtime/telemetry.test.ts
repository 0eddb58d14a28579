// onnxruntime's telemetry stays off unless the user chooses it (src/runtime/telemetry.ts). The child
// process runs with a HOME of its own and without the CI variables that make onnxruntime skip telemetry
// by itself (CI, GITHUB_ACTIONS, …: without that, this test would pass in CI whatever our code did).
// What onnxruntime 1.30 leaves when its telemetry starts: ~/.cache/Microsoft/DeveloperTools/.onnxruntime
// (a device id and an event cache), and in $TMPDIR .ses and mat-debug-<pid>.log; the child's HOME and TMPDIR
// are one fresh folder, so anything it leaves there is new (old mat-debug files in /tmp share pids).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ORT_TELEMETRY_ENV, optOutOfOrtTelemetry } from '../../src/runtime/telemetry.js';

const root = new URL('../../', import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), 'tsft-telemetry-home-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function runChild(extra: Record<string, string>): { pid: number; env: string | null; cpu: boolean } {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, TMPDIR: home, ...extra };
  for (const k of ['CI', 'GITHUB_ACTIONS', 'GITLAB_CI', 'TF_BUILD', ORT_TELEMETRY_ENV]) if (!(k in extra)) delete env[k];
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const out = execFileSync(process.execPath, ['--import', tsx, join(root, 'test/runtime/telemetry-child.ts')], { cwd: root, env, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as { pid: number; env: string | null; cpu: boolean };
}

describe('onnxruntime telemetry', () => {
  it('is off for a process that opens sessions in the worker, on the calling thread and in the probe child', () => {
    const r = runChild({});
    expect(r.cpu).toBe(true);
    expect(readdirSync(home).filter((n) => !n.startsWith('tsx-'))).toEqual([]); // tsx keeps its cache in TMPDIR
    expect(r.env).toBe('1');
  });

  it("leaves the user's own choice alone", () => {
    const env: NodeJS.ProcessEnv = { [ORT_TELEMETRY_ENV]: 'true' };
    expect(optOutOfOrtTelemetry(env)).toBe('true');
    expect(env[ORT_TELEMETRY_ENV]).toBe('true');
    const unset: NodeJS.ProcessEnv = {};
    expect(optOutOfOrtTelemetry(unset)).toBe('1');
    expect(unset[ORT_TELEMETRY_ENV]).toBe('1');
    expect(runChild({ [ORT_TELEMETRY_ENV]: '1' }).env).toBe('1');
  });
});
