import { describe, expect, it } from 'vitest';
import { Tensor, type TsFinetuneError } from '../../src/core/index.js';
import {
  dequantize4bit,
  findPrequantizedWeights,
  parsePrequantized4bit,
  prequantizedKeys,
  quantize4bit,
  serializeQuantized4bit,
  type Quantized4bit,
} from '../../src/quant/index.js';
import { pythonFloatRepr } from '../../src/quant/prequantized.js';
import { bits, f32, genWeight, golden } from './golden.js';

const W = 'model.layers.0.mlp.down_proj.weight';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return `${(e as TsFinetuneError).code}: ${(e as Error).message}`;
  }
  return 'no error';
}

function expectSame(a: Quantized4bit, b: Quantized4bit): void {
  expect(a.packed).toEqual(b.packed);
  expect(bits(a.absmax)).toEqual(bits(b.absmax));
  expect(a.shape).toEqual(b.shape);
  expect([a.quantType, a.blocksize, a.dtype]).toEqual([b.quantType, b.blocksize, b.dtype]);
  expect(a.nested === undefined).toBe(b.nested === undefined);
  if (a.nested && b.nested) {
    expect(a.nested.code).toEqual(b.nested.code);
    expect(bits(a.nested.nestedAbsmax)).toEqual(bits(b.nested.nestedAbsmax));
    expect(bits(a.nested.quantMap)).toEqual(bits(b.nested.quantMap));
    expect([a.nested.offset, a.nested.blocksize]).toEqual([b.nested.offset, b.nested.blocksize]);
  }
}

describe('pre-quantized bnb-4bit entries', () => {
  const c = (golden.cases4bit as any[]).find((k) => k.name === 'special nf4 bs64 double-quant');
  const dq = quantize4bit(f32(golden.special), { quantType: 'nf4', shape: [48, 70], doubleQuant: true });

  it('serialise with the keys, dtypes and quant-state JSON bytes bitsandbytes writes', () => {
    const m = serializeQuantized4bit(W, dq);
    expect([...m.keys()].sort()).toEqual(prequantizedKeys(W, 'nf4', true).sort());
    expect(m.get(W)!.dtype).toBe('uint8');
    expect(m.get(W)!.dims).toEqual([1680, 1]);
    expect(m.get(`${W}.absmax`)!.dtype).toBe('uint8'); // nested: absmax holds the 8-bit codes
    expect(m.get(`${W}.nested_quant_map`)!.dims).toEqual([256]);
    const json = new TextDecoder().decode(m.get(`${W}.quant_state.bitsandbytes__nf4`)!.bytes());
    expect(json).toBe(c.quantStateJson); // Python json.dumps, byte for byte (float repr included)
  });

  it('parse what they serialise, nested and plain, NF4 and FP4', () => {
    expectSame(parsePrequantized4bit(serializeQuantized4bit(W, dq), W), dq);
    const plain = quantize4bit(genWeight(6, 50, 3), { quantType: 'fp4', shape: [6, 50], blocksize: 128, dtype: 'bfloat16' });
    const back = parsePrequantized4bit(serializeQuantized4bit(W, plain), W);
    expectSame(back, plain);
    expect(bits(dequantize4bit(back))).toEqual(bits(dequantize4bit(plain)));
  });

  it('view packed weights stored in another dtype (bnb_4bit_quant_storage) as bytes', () => {
    const m = serializeQuantized4bit(W, dq);
    const packed = m.get(W)!.data as Uint8Array;
    const asBf16 = new Uint16Array(packed.buffer.slice(packed.byteOffset, packed.byteOffset + packed.byteLength));
    m.set(W, new Tensor('bfloat16', [asBf16.length, 1], asBf16));
    expect(parsePrequantized4bit(m, W).packed).toEqual(dq.packed);
  });

  it('find the quantised weights among checkpoint keys', () => {
    const keys = [
      ...serializeQuantized4bit(W, dq).keys(),
      'model.norm.weight',
      'model.layers.1.self_attn.q_proj.weight.quant_state.bitsandbytes__fp4',
      'x.quant_state.bitsandbytes__int4',
    ];
    expect(findPrequantizedWeights(keys)).toEqual([W, 'model.layers.1.self_attn.q_proj.weight']);
  });

  it('reject incomplete or inconsistent entries, naming the key', () => {
    const good = serializeQuantized4bit(W, dq);
    const without = (k: string) => new Map([...good].filter(([key]) => key !== k));
    expect(codeOf(() => parsePrequantized4bit(without(`${W}.nested_absmax`), W))).toMatch(/MISSING_TENSOR.*nested_absmax/);
    expect(codeOf(() => parsePrequantized4bit(without(`${W}.quant_map`), W))).toMatch(/MISSING_TENSOR.*quant_map/);
    expect(codeOf(() => parsePrequantized4bit(without(`${W}.quant_state.bitsandbytes__nf4`), W))).toMatch(/MISSING_TENSOR.*quant_state/);
    const both = new Map(good);
    both.set(`${W}.quant_state.bitsandbytes__fp4`, good.get(`${W}.quant_state.bitsandbytes__nf4`)!);
    expect(codeOf(() => parsePrequantized4bit(both, W))).toMatch(/CORRUPT_FILE.*exactly one/);
    const bad = new Map(good);
    bad.set(`${W}.quant_state.bitsandbytes__nf4`, new Tensor('uint8', [3], Uint8Array.from([123, 34, 113])));
    expect(codeOf(() => parsePrequantized4bit(bad, W))).toMatch(/CORRUPT_FILE.*not UTF-8 JSON/);
    const short = new Map(good);
    short.set(W, new Tensor('uint8', [10, 1], new Uint8Array(10)));
    expect(codeOf(() => parsePrequantized4bit(short, W))).toMatch(/SHAPE_MISMATCH.*1680/);
    const badAbs = new Map(good);
    badAbs.set(`${W}.absmax`, new Tensor('float32', [53], new Float32Array(53)));
    expect(codeOf(() => parsePrequantized4bit(badAbs, W))).toMatch(/SHAPE_MISMATCH.*uint8 codes/);
    const json = (s: object) => {
      const m = new Map(good);
      const b = new TextEncoder().encode(JSON.stringify(s));
      m.set(`${W}.quant_state.bitsandbytes__nf4`, new Tensor('uint8', [b.length], b));
      return m;
    };
    const state = JSON.parse(c.quantStateJson);
    expect(codeOf(() => parsePrequantized4bit(json({ ...state, quant_type: 'fp4' }), W))).toMatch(/CORRUPT_FILE.*does not match/);
    expect(codeOf(() => parsePrequantized4bit(json({ ...state, dtype: 'int8' }), W))).toMatch(/UNSUPPORTED_DTYPE.*int8/);
    expect(codeOf(() => parsePrequantized4bit(json({ ...state, shape: null }), W))).toMatch(/CORRUPT_FILE.*shape/);
    expect(codeOf(() => parsePrequantized4bit(json({ ...state, blocksize: 100 }), W))).toMatch(/QUANT_ERROR.*blocksize 100/);
  });
});

describe('pythonFloatRepr', () => {
  it('formats like Python repr()', () => {
    const cases: [number, string][] = [
      [0.1, '0.1'],
      [1e-5, '1e-05'],
      [0.0001, '0.0001'],
      [1.5e-7, '1.5e-07'],
      [1e16, '1e+16'],
      [1e15, '1000000000000000.0'],
      [123, '123.0'],
      [-0.5, '-0.5'],
      [0, '0.0'],
      [-0, '-0.0'],
      [1.2345678901234568e17, '1.2345678901234568e+17'],
      [Math.fround(0.745266854763031), '0.745266854763031'],
      [1e100, '1e+100'],
    ];
    for (const [x, s] of cases) expect(pythonFloatRepr(x)).toBe(s);
  });
});
