// Our bytes load and compute correctly in onnxruntime-node itself (called directly here, not through
// src/runtime, so an encoder bug cannot hide behind a runtime bug): a model-local function with a default
// and an overridden attribute (reference attributes), a MatMul on a 1 MiB initializer, and the same
// initializer moved to external data, per tensor and as one file, handed over from memory.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { decodeModel } from '../../src/onnx/decode.js';
import { encodeModel } from '../../src/onnx/encode.js';
import { externalizeInitializers, internalizeInitializers } from '../../src/onnx/external-data.js';
import { runnableModel } from './sample-models.js';

const K = 256;
const N = 1024;
const W = Float32Array.from({ length: K * N }, (_, i) => ((i * 7919) % 13) / 13 - 0.5);
const b = Float32Array.from({ length: N }, (_, i) => (i % 5) - 2);
const x = Float32Array.from({ length: 2 * K }, (_, i) => ((i * 31) % 17) / 17);

/** z = 5·(x·W) + 2b in float64, the graph's closed form. */
function expected(): Float64Array {
  const z = new Float64Array(2 * N);
  for (let r = 0; r < 2; r++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[r * K + k]! * W[k * N + j]!;
      z[r * N + j] = 5 * s + 2 * b[j]!;
    }
  return z;
}

async function runZ(bytes: Uint8Array, externalData?: { path: string; data: Uint8Array }[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, ...(externalData ? { externalData } : {}) });
  try {
    const out = await s.run({ x: new ort.Tensor('float32', x, [2, K]) });
    return out['z']!.data as Float32Array;
  } finally {
    await s.release();
  }
}

function maxAbsDiff(a: Float32Array, e: Float64Array): number {
  let m = 0;
  for (let i = 0; i < e.length; i++) m = Math.max(m, Math.abs(a[i]! - e[i]!));
  return m;
}

describe('encoded models run in onnxruntime-node', () => {
  const want = expected();

  it('inline initializers and a model-local function with reference attributes', async () => {
    const z = await runZ(encodeModel(runnableModel(W, b)));
    expect(maxAbsDiff(z, want)).toBeLessThan(1e-3);
  });

  it('external data from memory, one buffer per tensor (no copy of the weights)', async () => {
    const original = runnableModel(W, b);
    const { model, files } = externalizeInitializers(original, { minBytes: 1024 });
    expect(files.map((f) => f.path)).toEqual(['W.bin', 'b.bin']);
    expect(files[0]!.data).toBe(original.graph.initializer[0]!.rawData); // a view, not a copy
    expect(original.graph.initializer[0]!.externalData).toBeUndefined(); // input model untouched
    const bytes = encodeModel(model);
    expect(bytes.length).toBeLessThan(4096); // the 1 MiB weight is not in the protobuf
    expect(maxAbsDiff(await runZ(bytes, files), want)).toBeLessThan(1e-3);
    // and back: internalizing restores the original tensors
    const back = internalizeInitializers(decodeModel(bytes), files);
    expect(Buffer.compare(back.graph.initializer[0]!.rawData!, new Uint8Array(W.buffer))).toBe(0);
  });

  it('external data as one aligned file', async () => {
    const { model, files } = externalizeInitializers(runnableModel(W, b), { minBytes: 1, layout: 'single', fileName: 'weights.data', align: 4096 });
    expect(files.map((f) => f.path)).toEqual(['weights.data']);
    const entries = model.graph.initializer.map((t) => Object.fromEntries(t.externalData!.map((e) => [e.key, e.value])));
    expect(entries).toEqual([
      { location: 'weights.data', offset: '0', length: String(K * N * 4) },
      { location: 'weights.data', offset: String(K * N * 4), length: String(N * 4) }, // K·N·4 is 4096-aligned
    ]);
    expect(maxAbsDiff(await runZ(encodeModel(model), files), want)).toBeLessThan(1e-3);
  });

  it('a model whose external data is not supplied fails to load', async () => {
    const { model } = externalizeInitializers(runnableModel(W, b));
    await expect(ort.InferenceSession.create(encodeModel(model))).rejects.toThrow(/External data|W\.bin/);
  });
});
