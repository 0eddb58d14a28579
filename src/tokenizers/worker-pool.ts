// Parallel batch encoding on node:worker_threads, behind a *synchronous* call, so `tokenizer(texts)` keeps
// HF's signature and `Dataset.map(batch => tokenizer(batch.text), { batched: true })` gets faster unchanged.
// How: every worker runs the same encoder as the calling thread: our byte-level BPE (fast-bpe.ts: the worker gets
// the encoder's source text and its tables, the merge table shared, not copied), or @huggingface/tokenizers loading
// the same tokenizer.json. A job is split into chunks that the calling thread and the workers claim from a shared
// atomic counter (the caller works too, so nothing waits on a worker that is still starting); workers post each
// chunk's ids as a transferred Int32Array and bump a shared "done" counter; the caller blocks on that counter with
// Atomics.wait and reads the results with receiveMessageOnPort (no event-loop turn needed). A chunk that errors or
// stalls is redone on the caller.
// The worker is an eval'd CommonJS snippet that needs no module of ours (at most @huggingface/tokenizers), so it
// runs the same from the TS sources (vitest, tsx) and from the built dist (ESM or CJS).
// Not here: truncation/padding (done on the caller, once).

import { createRequire } from 'node:module';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { createFastBpe } from './fast-bpe.js';
import type { FastBpeSpec } from './fast-bpe-plan.js';

export interface PoolSource {
  /** Our encoder's tables: workers run `createFastBpe` on them (no tokenizer.json to load). */
  fastBpe?: FastBpeSpec;
  /** Path of tokenizer.json (preferred: each worker reads the file itself). */
  tokenizerJsonPath?: string;
  /** The parsed tokenizer.json, when the tokenizer was not loaded from a file. */
  tokenizerJson?: Record<string, unknown>;
  config: Record<string, unknown>;
}

const WORKER_SOURCE = `
'use strict';
const { workerData } = require('node:worker_threads');
let encode;
if (workerData.fastBpeSource) {
  // Direct eval, so the source sees this scope: esbuild with keepNames (tsx, vitest) wraps inner functions in
  // __name(fn, 'name'), a helper of the bundle the source came from; here it only has to return fn.
  const __name = (fn) => fn;
  const createFastBpe = eval('(' + workerData.fastBpeSource + ')');
  const fast = createFastBpe(workerData.fastBpe);
  encode = (text, add) => fast.encode(text, add);
} else {
  const fs = require('node:fs');
  const { Tokenizer } = require(workerData.enginePath);
  let json = workerData.tokenizerJson;
  if (workerData.tokenizerJsonPath) {
    let text = fs.readFileSync(workerData.tokenizerJsonPath, 'utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    json = JSON.parse(text);
  }
  const tok = new Tokenizer(json, workerData.config);
  encode = (text, add) => tok.encode(text, { add_special_tokens: add }).ids;
}
const ready = new Int32Array(workerData.ready);
Atomics.add(ready, 0, 1);
Atomics.notify(ready, 0);
const port = workerData.port;
port.on('message', (job) => {
  const ctl = new Int32Array(job.control);
  for (;;) {
    const c = Atomics.add(ctl, 0, 1);
    if (c >= job.nChunks) break;
    const lo = c * job.chunkSize;
    const hi = Math.min(job.texts.length, lo + job.chunkSize);
    try {
      const rows = [];
      let total = 0;
      for (let i = lo; i < hi; i++) {
        const ids = encode(job.texts[i], job.addSpecialTokens);
        rows.push(ids);
        total += ids.length;
      }
      const flat = new Int32Array(total);
      const lens = new Int32Array(rows.length);
      let at = 0;
      for (let r = 0; r < rows.length; r++) { flat.set(rows[r], at); at += rows[r].length; lens[r] = rows[r].length; }
      port.postMessage({ jobId: job.jobId, chunk: c, flat, lens }, [flat.buffer, lens.buffer]);
    } catch (e) {
      port.postMessage({ jobId: job.jobId, chunk: c, error: String((e && e.message) || e) });
    }
    Atomics.add(ctl, 1, 1);
    Atomics.notify(ctl, 1);
  }
});
`;

interface ChunkResult {
  jobId: number;
  chunk: number;
  flat?: Int32Array;
  lens?: Int32Array;
  error?: string;
}

function thisFile(): string {
  // ESM (sources, dist/index.js) has import.meta.url; the CJS build has __filename and an empty import.meta.
  return typeof __filename === 'string' ? __filename : fileURLToPath(import.meta.url);
}

/** Default number of workers: one fewer than the cores (the calling thread encodes too), at most 7. */
export function defaultWorkerCount(): number {
  const env = process.env.TS_FINETUNE_TOKENIZER_THREADS;
  if (env !== undefined && env !== '' && Number.isInteger(Number(env))) return Math.max(0, Number(env) - 1);
  if (/^(false|0|no|off)$/i.test(process.env.TOKENIZERS_PARALLELISM ?? '')) return 0;
  return Math.max(0, Math.min(7, os.availableParallelism() - 1));
}

/** How the last batch was shared out (for benchmarks and tests). */
export interface PoolJobStats {
  chunks: number;
  byCaller: number;
  byWorkers: number;
  /** Chunks redone on the caller after a worker error or stall. */
  redone: number;
}

export class EncodePool {
  private readonly workers: { worker: Worker; port: MessagePort }[] = [];
  private readonly ready = new Int32Array(new SharedArrayBuffer(4));
  private jobId = 0;
  lastJob: PoolJobStats | undefined;
  /** A chunk not reported for this long is redone on the calling thread (a hung or dead worker never blocks). */
  stallMs = 60_000;

  constructor(source: PoolSource, size: number) {
    const fast = source.fastBpe !== undefined;
    const enginePath = size > 0 && !fast ? createRequire(thisFile()).resolve('@huggingface/tokenizers') : '';
    for (let i = 0; i < size; i++) {
      const { port1, port2 } = new MessageChannel();
      const workerData: Record<string, unknown> = { enginePath, config: source.config, port: port2, ready: this.ready.buffer };
      if (fast) {
        // The function's own source: self-contained by design (see fast-bpe.ts), so it runs in the eval'd worker.
        workerData.fastBpeSource = createFastBpe.toString();
        workerData.fastBpe = source.fastBpe;
      } else if (source.tokenizerJsonPath !== undefined) workerData.tokenizerJsonPath = source.tokenizerJsonPath;
      else workerData.tokenizerJson = source.tokenizerJson;
      // execArgv: [] keeps the parent's loaders (tsx, vitest) out of a worker that needs none.
      const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData, transferList: [port2] });
      // Idle workers must not keep the process alive.
      worker.unref();
      port1.unref();
      worker.on('error', () => this.drop(worker));
      worker.on('exit', () => this.drop(worker));
      this.workers.push({ worker, port: port1 });
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /** Workers that have loaded their tokenizer. */
  get readyCount(): number {
    return Atomics.load(this.ready, 0);
  }

  /** Resolve once every worker has loaded its tokenizer (or after `timeoutMs`), without blocking the event loop. */
  async whenReady(timeoutMs = 120_000): Promise<boolean> {
    const t0 = Date.now();
    while (this.readyCount < this.workers.length) {
      if (Date.now() - t0 > timeoutMs) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  }

  private drop(worker: Worker): void {
    const i = this.workers.findIndex((w) => w.worker === worker);
    if (i >= 0) this.workers.splice(i, 1);
  }

  /** Encode `texts` in parallel; `local` encodes one text on the calling thread. Rows in input order. */
  encode(texts: readonly string[], addSpecialTokens: boolean, local: (text: string) => number[]): number[][] {
    const n = texts.length;
    const threads = this.workers.length + 1;
    // Enough chunks for load balance, few enough that per-message overhead stays small.
    const chunkSize = Math.max(8, Math.ceil(n / (threads * 8)));
    const nChunks = Math.ceil(n / chunkSize);
    const control = new SharedArrayBuffer(8);
    const ctl = new Int32Array(control); // [next chunk to claim, chunks finished by workers]
    const jobId = ++this.jobId;
    const job = { jobId, texts, addSpecialTokens, control, nChunks, chunkSize };
    for (const w of this.workers) w.port.postMessage(job);

    const out: (number[] | undefined)[] = new Array<number[] | undefined>(n);
    const doneChunk = new Uint8Array(nChunks);
    const encodeChunk = (c: number): void => {
      const lo = c * chunkSize;
      const hi = Math.min(n, lo + chunkSize);
      for (let i = lo; i < hi; i++) out[i] = local(texts[i]!);
      doneChunk[c] = 1;
    };
    let mine = 0;
    for (;;) {
      const c = Atomics.add(ctl, 0, 1);
      if (c >= nChunks) break;
      encodeChunk(c);
      mine++;
    }
    // Every chunk was claimed exactly once: the rest belong to workers.
    const theirs = nChunks - mine;
    let seen = Atomics.load(ctl, 1);
    let lastProgress = Date.now();
    while (seen < theirs) {
      Atomics.wait(ctl, 1, seen, 100);
      const now = Atomics.load(ctl, 1);
      if (now !== seen) {
        seen = now;
        lastProgress = Date.now();
      } else if (Date.now() - lastProgress > this.stallMs) break;
    }
    for (const w of this.workers) {
      for (let m = receiveMessageOnPort(w.port); m !== undefined; m = receiveMessageOnPort(w.port)) {
        const r = m.message as ChunkResult;
        if (r.jobId !== jobId || r.flat === undefined || r.lens === undefined) continue;
        let at = 0;
        const lo = r.chunk * chunkSize;
        for (let k = 0; k < r.lens.length; k++) {
          const len = r.lens[k]!;
          out[lo + k] = Array.from(r.flat.subarray(at, at + len));
          at += len;
        }
        doneChunk[r.chunk] = 1;
      }
    }
    // Chunks that errored in a worker (the error will reappear here, with a proper stack) or stalled.
    let redone = 0;
    for (let c = 0; c < nChunks; c++) {
      if (!doneChunk[c]) {
        encodeChunk(c);
        redone++;
      }
    }
    this.lastJob = { chunks: nChunks, byCaller: mine, byWorkers: theirs, redone };
    return out as number[][];
  }

  async close(): Promise<void> {
    const ws = this.workers.splice(0);
    await Promise.all(ws.map((w) => w.worker.terminate()));
  }
}
