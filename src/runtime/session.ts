// createSession: an ORT session from model bytes, on a chosen execution provider, run in a worker
// thread (default) so `run` never blocks the caller's event loop, and shared between identical calls
// (key: sha256 of the model and external data + the options that change what ORT builds).
// Feeds are checked against the graph's inputs here, with messages naming the input, before any bytes
// move. With externalDataVia 'mmap' the external-data buffers are written as files into a fresh temporary
// folder for ORT to memory-map (session config `session.model_external_initializers_file_folder_path`):
// handed in memory, ORT 1.30 copies every buffer (a resident copy) and holds a second copy while the
// session is created — measured on a 512 MB initializer: +1,049 MB peak and +537 MB resident from memory,
// +0 MB at creation from a file (pages become resident as ORT touches them, as file pages the kernel may
// page out again). The folder is removed as soon as the session exists: the mappings keep the data.
// Not here: the ORT calls (ort-backend.ts), the thread protocol (worker-host.ts, worker-entry.ts).

import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { TsFinetuneError, closestName } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { AUTO_ORDER, epPrecheck, epUnavailable, type Device } from './devices.js';
import type { DeviceAttempt, OpenRequest, OrtBackendSession, SessionInfo } from './ort-backend.js';
import { optOutOfOrtTelemetry } from './telemetry.js';
import { EXTERNAL_FOLDER_KEY, sessionKeyOptions, toOrtOptions, validateSessionOptions, type ExternalDataBuffer, type SessionOptions } from './options.js';
import type { RunReply } from './worker-entry.js';
import { compact, errorFromWire, errorToWire, fromWire, lendViewWire, lendWire, toWire, type ValueMetadata, type WireTensor } from './wire.js';
import { WorkerHost } from './worker-host.js';

export interface RunOptions {
  /**
   * Hand input buffers to the worker instead of copying them (default false). The feeds' tensors are
   * detached afterwards: use it for values the step replaces anyway (parameters, optimizer state).
   */
  transferInputs?: boolean;
}

/** Feeds lent for one run (Session.runLending) and the callback that gets them back, whatever the run's fate. */
export interface Lending {
  names: readonly string[];
  /**
   * Output buffers lent for the run: ORT writes these outputs in place (no buffer of its own, no copy
   * out), and the result holds them under their names. Each must have the output's dtype and dims.
   */
  into?: Readonly<Record<string, Tensor>>;
  /**
   * Those of `names` that view parts of one buffer (every parameter of a flat vector): the buffer moves to
   * the worker once, each view keeps its offset, and they come back over it. No other feed may use it.
   */
  views?: readonly string[];
  /** Called with the lent feeds' (and `into` buffers') live tensors once they are back, before the run settles. */
  returned(lent: Record<string, Tensor>): void;
}

/** What runs a session: a worker, or ORT on this thread. */
interface Backend {
  readonly alive: boolean;
  run(feeds: Record<string, Tensor>, fetches: readonly string[] | undefined, give: boolean, lending?: Lending): Promise<Record<string, Tensor>>;
  release(): Promise<void>;
}

class WorkerBackend implements Backend {
  constructor(private readonly host: WorkerHost) {}

  get alive(): boolean {
    return this.host.alive;
  }

  async run(feeds: Record<string, Tensor>, fetches: readonly string[] | undefined, give: boolean, lending?: Lending): Promise<Record<string, Tensor>> {
    const transfer = new Set<ArrayBuffer>();
    const wire: Record<string, WireTensor> = {};
    const lend = new Set(lending?.names ?? []);
    // Lent feeds first: each must own its buffer (or be one of the views of one), which a copied feed
    // viewing it must not claim.
    const views = new Set(lending?.views ?? []);
    const viewBuffers = new Set<ArrayBuffer>();
    for (const k of lend) wire[k] = views.has(k) ? lendViewWire(k, feeds[k]!, transfer, viewBuffers) : lendWire(k, feeds[k]!, transfer);
    for (const [k, t] of Object.entries(feeds)) if (!lend.has(k)) wire[k] = toWire(k, t, give, transfer);
    const into: Record<string, WireTensor> = {};
    for (const [k, t] of Object.entries(lending?.into ?? {})) into[k] = lendWire(k, t, transfer);
    const reply = await this.host.request<RunReply>(
      { op: 'run', feeds: wire, fetches: fetches === undefined ? undefined : [...fetches], lend: [...lend], into },
      [...transfer],
    );
    if (lending) lending.returned(Object.fromEntries(Object.entries(reply.lent).map(([k, w]) => [k, fromWire(w)])));
    if ('error' in reply) throw errorFromWire(reply.error);
    const res: Record<string, Tensor> = {};
    for (const [k, w] of Object.entries(reply.outputs)) res[k] = fromWire(w);
    return res;
  }

  async release(): Promise<void> {
    try {
      await this.host.request({ op: 'release' });
    } finally {
      await this.host.terminate();
    }
  }
}

class InProcessBackend implements Backend {
  readonly alive = true;
  constructor(private readonly s: OrtBackendSession) {}

  async run(feeds: Record<string, Tensor>, fetches: readonly string[] | undefined, _give: boolean, lending?: Lending): Promise<Record<string, Tensor>> {
    // ORT reads inputs in place: no copies on this path, and lent feeds never leave.
    const wire: Record<string, WireTensor> = {};
    for (const [k, t] of Object.entries(feeds)) wire[k] = { dtype: t.dtype, dims: [...t.dims], data: t.data };
    const into: Record<string, WireTensor> = {};
    for (const [k, t] of Object.entries(lending?.into ?? {})) into[k] = { dtype: t.dtype, dims: [...t.dims], data: t.data };
    let out: Record<string, WireTensor>;
    try {
      out = await this.s.run(wire, fetches, into);
    } finally {
      lending?.returned({ ...Object.fromEntries(lending.names.map((k) => [k, feeds[k]!])), ...lending.into });
    }
    const res: Record<string, Tensor> = {};
    for (const [k, w] of Object.entries(out)) res[k] = fromWire(w);
    return res;
  }

  release(): Promise<void> {
    return this.s.release();
  }
}

/** One ORT session, shared by every Session handle with the same key. */
class SessionCore {
  refs = 1;
  constructor(
    readonly key: string,
    readonly info: SessionInfo,
    private readonly backend: Backend,
  ) {}

  private checkFeeds(feeds: Record<string, Tensor>, fetches: readonly string[] | undefined): void {
    if (typeof feeds !== 'object' || feeds === null) throw new TsFinetuneError('INVALID_ARGUMENT', 'run(feeds): feeds must be an object of Tensors');
    const { inputNames, inputMetadata, outputNames } = this.info;
    for (const [name, t] of Object.entries(feeds)) {
      const i = inputNames.indexOf(name);
      if (i < 0) {
        const near = closestName(name, inputNames);
        throw new TsFinetuneError(
          'INVALID_ARGUMENT',
          `run: '${name}' is not an input of this graph${near ? ` (did you mean '${near}'?)` : ''}; inputs: ${inputNames.join(', ')}`,
          { name },
        );
      }
      if (typeof t !== 'object' || t === null || !('dtype' in t) || !('dims' in t) || !('data' in t)) {
        throw new TsFinetuneError('INVALID_ARGUMENT', `run: feed '${name}' is not a Tensor`, { name });
      }
      const m = inputMetadata[i]!;
      if (m.dtype !== undefined && t.dtype !== m.dtype) {
        throw new TsFinetuneError('UNSUPPORTED_DTYPE', `run: input '${name}' must be ${m.dtype}, got ${t.dtype}`, { name, expected: m.dtype, got: t.dtype });
      }
      // ORT reports unknown rank as [], like a scalar: only a declared shape is checked.
      if (m.dims.length > 0) {
        const ok = m.dims.length === t.dims.length && m.dims.every((d, j) => typeof d !== 'number' || d === t.dims[j]);
        if (!ok) {
          throw new TsFinetuneError('SHAPE_MISMATCH', `run: input '${name}' must have dims [${m.dims.join(', ')}], got [${t.dims.join(', ')}]`, {
            name,
            expected: m.dims,
            got: [...t.dims],
          });
        }
      }
    }
    const missing = inputNames.filter((n) => !(n in feeds));
    if (missing.length > 0) throw new TsFinetuneError('MISSING_TENSOR', `run: missing inputs ${missing.map((n) => `'${n}'`).join(', ')}`, { missing });
    for (const f of fetches ?? []) {
      if (!outputNames.includes(f)) {
        const near = closestName(f, outputNames);
        throw new TsFinetuneError('INVALID_ARGUMENT', `run: '${f}' is not an output of this graph${near ? ` (did you mean '${near}'?)` : ''}`, { name: f });
      }
    }
  }

  /** An output buffer lent to be written in place: an output (among `fetches`), with its dtype and static dims. */
  private checkInto(name: string, t: Tensor, fetches: readonly string[] | undefined): void {
    const i = this.info.outputNames.indexOf(name);
    if (i < 0 || (fetches !== undefined && !fetches.includes(name))) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `runLending: 'into' names '${name}', which is not ${i < 0 ? 'an output of this graph' : 'among the fetches'}`, { name });
    }
    const m = this.info.outputMetadata[i]!;
    const dimsOk = m.dims.length === t.dims.length && m.dims.every((d, j) => d === t.dims[j]);
    if (t.dtype !== m.dtype || !dimsOk) {
      throw new TsFinetuneError(
        'SHAPE_MISMATCH',
        `runLending: the buffer for output '${name}' is ${t.dtype}[${t.dims.join(', ')}], the output is ${m.ortType}[${m.dims.join(', ')}] (static dims needed)`,
        { name },
      );
    }
  }

  run(feeds: Record<string, Tensor>, fetches: readonly string[] | undefined, opts: RunOptions, lending?: Lending): Promise<Record<string, Tensor>> {
    this.checkFeeds(feeds, fetches);
    for (const k of lending?.names ?? []) if (!(k in feeds)) throw new TsFinetuneError('INVALID_ARGUMENT', `runLending: '${k}' is not among the feeds`, { name: k });
    for (const k of lending?.views ?? []) {
      if (!lending!.names.includes(k)) throw new TsFinetuneError('INVALID_ARGUMENT', `runLending: view '${k}' is not among the lent names`, { name: k });
    }
    for (const [k, t] of Object.entries(lending?.into ?? {})) this.checkInto(k, t, fetches);
    return this.backend.run(feeds, fetches, opts.transferInputs === true, lending);
  }

  get alive(): boolean {
    return this.backend.alive;
  }

  release(): Promise<void> {
    return this.backend.release();
  }
}

/** A handle on an ORT session. Release it when done; handles from reuse share one session. */
export class Session {
  private core: SessionCore | undefined;
  /** The execution provider the session runs on (what 'auto' chose). */
  readonly device: Device;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly ValueMetadata[];
  readonly outputMetadata: readonly ValueMetadata[];
  /** Devices tried before `device` ('auto'), with the EP_UNAVAILABLE reason of each. */
  readonly attempts: readonly DeviceAttempt[];
  /** The reuse key (a hash unless `cacheKey` was given). */
  readonly key: string;

  /** @internal use createSession */
  constructor(core: SessionCore) {
    this.core = core;
    this.device = core.info.device;
    this.inputNames = core.info.inputNames;
    this.outputNames = core.info.outputNames;
    this.inputMetadata = core.info.inputMetadata;
    this.outputMetadata = core.info.outputMetadata;
    this.attempts = core.info.attempts;
    this.key = core.key;
  }

  get released(): boolean {
    return this.core === undefined;
  }

  /**
   * Run the graph. `fetches` limits the outputs computed and returned (default: all).
   * @example
   * const s = await createSession(bytes, { device: 'cpu' });
   * const { loss } = await s.run({ x: Tensor.fromNumbers([1, 2], [2]) }, ['loss']);
   */
  run(feeds: Record<string, Tensor>, fetches?: readonly string[], opts: RunOptions = {}): Promise<Record<string, Tensor>> {
    if (this.core === undefined) return Promise.reject(new TsFinetuneError('RUNTIME_ERROR', 'run: this Session was released'));
    try {
      return this.core.run(feeds, fetches, opts);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Run with some feeds lent: a worker gets their buffers for the run and hands them back (no copy either
   * way; each must own its whole buffer), and `lending.returned` receives the live tensors before the run
   * settles, on success and on an ORT error alike (not if the worker dies: they are lost with it). Until
   * then the caller's arrays are detached. On this thread nothing moves. For large values the caller
   * keeps, such as 4-bit weights fed as inputs instead of held by ORT as a second copy.
   * @example
   * await s.runLending({ x, w }, { names: ['w'], returned: (t) => (w = t.w!) });
   */
  runLending(feeds: Record<string, Tensor>, lending: Lending, fetches?: readonly string[]): Promise<Record<string, Tensor>> {
    if (this.core === undefined) return Promise.reject(new TsFinetuneError('RUNTIME_ERROR', 'run: this Session was released'));
    try {
      return this.core.run(feeds, fetches, {}, lending);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Drop this handle; the ORT session (and its worker) goes when the last handle is released. */
  async release(): Promise<void> {
    const core = this.core;
    this.core = undefined;
    if (core === undefined) return;
    core.refs--;
    if (core.refs > 0) return;
    if (cache.get(core.key)?.core === core) cache.delete(core.key);
    await core.release();
  }
}

interface CacheEntry {
  pending: Promise<SessionCore>;
  core?: SessionCore;
}
const cache = new Map<string, CacheEntry>();

function hashKey(model: Uint8Array, external: readonly ExternalDataBuffer[], opts: SessionOptions): string {
  if (opts.cacheKey !== undefined) return `key:${opts.cacheKey}|${sessionKeyOptions(opts)}`;
  const h = createHash('sha256');
  h.update(model);
  for (const e of external) {
    h.update(`\0${e.path}\0${e.data.length}\0`);
    h.update(e.data);
  }
  h.update(sessionKeyOptions(opts));
  return h.digest('hex');
}

/** The device order to try, and the attempts skipped by a file-level precheck ('auto' only). */
function plan(opts: SessionOptions): { devices: Device[]; skipped: DeviceAttempt[] } {
  const req = opts.device ?? 'cpu';
  if (req !== 'auto') return { devices: [req], skipped: [] };
  const devices: Device[] = [];
  const skipped: DeviceAttempt[] = [];
  for (const d of AUTO_ORDER) {
    const why = d === 'cpu' ? undefined : epPrecheck(d);
    if (why === undefined) devices.push(d);
    else skipped.push({ device: d, error: errorToWire(epUnavailable(d, undefined, why)) });
  }
  return { devices, skipped };
}

/** Copy (or with `give`, hand over) a byte buffer for postMessage. */
function forTransfer(b: Uint8Array, give: boolean, transfer: ArrayBuffer[]): Uint8Array {
  const whole = b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && !(b.buffer instanceof SharedArrayBuffer);
  const out = give && whole && !transfer.includes(b.buffer as ArrayBuffer) ? b : compact(b);
  transfer.push(out.buffer as ArrayBuffer);
  return out;
}

/** A folder holding the buffers as files, or undefined when it could not be written (the caller falls back to memory). */
export async function writeExternalFolder(buffers: readonly ExternalDataBuffer[], parent?: string): Promise<string | undefined> {
  let dir: string | undefined;
  try {
    dir = await fsp.mkdtemp(path.join(parent ?? tmpdir(), 'tsft-weights-'));
    for (const b of buffers) await fsp.writeFile(path.join(dir, b.path), b.data);
    return dir;
  } catch {
    // A full or read-only temp folder only costs memory: the session gets the buffers in memory instead.
    if (dir !== undefined) await removeExternalFolder(dir);
    return undefined;
  }
}

export async function removeExternalFolder(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
}

async function openCore(key: string, model: Uint8Array, opts: SessionOptions): Promise<SessionCore> {
  const buffers = opts.externalData ?? [];
  const folder = opts.externalDataVia === 'mmap' && buffers.length > 0 ? await writeExternalFolder(buffers, opts.tempDir) : undefined;
  try {
    if (folder === undefined) return await openWith(key, model, opts, buffers);
    const sessionConfig = { ...opts.sessionConfig, [EXTERNAL_FOLDER_KEY]: folder };
    return await openWith(key, model, { ...opts, sessionConfig }, []);
  } finally {
    if (folder !== undefined) await removeExternalFolder(folder);
  }
}

async function openWith(key: string, model: Uint8Array, opts: SessionOptions, external: readonly ExternalDataBuffer[]): Promise<SessionCore> {
  optOutOfOrtTelemetry(); // before ORT's environment starts, here or in the worker (telemetry.ts)
  const { devices, skipped } = plan(opts);
  const ortOptions: OpenRequest['ortOptions'] = {};
  for (const d of devices) ortOptions[d] = toOrtOptions(opts, d);

  if (opts.worker === false) {
    const { OrtBackendSession } = await import('./ort-backend.js');
    const s = await OrtBackendSession.open({ model, externalData: external, devices, ortOptions });
    return new SessionCore(key, { ...s.info, attempts: [...skipped, ...s.info.attempts] }, new InProcessBackend(s));
  }

  const give = opts.transfer === true;
  const transfer: ArrayBuffer[] = [];
  const req: OpenRequest = {
    model: forTransfer(model, give, transfer),
    externalData: external.map((e) => ({ path: e.path, data: forTransfer(e.data, give, transfer) })),
    devices,
    ortOptions,
  };
  const host = new WorkerHost();
  try {
    const info = await host.request<SessionInfo>({ op: 'open', req }, transfer);
    return new SessionCore(key, { ...info, attempts: [...skipped, ...info.attempts] }, new WorkerBackend(host));
  } catch (e) {
    await host.terminate();
    throw e;
  }
}

/**
 * Open an ORT session on model bytes (an encoded ModelProto). Identical calls (same bytes, external
 * data and options) share one session until every handle is released.
 * @example
 * const s = await createSession(encodeModel(model), { device: 'auto', disableOptimizers: ['ConstantFolding'] });
 * console.log(s.device); // 'cpu' on a machine without CUDA or WebGPU
 * const out = await s.run({ x });
 * await s.release();
 */
let unsharedCount = 0;

export async function createSession(modelBytes: Uint8Array, opts: SessionOptions = {}): Promise<Session> {
  validateSessionOptions(opts);
  if (!(modelBytes instanceof Uint8Array) || modelBytes.length === 0) {
    throw new TsFinetuneError('INVALID_ARGUMENT', 'createSession: modelBytes must be a non-empty Uint8Array (an encoded ModelProto)');
  }
  // An unshared session needs no content hash (hashing a multi-GB model's weights costs seconds).
  if (opts.reuse === false) return new Session(await openCore(`${opts.device ?? 'cpu'}:unshared:${++unsharedCount}`, modelBytes, opts));
  const key = `${opts.device ?? 'cpu'}:${hashKey(modelBytes, opts.externalData ?? [], opts)}`;

  const hit = cache.get(key);
  if (hit !== undefined) {
    const core = await hit.pending;
    if (cache.get(key) === hit) {
      if (core.alive) {
        core.refs++;
        return new Session(core);
      }
      // Its worker died (the holders' runs reject): new callers get a fresh session.
      cache.delete(key);
    }
    // Released or dead: open a fresh one below.
  }
  const entry: CacheEntry = { pending: openCore(key, modelBytes, opts) };
  cache.set(key, entry);
  try {
    entry.core = await entry.pending;
  } catch (e) {
    if (cache.get(key) === entry) cache.delete(key);
    throw e;
  }
  return new Session(entry.core);
}

/** Sessions currently open through reuse (for tests and diagnostics). */
export function openSessionCount(): number {
  return cache.size;
}
