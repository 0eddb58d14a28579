// The calling thread's side of a session worker: finds the worker entry in whichever form the library
// runs (TypeScript sources → src/runtime/worker-entry.ts loaded through tsx's register(); built
// package → dist/worker.js next to the bundle), spawns it, and matches replies to requests by id.
// The worker is unref'd while idle, so a forgotten session never keeps the process alive, and ref'd
// while a request is in flight, so a pending run does.
// Also `forkEntry`, the same entry as a child process (probes, where native stderr must be captured).
// Not here: what the requests mean (session.ts, worker-entry.ts).

import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { TsFinetuneError } from '../core/errors.js';
import { moduleFile } from './module-file.js';
import { optOutOfOrtTelemetry } from './telemetry.js';
import { errorFromWire } from './wire.js';
import type { WorkerReply, WorkerRequest } from './worker-entry.js';

export interface WorkerEntry {
  file: string;
  /** 'ts': TypeScript sources (needs tsx); 'js': the built dist/worker.js. */
  kind: 'ts' | 'js';
}

export function workerEntry(): WorkerEntry {
  const here = moduleFile();
  const dir = path.dirname(here);
  if (/\.[cm]?ts$/.test(here)) return { file: path.join(dir, 'worker-entry.ts'), kind: 'ts' };
  const built = path.join(dir, 'worker.js');
  if (existsSync(built)) return { file: built, kind: 'js' };
  throw new TsFinetuneError(
    'RUNTIME_ERROR',
    `The session worker ${built} is missing: the package build is incomplete (run \`npx tsup\`), ` +
      "or pass worker: false to createSession to run ORT on this thread",
    { file: built },
  );
}

/** tsx's ESM API (its `import` export: the CJS build registers from the wrong folder), from this package. */
function tsxApiUrl(): string {
  try {
    const pkgFile = createRequire(moduleFile()).resolve('tsx/package.json');
    const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { exports?: Record<string, { import?: { default?: string } }> };
    const rel = pkg.exports?.['./esm/api']?.import?.default ?? './dist/esm/api/index.mjs';
    return pathToFileURL(path.join(path.dirname(pkgFile), rel)).href;
  } catch (e) {
    throw new TsFinetuneError('RUNTIME_ERROR', 'Running ts-finetune from TypeScript sources needs the tsx package (a devDependency)', {}, { cause: e });
  }
}

function spawnWorker(entry: WorkerEntry): Worker {
  // execArgv: [] — the worker needs none of the parent's flags, and some break it (e.g. `node
  // --input-type=module -e …` passes --input-type on, which a worker started from a file rejects).
  if (entry.kind === 'js') return new Worker(entry.file, { execArgv: [] });
  // `execArgv: ['--import', 'tsx']` does not register tsx inside a worker on Node 20 (measured), so the
  // worker registers it itself before importing the TypeScript entry.
  const code =
    `import(${JSON.stringify(tsxApiUrl())}).then((m) => { m.register(); ` +
    `return import(${JSON.stringify(pathToFileURL(entry.file).href)}); });`;
  return new Worker(code, { eval: true, execArgv: [] });
}

/** A request before its id is assigned (Omit that distributes over the union). */
export type RequestBody = WorkerRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

export class WorkerHost {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: TsFinetuneError | undefined;

  constructor() {
    this.worker = spawnWorker(workerEntry());
    this.worker.unref();
    this.worker.on('message', (m: WorkerReply) => this.onReply(m));
    this.worker.on('error', (e: Error) => this.fail(new TsFinetuneError('RUNTIME_ERROR', `Session worker crashed: ${e.message}`, {}, { cause: e })));
    this.worker.on('exit', (code: number) => this.fail(new TsFinetuneError('RUNTIME_ERROR', `Session worker exited (code ${code})`, { exitCode: code })));
  }

  private onReply(m: WorkerReply): void {
    const p = this.pending.get(m.id);
    if (p === undefined) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) this.worker.unref();
    if (m.ok) p.resolve(m.value);
    else p.reject(errorFromWire(m.error));
  }

  private fail(e: TsFinetuneError): void {
    this.dead ??= e;
    for (const p of this.pending.values()) p.reject(this.dead);
    this.pending.clear();
  }

  /** False once the worker crashed, exited or was terminated. */
  get alive(): boolean {
    return this.dead === undefined;
  }

  /** Send one request; `transfer` lists buffers handed to the worker (detached here). */
  request<T>(msg: RequestBody, transfer: readonly ArrayBuffer[] = []): Promise<T> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      try {
        this.worker.postMessage({ ...msg, id } as WorkerRequest, [...transfer]);
      } catch (e) {
        this.pending.delete(id);
        if (this.pending.size === 0) this.worker.unref();
        reject(new TsFinetuneError('RUNTIME_ERROR', `Could not send to the session worker: ${(e as Error).message}`, {}, { cause: e }));
      }
    });
  }

  async terminate(): Promise<void> {
    this.dead ??= new TsFinetuneError('RUNTIME_ERROR', 'Session was released');
    await this.worker.terminate();
  }
}

/** Start the worker entry as a child process with `args`, capturing stdout and stderr. */
export function forkEntry(args: readonly string[]): ChildProcess {
  const entry = workerEntry();
  const execArgv = entry.kind === 'ts' ? ['--import', pathToFileURL(createRequire(moduleFile()).resolve('tsx')).href] : [];
  optOutOfOrtTelemetry(); // the child inherits it (telemetry.ts)
  return fork(entry.file, [...args], { execArgv, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'json' });
}
