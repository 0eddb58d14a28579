import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor, TsFinetuneError, ALL_DTYPES, allocArray, type DType } from '../../src/core/index.js';
import { SafetensorsFile, readSafetensors, readSafetensorsHeader, saveSafetensors, serializeSafetensors } from '../../src/io/index.js';

let dir: string;
beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-st-'));
});
afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

/** A file from a header (object or raw JSON text) and a data section, with optional overrides. */
async function rawFile(name: string, header: unknown, data: Uint8Array, opts: { lengthOverride?: bigint; truncateTo?: number } = {}): Promise<string> {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(opts.lengthOverride ?? BigInt(json.length));
  let bytes = Buffer.concat([len, json, data]);
  if (opts.truncateTo !== undefined) bytes = bytes.subarray(0, opts.truncateTo);
  const p = path.join(dir, name);
  await fsp.writeFile(p, bytes);
  return p;
}

async function expectError(p: Promise<unknown>, code: string, ...mustName: string[]): Promise<TsFinetuneError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TsFinetuneError);
  const err = e as TsFinetuneError;
  expect(err.code).toBe(code);
  for (const s of mustName) expect(err.message).toContain(s);
  return err;
}

function sample(dtype: DType, dims: number[], seed: number): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = allocArray(dtype, n);
  for (let i = 0; i < n; i++) {
    const v = (i * 7919 + seed * 104729) % 251;
    if (dtype === 'int64') (data as BigInt64Array)[i] = BigInt(v) * 0x100000001n - 5n;
    else if (dtype === 'bool') (data as Uint8Array)[i] = v & 1;
    else if (dtype === 'float16' || dtype === 'bfloat16') (data as Uint16Array)[i] = (v * 263) & 0xffff;
    else (data as Exclude<typeof data, BigInt64Array>)[i] = dtype.startsWith('float') ? v / 7 - 10 : v - 100;
  }
  return new Tensor(dtype, dims, data);
}

describe('safetensors write → read', () => {
  it('round-trips every dtype bit-exact, with metadata, through a real file', async () => {
    const tensors = new Map<string, Tensor>();
    ALL_DTYPES.forEach((dt, i) => tensors.set(`t.${dt}`, sample(dt, [3, i + 1], i)));
    tensors.set('scalar', Tensor.fromNumbers([1.5], []));
    tensors.set('empty', Tensor.zeros('int32', [0, 4]));
    const file = path.join(dir, 'all.safetensors');
    await saveSafetensors(file, tensors, { format: 'pt', note: 'héllo "quoted"' });

    const f = await SafetensorsFile.open(file);
    expect(f.metadata).toEqual({ format: 'pt', note: 'héllo "quoted"' });
    expect(f.keys()).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors) {
      const info = f.info(name);
      expect(info.dtype).toBe(t.dtype);
      expect(info.shape).toEqual([...t.dims]);
      expect(info.byteLength).toBe(t.byteLength);
      // Every tensor starts aligned to its element size (the reason for the dtype-first ordering).
      expect(info.byteOffset % Math.max(1, t.byteLength === 0 ? 1 : t.byteLength / t.size)).toBe(0);
      const back = await f.read(name);
      expect(back.dtype).toBe(t.dtype);
      expect(back.dims).toEqual(t.dims);
      expect(Buffer.from(back.bytes()).equals(Buffer.from(t.bytes()))).toBe(true);
    }
    await f.close();
    const all = await readSafetensors(file);
    expect([...all.keys()]).toEqual([...tensors.keys()].sort());
  });

  it('matches the Rust library byte for byte (vectors from safetensors/src/tensor.rs tests)', () => {
    const attn = Tensor.fromNumbers([0, 1, 2, 3, 4, 5], [1, 2, 3]);
    // test_serialization: a 64-byte header needs no padding; the data follows at once.
    const a = serializeSafetensors({ 'attn.0': attn });
    expect(Array.from(a.subarray(0, 8))).toEqual([64, 0, 0, 0, 0, 0, 0, 0]);
    expect(Buffer.from(a.subarray(8, 72)).toString()).toBe('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}');
    expect(Array.from(a.subarray(72, 80))).toEqual([0, 0, 0, 0, 0, 0, 128, 63]);
    // test_serialization_forced_alignement: 65 bytes of JSON are padded with 7 spaces to 72.
    const b = serializeSafetensors({ attn0: attn.reshape([1, 1, 2, 3]) });
    expect(Array.from(b.subarray(0, 8))).toEqual([72, 0, 0, 0, 0, 0, 0, 0]);
    expect(Buffer.from(b.subarray(8, 80)).toString()).toBe('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ');
    expect(b.length).toBe(8 + 72 + 24);
    // test_empty: no tensors, with and without metadata.
    expect(Array.from(serializeSafetensors({}))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    const withMeta = serializeSafetensors({}, { framework: 'pt' });
    expect(withMeta[0]).toBe(40);
    expect(Buffer.from(withMeta.subarray(8)).toString()).toBe('{"__metadata__":{"framework":"pt"}}     ');
  });

  it('orders tensors by descending alignment then name, keeping integer-like names in place', () => {
    const bytes = serializeSafetensors({
      b: Tensor.zeros('uint8', [1]),
      a: Tensor.zeros('float32', [1]),
      '10': Tensor.zeros('float32', [1]),
      '2': Tensor.zeros('float32', [1]),
      z: Tensor.zeros('int64', [1]),
      h: Tensor.zeros('bfloat16', [1]),
    });
    const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
    const header = Buffer.from(bytes.subarray(8, 8 + n)).toString();
    const order = [...header.matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1]);
    expect(order).toEqual(['z', '10', '2', 'a', 'h', 'b']);
  });

  it('accepts a plain record and writes the same bytes as a Map', () => {
    const t = { x: Tensor.fromNumbers([1, 2], [2]), y: Tensor.fromNumbers([3], [1], 'bfloat16') };
    expect(Buffer.from(serializeSafetensors(t)).equals(Buffer.from(serializeSafetensors(new Map(Object.entries(t)))))).toBe(true);
  });

  it('reads one tensor from a 4 GiB (sparse) file without touching the rest', async () => {
    const big = 4 * 2 ** 30;
    const header = JSON.stringify({
      big: { dtype: 'U8', shape: [big], data_offsets: [0, big] },
      small: { dtype: 'F32', shape: [2], data_offsets: [big, big + 8] },
    });
    const json = Buffer.from(header + ' '.repeat((8 - (header.length % 8)) % 8));
    const p = path.join(dir, 'sparse.safetensors');
    const fh = await fsp.open(p, 'w');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    await fh.write(Buffer.concat([len, json]), 0, 8 + json.length, 0);
    await fh.write(Buffer.from(new Float32Array([1.25, -3]).buffer), 0, 8, 8 + json.length + big);
    await fh.close();
    const f = await SafetensorsFile.open(p);
    const t0 = performance.now();
    const small = await f.read('small');
    expect(performance.now() - t0).toBeLessThan(500);
    expect(Array.from(small.data as Float32Array)).toEqual([1.25, -3]);
    expect(f.info('big').byteLength).toBe(big);
    await f.close();
    await fsp.rm(p);
  });

  it('readSafetensorsHeader gives metadata and file order without data', async () => {
    const file = path.join(dir, 'hdr.safetensors');
    await saveSafetensors(file, { a: Tensor.zeros('uint8', [3]), b: Tensor.zeros('float64', [1]) }, { format: 'pt' });
    const h = await readSafetensorsHeader(file);
    expect(h.metadata).toEqual({ format: 'pt' });
    expect(h.tensors.map((t) => t.name)).toEqual(['b', 'a']);
  });
});

describe('safetensors bad input', () => {
  const f32x2 = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };

  it('truncated before the length prefix', async () => {
    const p = path.join(dir, 'tiny.safetensors');
    await fsp.writeFile(p, Buffer.from([1, 2, 3]));
    await expectError(SafetensorsFile.open(p), 'CORRUPT_FILE', p, 'truncated');
  });

  it('header length overrunning the file', async () => {
    const p = await rawFile('overrun-header.safetensors', { a: f32x2 }, new Uint8Array(8), { lengthOverride: 10_000n });
    await expectError(SafetensorsFile.open(p), 'CORRUPT_FILE', p, 'header length 10000 overruns');
  });

  it('absurd header length', async () => {
    const p = await rawFile('huge-header.safetensors', { a: f32x2 }, new Uint8Array(8), { lengthOverride: 2n ** 40n });
    await expectError(SafetensorsFile.open(p), 'CORRUPT_FILE', p, 'exceeds');
  });

  it('file truncated inside the data section (offsets overrun it)', async () => {
    const header = { a: f32x2, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } };
    const json = JSON.stringify(header);
    const p = await rawFile('trunc-data.safetensors', header, new Uint8Array(16), { truncateTo: 8 + json.length + 12 });
    await expectError(SafetensorsFile.open(p), 'CORRUPT_FILE', p, "tensor 'b'", 'overrun the data section');
  });

  it('overlapping offsets', async () => {
    const header = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } };
    const p = await rawFile('overlap.safetensors', header, new Uint8Array(12));
    await expectError(SafetensorsFile.open(p), 'CORRUPT_FILE', p, "tensor 'b'", "overlaps tensor 'a'");
  });

  it('a gap between tensors and bytes after the last one', async () => {
    const gap = { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } };
    const p1 = await rawFile('gap.safetensors', gap, new Uint8Array(12));
    await expectError(SafetensorsFile.open(p1), 'CORRUPT_FILE', p1, "before 'b'");
    const p2 = await rawFile('trailing.safetensors', { a: f32x2 }, new Uint8Array(12));
    await expectError(SafetensorsFile.open(p2), 'CORRUPT_FILE', p2, '4 bytes after the last tensor');
  });

  it('unknown and unsupported dtypes', async () => {
    const p1 = await rawFile('unknown-dtype.safetensors', { w: { dtype: 'F7', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1));
    const e1 = await expectError(SafetensorsFile.open(p1), 'UNSUPPORTED_DTYPE', p1, "tensor 'w'", "'F7'", 'unknown');
    expect(e1.details).toMatchObject({ file: p1, tensor: 'w', dtype: 'F7' });
    const p2 = await rawFile('u32.safetensors', { w: { dtype: 'U32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4));
    await expectError(SafetensorsFile.open(p2), 'UNSUPPORTED_DTYPE', p2, "tensor 'w'", 'not supported');
  });

  it('shape × dtype size not equal to the byte range', async () => {
    const p = await rawFile('size.safetensors', { w: { dtype: 'BF16', shape: [2, 3], data_offsets: [0, 8] } }, new Uint8Array(8));
    await expectError(SafetensorsFile.open(p), 'CORRUPT_FILE', p, "tensor 'w'", 'needs 12 bytes', 'hold 8');
  });

  it('malformed headers: not JSON, not UTF-8, bad shape, bad offsets, bad metadata', async () => {
    const cases: [string, string | Buffer, string][] = [
      ['notjson', '{"a": {', 'not valid JSON'],
      ['array', '[1,2]', 'not a JSON object'],
      ['shape', JSON.stringify({ w: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }), "tensor 'w': 'shape'"],
      ['offsets', JSON.stringify({ w: { dtype: 'U8', shape: [1], data_offsets: [1, 0] } }), "tensor 'w': 'data_offsets'"],
      ['meta', JSON.stringify({ __metadata__: { n: 1 } }), "'__metadata__.n' is not a string"],
    ];
    for (const [name, header, msg] of cases) {
      const p = await rawFile(`${name}.safetensors`, header, new Uint8Array(0));
      await expectError(SafetensorsFile.open(p), 'CORRUPT_FILE', p, msg);
    }
    const bad = path.join(dir, 'utf8.safetensors');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(2n);
    await fsp.writeFile(bad, Buffer.concat([len, Buffer.from([0xff, 0xfe])]));
    await expectError(SafetensorsFile.open(bad), 'CORRUPT_FILE', bad, 'UTF-8');
  });

  it('missing file, missing tensor, closed file', async () => {
    await expectError(SafetensorsFile.open(path.join(dir, 'nope.safetensors')), 'FILE_NOT_FOUND', 'nope.safetensors');
    await expectError(SafetensorsFile.open(dir), 'INVALID_ARGUMENT', dir, 'is a folder');
    const file = path.join(dir, 'one.safetensors');
    await saveSafetensors(file, { a: Tensor.zeros('float32', [1]) });
    const f = await SafetensorsFile.open(file);
    expect(() => f.info('b')).toThrow(/Tensor 'b' is not in .*one\.safetensors/);
    await f.close();
    await expectError(f.read('a'), 'INVALID_ARGUMENT', 'closed');
  });
});

describe('saveSafetensors writes nothing on failure', () => {
  it('rejects bad input before creating any file, leaving an existing file untouched', async () => {
    const sub = path.join(dir, 'atomic');
    await fsp.mkdir(sub);
    const file = path.join(sub, 'model.safetensors');
    await saveSafetensors(file, { keep: Tensor.fromNumbers([7], [1]) });
    const before = await fsp.readFile(file);
    await expect(saveSafetensors(file, { a: Tensor.zeros('float32', [1]) }, { n: 3 as unknown as string })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(saveSafetensors(file, { __metadata__: Tensor.zeros('float32', [1]) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(saveSafetensors(file, { a: { dtype: 'float32' } as unknown as Tensor })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((await fsp.readFile(file)).equals(before)).toBe(true);
    expect(await fsp.readdir(sub)).toEqual(['model.safetensors']);
  });

  it('removes its temp file when the write itself fails', async () => {
    const sub = path.join(dir, 'atomic2');
    await fsp.mkdir(sub);
    // A directory in the way of the final name makes the rename fail after the data was written.
    await fsp.mkdir(path.join(sub, 'model.safetensors'));
    await fsp.writeFile(path.join(sub, 'model.safetensors', 'x'), 'x');
    await expect(saveSafetensors(path.join(sub, 'model.safetensors'), { a: Tensor.zeros('float32', [4]) })).rejects.toThrow();
    expect(await fsp.readdir(sub)).toEqual(['model.safetensors']);
  });
});
