// Entry file of the session worker (built by tsup as dist/worker.js; run from source under tsx).
// As a worker_thread it owns one ORT session: 'open', then any number of 'run', then 'release'.
// Requests are handled one at a time in arrival order (ORT's run is synchronous on this thread, which
// is the point: the caller's event loop stays free). Outputs go back transferred, never cloned.
// Run as a child process with `--ts-finetune-probe` it probes the execution providers and prints JSON
// on stdout; a separate process lets the caller capture the native libraries' stderr chatter.

import { parentPort } from 'node:worker_threads';
import { OrtBackendSession, type OpenRequest } from './ort-backend.js';
import { PROBE_MARKER, probeInThisProcess } from './probe-run.js';
import { errorToWire, outputToWire, type WireTensor } from './wire.js';

export type WorkerRequest =
  | { op: 'open'; id: number; req: OpenRequest }
  | { op: 'run'; id: number; feeds: Record<string, WireTensor>; fetches: string[] | undefined; lend: string[]; into: Record<string, WireTensor> }
  | { op: 'release'; id: number };

export type WorkerReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: ReturnType<typeof errorToWire> };

/**
 * What a 'run' replies (as an ok value, also when it failed): the outputs or the error, and the lent feeds
 * handed back either way, so the caller never loses them to a failed run.
 */
export type RunReply = { outputs: Record<string, WireTensor>; lent: Record<string, WireTensor> } | { error: ReturnType<typeof errorToWire>; lent: Record<string, WireTensor> };

function serve(port: NonNullable<typeof parentPort>): void {
  let session: OrtBackendSession | undefined;
  let queue: Promise<void> = Promise.resolve();

  const handle = async (m: WorkerRequest): Promise<void> => {
    try {
      if (m.op === 'open') {
        session = await OrtBackendSession.open(m.req);
        port.postMessage({ id: m.id, ok: true, value: session.info } satisfies WorkerReply);
      } else if (m.op === 'run') {
        const lent: Record<string, WireTensor> = {};
        const lentBuffers = new Set<ArrayBuffer>();
        for (const k of m.lend) {
          const w = m.feeds[k]!;
          lent[k] = w;
          if (!(w.data.buffer instanceof SharedArrayBuffer)) lentBuffers.add(w.data.buffer as ArrayBuffer);
        }
        // Output buffers lent to be written in place go back with the lent feeds, whatever the run's fate.
        for (const [k, w] of Object.entries(m.into)) {
          lent[k] = w;
          lentBuffers.add(w.data.buffer as ArrayBuffer);
        }
        let value: RunReply;
        const transfer = new Set(lentBuffers);
        try {
          if (session === undefined) throw new Error('run before open');
          const out = await session.run(m.feeds, m.fetches, m.into);
          const outputs: Record<string, WireTensor> = {};
          for (const [k, w] of Object.entries(out)) outputs[k] = k in m.into ? w : outputToWire(w, transfer);
          value = { outputs, lent };
        } catch (e) {
          value = { error: errorToWire(e), lent };
          transfer.clear();
          for (const b of lentBuffers) transfer.add(b);
        }
        port.postMessage({ id: m.id, ok: true, value } satisfies WorkerReply, [...transfer]);
      } else {
        await session?.release();
        session = undefined;
        port.postMessage({ id: m.id, ok: true, value: null } satisfies WorkerReply);
      }
    } catch (e) {
      port.postMessage({ id: m.id, ok: false, error: errorToWire(e) } satisfies WorkerReply);
    }
  };

  port.on('message', (m: WorkerRequest) => {
    queue = queue.then(() => handle(m));
  });
}

if (parentPort !== null) serve(parentPort);
else if (process.argv.includes('--ts-finetune-probe')) {
  // One JSON line per device on stdout as each finishes (a driver that kills the process loses only the
  // devices not yet reported), and a marker line on stderr before each, so the parent can tell whose native logs are whose.
  // process.stderr writes to a pipe are synchronous on Linux, so markers and native logs stay in order.
  const devices = (process.argv[process.argv.indexOf('--ts-finetune-probe') + 1] ?? '').split(',');
  (async () => {
    for (const d of devices) {
      process.stderr.write(`\n${PROBE_MARKER}${d}\n`);
      process.stdout.write(`${JSON.stringify(await probeInThisProcess(d))}\n`);
    }
  })().catch((e: unknown) => {
    process.stdout.write(`${JSON.stringify({ fatal: errorToWire(e) })}\n`);
    process.exitCode = 1;
  });
}
