// Session options: our names, their validation, and their translation to onnxruntime-node's
// SessionOptions. ORT silently accepts unknown keys (and unknown optimizer names), so a typo would
// quietly change nothing: every key is checked here, with a "did you mean" suggestion.
// Session config entries travel through ORT's `extra` object, which the Node binding flattens with '.'
// (`extra: { optimization: { disable_specified_optimizers: 'A;B' } }` = config key
// `optimization.disable_specified_optimizers`), measured on 1.30 (DESIGN.md).
// Not here: creating the session (ort-backend.ts) or choosing the device order (session.ts).

import { TsFinetuneError, closestName } from '../core/errors.js';
import { defaultThreadCount } from './cpu-info.js';
import type { Device, DeviceRequest } from './devices.js';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'layout' | 'all';

export interface ExternalDataBuffer {
  /** The `location` string the model's initializers name (a relative file name). */
  path: string;
  data: Uint8Array;
}

export interface SessionOptions {
  /** Where to run: 'cpu' (default), 'cuda', 'webgpu', or 'auto' (CUDA, then WebGPU, then CPU). */
  device?: DeviceRequest;
  /** Buffers for initializers stored as external data (see externalizeInitializers in src/onnx). */
  externalData?: readonly ExternalDataBuffer[];
  /**
   * How ORT receives `externalData` (default 'memory'). 'memory' hands it the buffers, which ORT copies: a
   * resident copy of every weight, plus a second one while the session is created (measured on 1.30).
   * 'mmap' writes them into a fresh folder under `tempDir`, which ORT memory-maps: one copy, as file pages
   * the kernel can page out, none transient; the folder is deleted once the session exists (the mappings
   * keep the data). If the folder cannot be written, 'memory' is used.
   */
  externalDataVia?: 'memory' | 'mmap';
  /** Parent folder for externalDataVia 'mmap' (default os.tmpdir()). */
  tempDir?: string;
  /** ORT intra-op threads (default: the physical cores this process may use). */
  threads?: number;
  /** ORT graph optimizers to turn off, e.g. ['CommonSubexpressionElimination', 'ConstantFolding']. */
  disableOptimizers?: readonly string[];
  /** ORT's memory-pattern planner (default true; false cut peak RSS ~30% at equal speed, DESIGN.md). */
  enableMemPattern?: boolean;
  /** ORT's CPU arena (default true; turning it off made a step ~5× slower, DESIGN.md). */
  enableCpuMemArena?: boolean;
  graphOptimizationLevel?: GraphOptimizationLevel;
  /** Raw ORT session config entries (`'session.intra_op.allow_spinning': '0'`); keys need a dotted prefix. */
  sessionConfig?: Readonly<Record<string, string>>;
  /** CUDA device ordinal (cuda only). */
  deviceId?: number;
  /** ORT log level for this session: 0 verbose … 4 fatal (default 2, warnings). */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /** Write ORT's optimized graph here (debugging: decode it with decodeModel). */
  optimizedModelFilePath?: string;
  /** Turn on ORT's profiler; the JSON trace is written under this prefix when the session is released. */
  profileFilePrefix?: string;
  /** Run ORT in a worker thread so `run` does not block the event loop (default true). */
  worker?: boolean;
  /** Share one ORT session between identical createSession calls (default true). */
  reuse?: boolean;
  /** Use this string instead of hashing the model and external data to key reuse. */
  cacheKey?: string;
  /**
   * Hand the model and external-data buffers to the worker instead of copying them (default false).
   * Saves one copy of every weight at load; the caller's buffers are detached afterwards.
   */
  transfer?: boolean;
}

const KEYS: readonly (keyof SessionOptions)[] = [
  'device',
  'externalData',
  'externalDataVia',
  'tempDir',
  'threads',
  'disableOptimizers',
  'enableMemPattern',
  'enableCpuMemArena',
  'graphOptimizationLevel',
  'sessionConfig',
  'deviceId',
  'logSeverityLevel',
  'optimizedModelFilePath',
  'profileFilePrefix',
  'worker',
  'reuse',
  'cacheKey',
  'transfer',
];

/** ORT's config key for where a model loaded from bytes finds its external data files. */
export const EXTERNAL_FOLDER_KEY = 'session.model_external_initializers_file_folder_path';

const LEVELS: readonly GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'layout', 'all'];
const DEVICE_REQUESTS: readonly DeviceRequest[] = ['cpu', 'cuda', 'webgpu', 'auto'];

function bad(key: string, msg: string, value: unknown): never {
  throw new TsFinetuneError('INVALID_CONFIG', `createSession option '${key}' ${msg}, got ${JSON.stringify(value) ?? String(value)}`, {
    key,
    value,
  });
}

/** Check every key and value; throws UNKNOWN_CONFIG_KEY / INVALID_CONFIG naming the key. */
export function validateSessionOptions(opts: SessionOptions): void {
  if (typeof opts !== 'object' || opts === null) bad('(options)', 'must be an object', opts);
  for (const k of Object.keys(opts)) {
    if (!(KEYS as readonly string[]).includes(k)) {
      const near = closestName(k, KEYS);
      throw new TsFinetuneError('UNKNOWN_CONFIG_KEY', `Unknown createSession option '${k}'${near ? ` (did you mean '${near}'?)` : ''}`, {
        key: k,
        suggestion: near,
      });
    }
  }
  const o = opts as Record<string, unknown>;
  if (o['device'] !== undefined && !DEVICE_REQUESTS.includes(o['device'] as DeviceRequest)) {
    bad('device', `must be one of ${DEVICE_REQUESTS.join(', ')}`, o['device']);
  }
  const t = o['threads'];
  if (t !== undefined && (!Number.isInteger(t) || (t as number) < 1 || (t as number) > 1024)) bad('threads', 'must be an integer in 1..1024', t);
  const d = o['deviceId'];
  if (d !== undefined && (!Number.isInteger(d) || (d as number) < 0)) bad('deviceId', 'must be a non-negative integer', d);
  for (const b of ['enableMemPattern', 'enableCpuMemArena', 'worker', 'reuse', 'transfer'] as const) {
    if (o[b] !== undefined && typeof o[b] !== 'boolean') bad(b, 'must be a boolean', o[b]);
  }
  const via = o['externalDataVia'];
  if (via !== undefined && via !== 'memory' && via !== 'mmap') bad('externalDataVia', "must be 'memory' or 'mmap'", via);
  for (const s of ['optimizedModelFilePath', 'profileFilePrefix', 'cacheKey', 'tempDir'] as const) {
    if (o[s] !== undefined && (typeof o[s] !== 'string' || o[s] === '')) bad(s, 'must be a non-empty string', o[s]);
  }
  const lvl = o['graphOptimizationLevel'];
  if (lvl !== undefined && !LEVELS.includes(lvl as GraphOptimizationLevel)) bad('graphOptimizationLevel', `must be one of ${LEVELS.join(', ')}`, lvl);
  const log = o['logSeverityLevel'];
  if (log !== undefined && ![0, 1, 2, 3, 4].includes(log as number)) bad('logSeverityLevel', 'must be 0, 1, 2, 3 or 4', log);
  const dis = o['disableOptimizers'];
  if (dis !== undefined) {
    if (!Array.isArray(dis)) bad('disableOptimizers', 'must be an array of optimizer names', dis);
    for (const n of dis as unknown[]) {
      if (typeof n !== 'string' || !/^[A-Za-z][A-Za-z0-9_]*$/.test(n)) bad('disableOptimizers', 'entries must be ORT optimizer names like "ConstantFolding"', n);
    }
  }
  const cfg = o['sessionConfig'];
  if (cfg !== undefined) {
    if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) bad('sessionConfig', 'must be an object of string values', cfg);
    for (const [k, v] of Object.entries(cfg as Record<string, unknown>)) {
      if (!/^[a-z][a-z0-9_]*(\.[A-Za-z0-9_]+)+$/.test(k)) bad('sessionConfig', `key '${k}' is not an ORT config key (like 'session.disable_prepacking')`, k);
      if (typeof v !== 'string') bad('sessionConfig', `value of '${k}' must be a string`, v);
      if (k === 'optimization.disable_specified_optimizers' && dis !== undefined) {
        bad('sessionConfig', "sets 'optimization.disable_specified_optimizers' and so does disableOptimizers: use one", k);
      }
      if (k === EXTERNAL_FOLDER_KEY && via === 'mmap') bad('sessionConfig', `sets '${EXTERNAL_FOLDER_KEY}', which externalDataVia 'mmap' sets itself`, k);
    }
  }
  const ext = o['externalData'];
  if (ext !== undefined) {
    if (!Array.isArray(ext)) bad('externalData', 'must be an array of { path, data }', ext);
    const seen = new Set<string>();
    for (const e of ext as unknown[]) {
      const f = e as Partial<ExternalDataBuffer> | null;
      if (typeof f !== 'object' || f === null || typeof f.path !== 'string' || !(f.data instanceof Uint8Array)) {
        bad('externalData', 'entries must be { path: string, data: Uint8Array }', e === null ? null : typeof e);
      }
      if (f.path === '' || f.path.startsWith('/') || f.path.split(/[\\/]/).includes('..')) {
        bad('externalData', 'paths must be relative names without ".." (they match the model\'s external_data location)', f.path);
      }
      if (seen.has(f.path)) bad('externalData', 'has a duplicate path', f.path);
      seen.add(f.path);
    }
  }
}

/**
 * The options that make a session different (all but how the buffers are handed over): part of the reuse
 * key. `worker` is in it, so `worker: false` never returns a worker-backed session or the reverse.
 */
export function sessionKeyOptions(opts: SessionOptions): string {
  const { externalData: _e, externalDataVia: _v, tempDir: _d, reuse: _r, cacheKey: _c, transfer: _t, ...rest } = opts;
  const sorted = Object.fromEntries(Object.entries({ ...rest, threads: opts.threads ?? defaultThreadCount() }).sort(([a], [b]) => a.localeCompare(b)));
  return JSON.stringify(sorted);
}

/** A plain, structured-clonable onnxruntime-node SessionOptions object for one device. */
export type OrtSessionOptions = Record<string, unknown>;

export function toOrtOptions(opts: SessionOptions, device: Device): OrtSessionOptions {
  const ep: unknown = device === 'cuda' ? { name: 'cuda', deviceId: opts.deviceId ?? 0 } : device;
  const out: OrtSessionOptions = {
    executionProviders: [ep],
    intraOpNumThreads: opts.threads ?? defaultThreadCount(),
    executionMode: 'sequential',
  };
  if (opts.graphOptimizationLevel !== undefined) out['graphOptimizationLevel'] = opts.graphOptimizationLevel;
  if (opts.enableMemPattern !== undefined) out['enableMemPattern'] = opts.enableMemPattern;
  if (opts.enableCpuMemArena !== undefined) out['enableCpuMemArena'] = opts.enableCpuMemArena;
  if (opts.logSeverityLevel !== undefined) out['logSeverityLevel'] = opts.logSeverityLevel;
  if (opts.optimizedModelFilePath !== undefined) out['optimizedModelFilePath'] = opts.optimizedModelFilePath;
  if (opts.profileFilePrefix !== undefined) {
    out['enableProfiling'] = true;
    out['profileFilePrefix'] = opts.profileFilePrefix;
  }
  // Flat dotted keys: the binding joins nested objects with '.', and a flat key passes through unchanged.
  const extra: Record<string, string> = { ...opts.sessionConfig };
  if (opts.disableOptimizers !== undefined && opts.disableOptimizers.length > 0) {
    extra['optimization.disable_specified_optimizers'] = opts.disableOptimizers.join(';');
  }
  if (Object.keys(extra).length > 0) out['extra'] = extra;
  return out;
}
