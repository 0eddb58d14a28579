// One execution-provider probe, run inside a child process (worker-entry.ts --ts-finetune-probe <device>):
// build a trivial graph (y = x·W + x, a MatMul and an Add), open it on the device, run it once and
// check the numbers. The parent (probe.ts) collects the JSON line this prints and the process's stderr.

import { TsFinetuneError } from '../core/errors.js';
import { encodeModel } from '../onnx/encode.js';
import { DEFAULT_OPSETS, IR_VERSION, type ModelProto } from '../onnx/proto.js';
import { DEVICES, type Device } from './devices.js';
import { OrtBackendSession } from './ort-backend.js';
import { toOrtOptions } from './options.js';
import { errorToWire, type WireError } from './wire.js';

/** Printed on stderr before each device's probe, so its native log lines can be attributed. */
export const PROBE_MARKER = '[ts-finetune-probe] ';

export interface ProbeResult {
  device: Device;
  ok: boolean;
  /** Milliseconds to create the session and run it once. */
  ms: number;
  error?: WireError;
}

/** y[2,2] = x[2,2] · W[2,2] + x, with W = [[1,2],[3,4]] as an initializer. */
export function probeModel(): Uint8Array {
  const w = new Float32Array([1, 2, 3, 4]);
  const model: ModelProto = {
    irVersion: IR_VERSION,
    opsetImport: [...DEFAULT_OPSETS],
    producerName: 'ts-finetune',
    producerVersion: 'probe',
    graph: {
      name: 'probe',
      node: [
        { input: ['x', 'W'], output: ['xw'], name: 'mm', opType: 'MatMul', domain: '', attribute: [] },
        { input: ['xw', 'x'], output: ['y'], name: 'add', opType: 'Add', domain: '', attribute: [] },
      ],
      initializer: [{ name: 'W', dims: [2, 2], dataType: 1, rawData: new Uint8Array(w.buffer) }],
      input: [{ name: 'x', elemType: 1, shape: [{ dimValue: 2 }, { dimValue: 2 }] }],
      output: [{ name: 'y', elemType: 1, shape: [{ dimValue: 2 }, { dimValue: 2 }] }],
      valueInfo: [],
    },
  };
  return encodeModel(model);
}

export async function probeInThisProcess(deviceArg: string | undefined): Promise<ProbeResult> {
  const device = deviceArg as Device;
  if (!DEVICES.includes(device)) throw new TsFinetuneError('INVALID_ARGUMENT', `Unknown device to probe: '${String(deviceArg)}'`);
  const t0 = performance.now();
  try {
    const s = await OrtBackendSession.open({
      model: probeModel(),
      externalData: [],
      devices: [device],
      ortOptions: { [device]: toOrtOptions({ threads: 1 }, device) },
    });
    const x = new Float32Array([1, 0, 0, 1]);
    const out = await s.run({ x: { dtype: 'float32', dims: [2, 2], data: x } }, undefined);
    await s.release();
    const y = out['y']?.data;
    const want = [2, 2, 3, 5];
    if (!(y instanceof Float32Array) || want.some((v, i) => y[i] !== v)) {
      throw new TsFinetuneError('RUNTIME_ERROR', `The ${device} EP started but computed a wrong result: [${y ? Array.from(y as Float32Array).join(', ') : 'none'}]`);
    }
    return { device, ok: true, ms: performance.now() - t0 };
  } catch (e) {
    return { device, ok: false, ms: performance.now() - t0, error: errorToWire(e) };
  }
}
