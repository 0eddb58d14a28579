// The one place that calls onnxruntime-node: open an InferenceSession from bytes (trying devices in
// order), run it on wire tensors, release it. It runs inside the session worker (worker-entry.ts) or,
// with `worker: false`, on the calling thread. Everything it returns is structured-clonable.
// Not here: option validation (options.ts), error wording (devices.ts), threads and reuse (session.ts).

import * as ort from 'onnxruntime-node';
import type { DType } from '../core/dtype.js';
import { TsFinetuneError } from '../core/errors.js';
import { mapCreateError, mapRunError, type Device } from './devices.js';
import type { ExternalDataBuffer, OrtSessionOptions } from './options.js';
import type { ValueMetadata, WireError, WireTensor } from './wire.js';
import { bf16Error, errorToWire } from './wire.js';

export interface OpenRequest {
  model: Uint8Array;
  externalData: readonly ExternalDataBuffer[];
  /** Devices to try, in order; the first that starts wins. */
  devices: readonly Device[];
  /** ORT options per device in `devices`. */
  ortOptions: Partial<Record<Device, OrtSessionOptions>>;
}

export interface DeviceAttempt {
  device: Device;
  error: WireError;
}

export interface SessionInfo {
  device: Device;
  inputNames: string[];
  outputNames: string[];
  inputMetadata: ValueMetadata[];
  outputMetadata: ValueMetadata[];
  /** Devices tried before `device`, with why each failed. */
  attempts: DeviceAttempt[];
}

const OUR_DTYPES = new Set<string>(['float64', 'float32', 'float16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool']);

function metadataOf(names: readonly string[], meta: readonly ort.InferenceSession.ValueMetadata[] | undefined): ValueMetadata[] {
  return names.map((name, i) => {
    const m = meta?.[i];
    if (m === undefined || !m.isTensor) return { name, dtype: undefined, ortType: m === undefined ? 'unknown' : 'non-tensor', dims: [] };
    return { name, dtype: OUR_DTYPES.has(m.type) ? (m.type as DType) : undefined, ortType: m.type, dims: [...m.shape] };
  });
}

export class OrtBackendSession {
  private constructor(
    private session: ort.InferenceSession | undefined,
    readonly info: SessionInfo,
    private readonly profiling: boolean,
  ) {}

  static async open(req: OpenRequest): Promise<OrtBackendSession> {
    const attempts: DeviceAttempt[] = [];
    let last: TsFinetuneError | undefined;
    for (const device of req.devices) {
      const base = req.ortOptions[device];
      if (base === undefined) throw new TsFinetuneError('INVALID_ARGUMENT', `No ORT options for device '${device}'`);
      const options = { ...base } as ort.InferenceSession.SessionOptions & Record<string, unknown>;
      if (req.externalData.length > 0) options.externalData = req.externalData.map((e) => ({ path: e.path, data: e.data }));
      try {
        const s = await ort.InferenceSession.create(req.model, options);
        const info: SessionInfo = {
          device,
          inputNames: [...s.inputNames],
          outputNames: [...s.outputNames],
          inputMetadata: metadataOf(s.inputNames, s.inputMetadata),
          outputMetadata: metadataOf(s.outputNames, s.outputMetadata),
          attempts,
        };
        return new OrtBackendSession(s, info, options['enableProfiling'] === true);
      } catch (e) {
        last = mapCreateError(e, device);
        attempts.push({ device, error: errorToWire(last) });
      }
    }
    throw last ?? new TsFinetuneError('INVALID_ARGUMENT', 'No device to try');
  }

  /**
   * Run on wire tensors; outputs are ORT's fresh buffers, ready to transfer, except those named in `into`,
   * which ORT writes in place (pre-allocated outputs): no arena buffer for them and no copy out.
   */
  async run(
    feeds: Readonly<Record<string, WireTensor>>,
    fetches: readonly string[] | undefined,
    into: Readonly<Record<string, WireTensor>> = {},
  ): Promise<Record<string, WireTensor>> {
    const s = this.session;
    if (s === undefined) throw new TsFinetuneError('RUNTIME_ERROR', 'Session was released');
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, w] of Object.entries(feeds)) {
      if (w.dtype === 'bfloat16') throw bf16Error(name, 'input');
      ortFeeds[name] = new ort.Tensor(w.dtype, w.data as ort.Tensor.DataType, w.dims);
    }
    let out: ort.InferenceSession.ReturnType;
    const intoNames = Object.keys(into);
    try {
      if (intoNames.length === 0) out = fetches === undefined ? await s.run(ortFeeds) : await s.run(ortFeeds, fetches);
      else {
        const ortFetches: Record<string, ort.Tensor | null> = {};
        for (const n of fetches ?? this.info.outputNames) ortFetches[n] = null;
        for (const [n, w] of Object.entries(into)) {
          if (w.dtype === 'bfloat16') throw bf16Error(n, 'output');
          ortFetches[n] = new ort.Tensor(w.dtype, w.data as ort.Tensor.DataType, w.dims);
        }
        out = await s.run(ortFeeds, ortFetches);
      }
    } catch (e) {
      throw mapRunError(e);
    }
    const res: Record<string, WireTensor> = {};
    for (const [name, v] of Object.entries(out)) {
      if (name in into) {
        res[name] = into[name]!; // written in place: the caller's own buffer
        continue;
      }
      const t = v as ort.Tensor;
      if (!OUR_DTYPES.has(t.type)) {
        throw new TsFinetuneError('UNSUPPORTED_DTYPE', `Graph output '${name}' has type ${t.type}, which ts-finetune tensors cannot hold`, {
          name,
          type: t.type,
        });
      }
      res[name] = { dtype: t.type as DType, dims: [...t.dims], data: t.data as WireTensor['data'] };
    }
    return res;
  }

  async release(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s === undefined) return;
    if (this.profiling) s.endProfiling();
    await s.release();
  }
}
