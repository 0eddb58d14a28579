// Bit-exactness with torch in both directions, against the committed fixture made by
// scripts/make_safetensors_fixture.py: a file torch wrote reads back bit-exact here, and a file we write
// from the same source values reads back bit-exact in torch (`--check`, when /usr/bin/python3 has torch).
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tensor, allocArray, fromFloat32Array, type DType, type TypedArray } from '../../src/core/index.js';
import { SAFETENSORS_DTYPES, SafetensorsFile, readSafetensors, saveSafetensors, serializeSafetensors } from '../../src/io/index.js';

const FIXTURE_DIR = path.join(__dirname, '..', 'fixtures', 'io');
const FILE = path.join(FIXTURE_DIR, 'torch_written.safetensors');
const SCRIPT = path.join(__dirname, '..', '..', 'scripts', 'make_safetensors_fixture.py');

interface Expected {
  metadata: Record<string, string>;
  tensors: Record<string, { dtype: string; shape: number[]; source_dtype: DType; source: string[]; bits: string[] }>;
}
const expected = JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'torch_written.expected.json'), 'utf8')) as Expected;

/** Element bit patterns as lowercase hex, as the fixture JSON stores them. */
function bitsOf(t: Tensor): string[] {
  const bytes = t.bytes();
  const size = bytes.length / Math.max(1, t.size);
  const out: string[] = [];
  for (let i = 0; i < t.size; i++) {
    let h = '';
    for (let b = size - 1; b >= 0; b--) h += bytes[i * size + b]!.toString(16).padStart(2, '0');
    out.push(h);
  }
  return out;
}

function isNaNBits(dtype: string, h: string): boolean {
  const v = BigInt(`0x${h}`);
  const [expMask, mantMask] =
    dtype === 'BF16' ? [0x7f80n, 0x7fn] : dtype === 'F16' ? [0x7c00n, 0x3ffn] : dtype === 'F32' ? [0x7f800000n, 0x7fffffn] : [0x7ff0000000000000n, 0xfffffffffffffn];
  return (v & expMask) === expMask && (v & mantMask) !== 0n;
}

/** Build a tensor from the fixture's source values with our own conversions (RNE for 16-bit floats). */
function fromSource(e: Expected['tensors'][string]): Tensor {
  const dtype = SAFETENSORS_DTYPES[e.dtype]!;
  const n = e.shape.reduce((a, b) => a * b, 1);
  let data: TypedArray;
  if (e.source_dtype === 'float32') {
    const f = new Float32Array(new Uint32Array(e.source.map((h) => parseInt(h, 16))).buffer);
    data = fromFloat32Array(dtype, f);
  } else if (e.source_dtype === 'float64') {
    const f = new Float64Array(new BigUint64Array(e.source.map((h) => BigInt(`0x${h}`))).buffer);
    data = allocArray('float64', n);
    (data as Float64Array).set(f);
  } else if (dtype === 'int64') {
    data = new BigInt64Array(e.source.map((s) => BigInt(s)));
  } else {
    data = allocArray(dtype, n);
    (data as Exclude<TypedArray, BigInt64Array>).set(e.source.map(Number));
  }
  return new Tensor(dtype, e.shape, data as never);
}

describe('torch-written safetensors fixture', () => {
  it('reads every tensor bit-exact, with the header metadata', async () => {
    const f = await SafetensorsFile.open(FILE);
    expect(f.metadata).toEqual(expected.metadata);
    expect(f.keys()).toEqual(Object.keys(expected.tensors).sort());
    for (const [name, e] of Object.entries(expected.tensors)) {
      const t = await f.read(name);
      expect(t.dtype, name).toBe(SAFETENSORS_DTYPES[e.dtype]);
      expect([...t.dims], name).toEqual(e.shape);
      expect(bitsOf(t), name).toEqual(e.bits);
    }
    await f.close();
  });

  it('our f32→bf16/f16 conversions of the source values give torch bits (any NaN = any NaN)', () => {
    for (const [name, e] of Object.entries(expected.tensors)) {
      const ours = bitsOf(fromSource(e));
      expect(ours.length, name).toBe(e.bits.length);
      ours.forEach((h, i) => {
        const want = e.bits[i]!;
        if (isNaNBits(e.dtype, want) && ['BF16', 'F16', 'F32', 'F64'].includes(e.dtype)) expect(isNaNBits(e.dtype, h), `${name}[${i}]`).toBe(true);
        else expect(h, `${name}[${i}] from ${e.source[i]}`).toBe(want);
      });
    }
  });

  it('re-serializing the torch file gives the identical bytes', async () => {
    const tensors = await readSafetensors(FILE);
    const ours = serializeSafetensors(tensors, expected.metadata);
    expect(Buffer.from(ours).equals(readFileSync(FILE))).toBe(true);
  });

  it('a file we write reads back bit-exact in torch (make_safetensors_fixture.py --check)', async (ctx) => {
    if (!existsSync('/usr/bin/python3')) ctx.skip();
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-torch-'));
    try {
      const tensors = new Map(Object.entries(expected.tensors).map(([name, e]) => [name, fromSource(e)]));
      const file = path.join(dir, 'ours.safetensors');
      await saveSafetensors(file, tensors, expected.metadata);
      const r = spawnSync('/usr/bin/python3', [SCRIPT, '--check', file], { encoding: 'utf8' });
      // No torch/numpy on this machine: nothing to compare against (the fixture tests above still ran).
      if (/No module named '(torch|numpy)'/.test(r.stderr)) ctx.skip();
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^OK 13 tensors bit-exact/);
      expect(r.status).toBe(0);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
