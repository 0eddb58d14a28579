// probeExecutionProviders: can a session start on cpu / cuda / webgpu here, and if not, why?
// The probes run in one child process (the session worker entry with --ts-finetune-probe), one device
// after another: a failing EP prints native logs (ORT's provider bridge, Dawn's Vulkan loader) straight
// to fd 2, which only a separate process lets us capture — we keep each device's lines as `log` — and a
// crashing driver cannot take the caller down (the devices it did not report are marked as such).
// Not here: the probe itself (probe-run.ts).

import { TsFinetuneError } from '../core/errors.js';
import { DEVICES, epPrecheck, type Device } from './devices.js';
import { PROBE_MARKER, type ProbeResult } from './probe-run.js';
import type { WireError } from './wire.js';
import { forkEntry } from './worker-host.js';

export interface EpProbe {
  device: Device;
  /** A session started on this EP and computed the right answer. */
  available: boolean;
  /** Why not (our actionable message), when unavailable. */
  reason?: string;
  /** The TsFinetuneError code behind `reason` (usually EP_UNAVAILABLE). */
  code?: string;
  /** Milliseconds the probe took (session creation + one run). */
  ms: number;
  /** Native log lines the attempt printed (ANSI colours stripped), for diagnosis. */
  log?: string[];
}

/** stderr split by the child's per-device markers, colour codes stripped, blank lines dropped. */
function logsByDevice(stderr: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  // eslint-disable-next-line no-control-regex
  for (const raw of stderr.replace(/\u001b\[[0-9;]*m/g, '').split('\n')) {
    const line = raw.trim();
    if (line.startsWith(PROBE_MARKER)) {
      current = [];
      out.set(line.slice(PROBE_MARKER.length), current);
    } else if (line !== '' && current !== undefined) current.push(line);
  }
  return out;
}

function runProbes(devices: readonly Device[], timeoutMs: number): Promise<EpProbe[]> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let out = '';
    let err = '';
    let child: ReturnType<typeof forkEntry>;
    try {
      child = forkEntry(['--ts-finetune-probe', devices.join(',')]);
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      resolve(devices.map((device) => ({ device, available: false, reason, code: 'RUNTIME_ERROR', ms: 0 })));
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const logs = logsByDevice(err);
      const results = new Map<string, ProbeResult>();
      let fatal: WireError | undefined;
      for (const line of out.split('\n')) {
        if (line.trim() === '') continue;
        try {
          const r = JSON.parse(line) as ProbeResult | { fatal: WireError };
          if ('fatal' in r) fatal = r.fatal;
          else results.set(r.device, r);
        } catch {
          // not ours: ignore stray output
        }
      }
      const died =
        fatal?.message ??
        (signal === 'SIGKILL' ? `the probe did not finish within ${timeoutMs} ms` : `the probe process ended (exit code ${code}, signal ${signal}) before reporting it`);
      resolve(
        devices.map((device): EpProbe => {
          const log = logs.get(device);
          const withLog = (p: EpProbe): EpProbe => (log && log.length > 0 ? { ...p, log } : p);
          const r = results.get(device);
          if (r === undefined) return withLog({ device, available: false, reason: died, code: 'RUNTIME_ERROR', ms: performance.now() - t0 });
          if (r.ok) return withLog({ device, available: true, ms: r.ms });
          return withLog({ device, available: false, reason: r.error?.message, code: r.error?.code, ms: r.ms });
        }),
      );
    });
  });
}

export interface ProbeOptions {
  /** Devices to probe (default all: cpu, cuda, webgpu). */
  devices?: readonly Device[];
  /** Time limit for all probes together (default 120 s: a first CUDA start may compile kernels). */
  timeoutMs?: number;
}

/**
 * For each execution provider, whether a session can start here, with the reason when it cannot.
 * @example
 * for (const p of await probeExecutionProviders()) console.log(p.device, p.available ? 'ok' : p.reason);
 */
export async function probeExecutionProviders(opts: ProbeOptions = {}): Promise<EpProbe[]> {
  const devices = opts.devices ?? DEVICES;
  for (const d of devices) {
    if (!DEVICES.includes(d)) throw new TsFinetuneError('INVALID_ARGUMENT', `probeExecutionProviders: unknown device '${String(d)}'`);
  }
  if (devices.length === 0) return [];
  return runProbes(devices, opts.timeoutMs ?? 120_000);
}

/** Whether an EP could start, judged from installed files only (no process, no native load). */
export function quickCheckExecutionProvider(device: Device): { possible: boolean; reason?: string } {
  const reason = epPrecheck(device);
  return reason === undefined ? { possible: true } : { possible: false, reason };
}
