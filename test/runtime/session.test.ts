// createSession / Session.run: results, every dtype across the boundary, reuse, feed checks with
// messages naming the input, option validation, options reaching ORT (checked on ORT's optimized graph),
// external data from memory and memory-mapped from a temporary folder, transfers, and ORT's run errors.
import { mkdtempSync, promises as fsPromises, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { decodeModel } from '../../src/onnx/decode.js';
import { encodeModel } from '../../src/onnx/encode.js';
import { externalizeInitializers } from '../../src/onnx/external-data.js';
import { createSession, openSessionCount, type Session } from '../../src/runtime/index.js';
import { bf16OutputBytes, echoBytes, ECHO_DTYPES, foldableBytes, gatherBytes, tinyBytes } from './graphs.js';
import { toOrtOptions, validateSessionOptions } from '../../src/runtime/options.js';
import { AttrType, type ModelProto } from '../../src/onnx/proto.js';

const eye = (): Tensor => Tensor.fromNumbers([1, 0, 0, 1], [2, 2]);

describe('a session in a worker', () => {
  let s: Session;
  beforeAll(async () => {
    s = await createSession(tinyBytes(), { device: 'cpu', threads: 1 });
  });
  afterAll(() => s.release());

  it('runs and reports its graph', async () => {
    expect(s.device).toBe('cpu');
    expect(s.inputNames).toEqual(['x']);
    expect(s.outputNames).toEqual(['y']);
    expect(s.inputMetadata).toEqual([{ name: 'x', dtype: 'float32', ortType: 'float32', dims: [2, 2] }]);
    const { y } = await s.run({ x: eye() });
    expect(y!.dtype).toBe('float32');
    expect(y!.dims).toEqual([2, 2]);
    expect(Array.from(y!.data as Float32Array)).toEqual([2, 2, 3, 5]);
  });

  it('checks feeds before sending them, naming the input', async () => {
    await expect(s.run({ X: eye() })).rejects.toThrow(/'X' is not an input of this graph \(did you mean 'x'\?\)/);
    await expect(s.run({})).rejects.toMatchObject({ code: 'MISSING_TENSOR', message: expect.stringContaining("'x'") });
    await expect(s.run({ x: Tensor.fromNumbers([1, 0, 0, 1], [4]) })).rejects.toMatchObject({ code: 'SHAPE_MISMATCH', message: expect.stringContaining('[2, 2]') });
    await expect(s.run({ x: Tensor.int64([1, 0, 0, 1], [2, 2]) })).rejects.toMatchObject({ code: 'UNSUPPORTED_DTYPE', message: expect.stringContaining('must be float32, got int64') });
    await expect(s.run({ x: eye() }, ['z'])).rejects.toThrow(/'z' is not an output/);
  });

  it('copies inputs by default and hands them over with transferInputs', async () => {
    const x = eye();
    await s.run({ x });
    expect(x.data.length).toBe(4); // still ours
    const x2 = eye();
    const { y } = await s.run({ x: x2 }, undefined, { transferInputs: true });
    expect(Array.from(y!.data as Float32Array)).toEqual([2, 2, 3, 5]);
    expect(x2.data.length).toBe(0); // detached: the worker owns it now
    // A view into a larger buffer is copied even with transferInputs (moving the whole buffer would be wrong).
    const big = new Float32Array(16).fill(7);
    const view = new Tensor('float32', [2, 2], big.subarray(4, 8));
    await s.run({ x: view }, undefined, { transferInputs: true });
    expect(big.length).toBe(16);
  });

  it('outputs arrive as buffers of their own (transferred from the worker, not cloned views)', async () => {
    const { y } = await s.run({ x: eye() });
    const d = y!.data as Float32Array;
    expect(d.byteOffset).toBe(0);
    expect(d.buffer.byteLength).toBe(d.byteLength);
  });
});

describe('dtypes across the JS boundary', () => {
  it('every exchangeable dtype round-trips bit for bit (int64 as BigInt64Array, float16 as bits)', async () => {
    const s = await createSession(echoBytes(), { worker: false, threads: 1 });
    const feeds: Record<string, Tensor> = {
      float32: Tensor.fromNumbers([1.5, -0, 3e38], [3]),
      float64: new Tensor('float64', [3], new Float64Array([Math.PI, -1e300, 5e-324])),
      float16: new Tensor('float16', [3], new Uint16Array([0x3c00, 0x7c00, 0x0001])),
      int64: new Tensor('int64', [3], new BigInt64Array([-(2n ** 63n), 2n ** 53n + 1n, 7n])),
      int32: new Tensor('int32', [3], new Int32Array([-(2 ** 31), 0, 2 ** 31 - 1])),
      int16: new Tensor('int16', [3], new Int16Array([-32768, 1, 32767])),
      int8: new Tensor('int8', [3], new Int8Array([-128, 0, 127])),
      uint8: new Tensor('uint8', [3], new Uint8Array([0, 128, 255])),
      bool: new Tensor('bool', [3], new Uint8Array([1, 0, 1])),
    };
    const out = await s.run(feeds);
    for (const d of ECHO_DTYPES) {
      const o = out[`${d}_out`]!;
      expect(o.dtype).toBe(d);
      expect(Array.from(o.data as ArrayLike<number | bigint>)).toEqual(Array.from(feeds[d]!.data as ArrayLike<number | bigint>));
    }
    expect(out['int64_out']!.data).toBeInstanceOf(BigInt64Array);
    await s.release();
  });

  it('bfloat16 cannot cross: a bf16 graph output fails at creation, a bf16 feed at run', async () => {
    await expect(createSession(bf16OutputBytes(), { worker: false })).rejects.toMatchObject({
      code: 'UNSUPPORTED_DTYPE',
      message: expect.stringContaining('Cast it to float32'),
    });
    const s = await createSession(tinyBytes(), { worker: false });
    await expect(s.run({ x: eye().to('bfloat16') })).rejects.toMatchObject({ code: 'UNSUPPORTED_DTYPE' });
    await s.release();
  });
});

describe('session reuse', () => {
  it('identical calls share one session until the last handle is released', async () => {
    const before = openSessionCount();
    const [a, b] = await Promise.all([createSession(tinyBytes(), { worker: false }), createSession(tinyBytes(), { worker: false })]);
    expect(a.key).toBe(b.key);
    expect(openSessionCount()).toBe(before + 1);
    const c = await createSession(tinyBytes(), { worker: false, threads: 1 });
    expect(c.key).not.toBe(a.key); // options that change what ORT builds are part of the key
    await a.release();
    await a.release(); // idempotent
    expect((await b.run({ x: eye() }))['y']!.data).toEqual(new Float32Array([2, 2, 3, 5]));
    await b.release();
    await expect(b.run({ x: eye() })).rejects.toThrow(/released/);
    await c.release();
    expect(openSessionCount()).toBe(before);
    const d = await createSession(tinyBytes(), { worker: false, reuse: false });
    expect(openSessionCount()).toBe(before);
    await d.release();
  });
});

describe('options', () => {
  it('unknown keys and bad values fail with the key named', () => {
    expect(() => validateSessionOptions({ thread: 2 } as never)).toThrow(expect.objectContaining({ code: 'UNKNOWN_CONFIG_KEY', message: expect.stringContaining("did you mean 'threads'") }));
    expect(() => validateSessionOptions({ threads: 0 })).toThrow(/'threads' must be an integer/);
    expect(() => validateSessionOptions({ device: 'gpu' as never })).toThrow(/'device' must be one of cpu, cuda, webgpu, auto/);
    expect(() => validateSessionOptions({ disableOptimizers: ['Constant Folding'] })).toThrow(/disableOptimizers/);
    expect(() => validateSessionOptions({ sessionConfig: { disable_prepacking: '1' } })).toThrow(/not an ORT config key/);
    expect(() => validateSessionOptions({ externalData: [{ path: '../w.bin', data: new Uint8Array(1) }] })).toThrow(/relative names/);
    expect(() => validateSessionOptions({ enableMemPattern: 'no' as never })).toThrow(/must be a boolean/);
  });

  it('map onto onnxruntime-node options, session config entries as flat dotted keys in `extra`', () => {
    expect(
      toOrtOptions({ threads: 3, disableOptimizers: ['CommonSubexpressionElimination', 'ConstantFolding'], enableMemPattern: false, sessionConfig: { 'session.disable_prepacking': '1' } }, 'cpu'),
    ).toEqual({
      executionProviders: ['cpu'],
      intraOpNumThreads: 3,
      executionMode: 'sequential',
      enableMemPattern: false,
      extra: { 'session.disable_prepacking': '1', 'optimization.disable_specified_optimizers': 'CommonSubexpressionElimination;ConstantFolding' },
    });
    expect(toOrtOptions({ deviceId: 1 }, 'cuda')['executionProviders']).toEqual([{ name: 'cuda', deviceId: 1 }]);
  });

  it('disableOptimizers reaches ORT (seen in the optimized graph ORT writes)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsft-opt-'));
    try {
      const ops = async (opts: Parameters<typeof createSession>[1]): Promise<string[]> => {
        const file = path.join(dir, `${Math.random()}.onnx`);
        const s = await createSession(foldableBytes(), { worker: false, reuse: false, logSeverityLevel: 3, optimizedModelFilePath: file, ...opts });
        expect((await s.run({ x: Tensor.fromNumbers([0, 0, 0, 0], [4]) }))['y']!.data).toEqual(new Float32Array([2, 4, 6, 8]));
        await s.release();
        return decodeModel(readFileSync(file)).graph.node.map((n) => n.opType);
      };
      expect(await ops({})).toEqual(['Add']); // c + c folded away
      expect(await ops({ disableOptimizers: ['ConstantFolding'] })).toEqual(['Add', 'Add']);
      expect(await ops({ sessionConfig: { 'optimization.disable_specified_optimizers': 'ConstantFolding' } })).toEqual(['Add', 'Add']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('external data and transfer', () => {
  const W = Float32Array.from({ length: 64 * 64 }, (_, i) => (i % 64 === Math.floor(i / 64) ? 2 : 0)); // 2·I
  const model: ModelProto = {
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }],
    producerName: 't',
    producerVersion: '0',
    graph: {
      name: 'ext',
      node: [{ input: ['x', 'W'], output: ['y'], name: 'mm', opType: 'MatMul', domain: '', attribute: [] }],
      initializer: [{ name: 'W', dims: [64, 64], dataType: 1, rawData: new Uint8Array(W.buffer) }],
      input: [{ name: 'x', elemType: 1, shape: [{ dimValue: 1 }, { dimValue: 64 }] }],
      output: [{ name: 'y', elemType: 1, shape: [{ dimValue: 1 }, { dimValue: 64 }] }],
      valueInfo: [],
    },
  };
  const x = (): Tensor => new Tensor('float32', [1, 64], Float32Array.from({ length: 64 }, (_, i) => i));

  it('initializers come from memory; through the worker, transfer: true hands the buffers over', async () => {
    const { model: m, files } = externalizeInitializers(model);
    const bytes = encodeModel(m);
    const s = await createSession(bytes, { externalData: files, threads: 1, reuse: false, worker: false });
    expect(Array.from((await s.run({ x: x() }))['y']!.data as Float32Array).slice(0, 4)).toEqual([0, 2, 4, 6]);
    expect(files[0]!.data.length).toBe(64 * 64 * 4); // still ours (ORT copies it)
    await s.release();

    const own = files.map((f) => ({ path: f.path, data: Uint8Array.prototype.slice.call(f.data) }));
    const bytes2 = bytes.slice();
    const t = await createSession(bytes2, { externalData: own, threads: 1, reuse: false, transfer: true });
    expect(own[0]!.data.length).toBe(0); // detached: handed to the worker
    expect(bytes2.length).toBe(0);
    expect(Array.from((await t.run({ x: x() }))['y']!.data as Float32Array).slice(0, 4)).toEqual([0, 2, 4, 6]);
    await t.release();
  });

  it("externalDataVia 'mmap': ORT maps the buffers from a temporary folder, removed once the session exists", async () => {
    const parent = mkdtempSync(path.join(tmpdir(), 'tsft-mmap-test-'));
    try {
      const { model: m, files } = externalizeInitializers(model);
      const writes = vi.spyOn(fsPromises, 'writeFile');
      for (const worker of [false, true]) {
        writes.mockClear();
        const s = await createSession(encodeModel(m), { externalData: files, externalDataVia: 'mmap', tempDir: parent, threads: 1, reuse: false, worker });
        expect(writes.mock.calls.map((c) => path.basename(String(c[0])))).toEqual([files[0]!.path]);
        expect(readdirSync(parent), 'the weights folder is gone').toEqual([]);
        expect(Array.from((await s.run({ x: x() }))['y']!.data as Float32Array).slice(0, 4)).toEqual([0, 2, 4, 6]);
        expect(files[0]!.data.length).toBe(64 * 64 * 4); // never transferred
        await s.release();
      }
      // A folder that cannot be written (its parent is a file): the buffers go in memory instead.
      writes.mockRestore();
      writeFileSync(path.join(parent, 'a-file'), 'x');
      const s = await createSession(encodeModel(m), { externalData: files, externalDataVia: 'mmap', tempDir: path.join(parent, 'a-file'), worker: false });
      expect(Array.from((await s.run({ x: x() }))['y']!.data as Float32Array).slice(0, 4)).toEqual([0, 2, 4, 6]);
      await s.release();
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
    expect(() => validateSessionOptions({ externalDataVia: 'disk' as 'mmap' })).toThrow(/'memory' or 'mmap'/);
    expect(() => validateSessionOptions({ externalDataVia: 'mmap', sessionConfig: { 'session.model_external_initializers_file_folder_path': '/x' } })).toThrow(/sets itself/);
  });

  it('missing external data is an error that names the file', async () => {
    const { model: m } = externalizeInitializers(model);
    await expect(createSession(encodeModel(m), { worker: false })).rejects.toMatchObject({ code: 'RUNTIME_ERROR', message: expect.stringContaining('W.bin') });
  });
});

describe('errors from ORT', () => {
  it('a failing node at run time is RUNTIME_ERROR with ORT\'s message', async () => {
    const s = await createSession(gatherBytes(), { worker: false, logSeverityLevel: 4 });
    const ok = await s.run({ data: Tensor.fromNumbers([5, 6, 7], [3]), idx: Tensor.int64([2], [1]) });
    expect(Array.from(ok['out']!.data as Float32Array)).toEqual([7]);
    await expect(s.run({ data: Tensor.fromNumbers([5, 6, 7], [3]), idx: Tensor.int64([9], [1]) })).rejects.toMatchObject({
      code: 'RUNTIME_ERROR',
      message: expect.stringMatching(/onnxruntime failed running the graph: .*(out of|bounds)/i),
    });
    await s.release();
  });

  it('a malformed model is RUNTIME_ERROR at creation', async () => {
    const bad: ModelProto = {
      irVersion: 10,
      opsetImport: [{ domain: '', version: 21 }],
      producerName: 't',
      producerVersion: '0',
      graph: {
        name: 'bad',
        node: [{ input: ['x'], output: ['y'], name: 'n', opType: 'NoSuchOp', domain: '', attribute: [{ name: 'a', type: AttrType.INT, i: 1 }] }],
        initializer: [],
        input: [{ name: 'x', elemType: 1, shape: [{ dimValue: 1 }] }],
        output: [{ name: 'y', elemType: 1, shape: [{ dimValue: 1 }] }],
        valueInfo: [],
      },
    };
    await expect(createSession(encodeModel(bad), { worker: false })).rejects.toMatchObject({ code: 'RUNTIME_ERROR', message: expect.stringContaining('NoSuchOp') });
    await expect(createSession(new Uint8Array(0))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
