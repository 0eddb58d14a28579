// Pre-quantised `*-bnb-4bit` checkpoints: the safetensors entries bitsandbytes' `Linear4bit` saves for one
// weight, read into a Quantized4bit and written back from one, byte-compatible with what bnb writes.
// Not here: reading safetensors files (src/io), deciding which modules are quantised (src/models).
// Follows bitsandbytes `functional.QuantState.as_dict(packed=True)` / `from_dict` and `utils.pack_dict_to_tensor`
// (json.dumps of the non-tensor fields, UTF-8 bytes in a uint8 tensor). For a weight `W` the keys are:
//   W                                  uint8 [ceil(n/2), 1]  packed codes (other storage dtypes are viewed as bytes)
//   W.absmax                           float32 [blocks], or uint8 [blocks] codes with double quant
//   W.quant_map                        float32 [16]  (bnb's dequantiser ignores it and uses its own table)
//   W.nested_absmax, W.nested_quant_map  float32, only with double quant
//   W.quant_state.bitsandbytes__nf4    uint8 JSON {quant_type, blocksize, dtype, shape[, nested_blocksize,
//                                      nested_dtype, nested_offset]}  (…__fp4 for FP4)

import { Tensor, TsFinetuneError } from '../core/index.js';
import { codebook4bit, type QuantType4bit } from './codebooks.js';
import { checkBlocksize } from './quantize-8bit.js';
import { dequantizeNestedAbsmax, type Quantized4bit, type WeightDType } from './quantize-4bit.js';

const QUANT_STATE_PREFIX = '.quant_state.bitsandbytes__';

/** Names W of every weight stored in bnb 4-bit form (those with a `W.quant_state.bitsandbytes__*` entry). */
export function findPrequantizedWeights(keys: Iterable<string>): string[] {
  const out: string[] = [];
  for (const k of keys) {
    const i = k.lastIndexOf(QUANT_STATE_PREFIX);
    if (i > 0 && /^(nf4|fp4)$/.test(k.slice(i + QUANT_STATE_PREFIX.length))) out.push(k.slice(0, i));
  }
  return out.sort();
}

/** Every checkpoint key a quantised weight occupies (W itself and its quant-state entries). */
export function prequantizedKeys(name: string, quantType: QuantType4bit, nested: boolean): string[] {
  const keys = [name, `${name}.absmax`, `${name}.quant_map`];
  if (nested) keys.push(`${name}.nested_absmax`, `${name}.nested_quant_map`);
  keys.push(`${name}${QUANT_STATE_PREFIX}${quantType}`);
  return keys;
}

function need(tensors: ReadonlyMap<string, Tensor>, key: string): Tensor {
  const t = tensors.get(key);
  if (t === undefined) throw new TsFinetuneError('MISSING_TENSOR', `pre-quantized checkpoint is missing '${key}'`, { key });
  return t;
}

function floats(t: Tensor, key: string, length: number): Float32Array {
  if (t.dtype !== 'float32' && t.dtype !== 'float16' && t.dtype !== 'bfloat16' && t.dtype !== 'float64') {
    throw new TsFinetuneError('UNSUPPORTED_DTYPE', `'${key}' must be a float tensor, got ${t.dtype}`, { key, dtype: t.dtype });
  }
  if (t.size !== length) {
    throw new TsFinetuneError('SHAPE_MISMATCH', `'${key}' has ${t.size} elements, expected ${length}`, {
      key,
      expected: length,
      found: t.size,
    });
  }
  return Float32Array.from(t.toFloat32());
}

function corrupt(key: string, what: string): TsFinetuneError {
  return new TsFinetuneError('CORRUPT_FILE', `'${key}': ${what}`, { key });
}

function isWeightDType(s: unknown): s is WeightDType {
  return s === 'float32' || s === 'float16' || s === 'bfloat16';
}

/** Read the bnb 4-bit entries of weight `name` (e.g. `model.layers.0.mlp.up_proj.weight`). */
export function parsePrequantized4bit(tensors: ReadonlyMap<string, Tensor>, name: string): Quantized4bit {
  const stateKeys = (['nf4', 'fp4'] as const).map((t) => `${name}${QUANT_STATE_PREFIX}${t}`).filter((k) => tensors.has(k));
  if (stateKeys.length !== 1) {
    throw new TsFinetuneError(
      stateKeys.length === 0 ? 'MISSING_TENSOR' : 'CORRUPT_FILE',
      `pre-quantized weight '${name}' needs exactly one '${name}${QUANT_STATE_PREFIX}{nf4,fp4}' entry, found ${stateKeys.length}`,
      { name, found: stateKeys },
    );
  }
  const stateKey = stateKeys[0]!;
  const stateTensor = need(tensors, stateKey);
  let state: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(stateTensor.bytes()));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    state = parsed as Record<string, unknown>;
  } catch (e) {
    throw new TsFinetuneError('CORRUPT_FILE', `'${stateKey}' is not UTF-8 JSON: ${(e as Error).message}`, { key: stateKey }, { cause: e });
  }
  const quantType = state['quant_type'];
  if (quantType !== 'nf4' && quantType !== 'fp4') throw corrupt(stateKey, `quant_type must be "nf4" or "fp4", got ${JSON.stringify(quantType)}`);
  if (!stateKey.endsWith(quantType)) throw corrupt(stateKey, `quant_type "${quantType}" does not match the key`);
  const blocksize = state['blocksize'];
  if (typeof blocksize !== 'number') throw corrupt(stateKey, 'blocksize is missing');
  checkBlocksize(blocksize, stateKey);
  const dtype = state['dtype'];
  if (!isWeightDType(dtype)) {
    throw new TsFinetuneError('UNSUPPORTED_DTYPE', `'${stateKey}': dtype ${JSON.stringify(dtype)} is not float32, float16 or bfloat16`, {
      key: stateKey,
    });
  }
  const shape = state['shape'];
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw corrupt(stateKey, `shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  const dims = shape as number[];
  const n = dims.reduce((a, b) => a * b, 1);
  const nBlocks = Math.ceil(n / blocksize);

  const weight = need(tensors, name);
  // bnb views other storage dtypes (bnb_4bit_quant_storage) as uint8: so do we.
  const packed = Uint8Array.from(weight.bytes());
  if (packed.length !== Math.ceil(n / 2)) {
    throw new TsFinetuneError(
      'SHAPE_MISMATCH',
      `'${name}' holds ${packed.length} bytes; shape [${dims.join(', ')}] packs into ${Math.ceil(n / 2)}`,
      { key: name, expected: Math.ceil(n / 2), found: packed.length },
    );
  }
  const quantMap = need(tensors, `${name}.quant_map`);
  if (quantMap.size !== 16) throw corrupt(`${name}.quant_map`, `expected 16 values, got ${quantMap.size}`);

  const absmaxT = need(tensors, `${name}.absmax`);
  const q: Quantized4bit = { packed, absmax: new Float32Array(0), shape: dims, quantType, blocksize, dtype };
  if (tensors.has(`${name}.nested_absmax`) || 'nested_offset' in state) {
    const nestedBlocksize = state['nested_blocksize'];
    const offset = state['nested_offset'];
    if (typeof nestedBlocksize !== 'number' || !Number.isInteger(nestedBlocksize) || nestedBlocksize <= 0) {
      throw corrupt(stateKey, 'nested_blocksize is missing');
    }
    if (typeof offset !== 'number') throw corrupt(stateKey, 'nested_offset is missing');
    if (state['nested_dtype'] !== undefined && state['nested_dtype'] !== 'float32') {
      throw new TsFinetuneError('UNSUPPORTED_DTYPE', `'${stateKey}': nested_dtype must be float32, got ${JSON.stringify(state['nested_dtype'])}`);
    }
    if (absmaxT.dtype !== 'uint8' || absmaxT.size !== nBlocks) {
      throw new TsFinetuneError(
        'SHAPE_MISMATCH',
        `'${name}.absmax' must be ${nBlocks} uint8 codes with double quant, got ${absmaxT.size} ${absmaxT.dtype}`,
        { key: `${name}.absmax`, expected: nBlocks, found: absmaxT.size },
      );
    }
    const nested = {
      code: Uint8Array.from(absmaxT.data as Uint8Array),
      nestedAbsmax: floats(need(tensors, `${name}.nested_absmax`), `${name}.nested_absmax`, Math.ceil(nBlocks / nestedBlocksize)),
      offset: Math.fround(offset),
      blocksize: nestedBlocksize,
      quantMap: floats(need(tensors, `${name}.nested_quant_map`), `${name}.nested_quant_map`, 256),
    };
    q.nested = nested;
    q.absmax = dequantizeNestedAbsmax(nested);
  } else {
    q.absmax = floats(absmaxT, `${name}.absmax`, nBlocks);
  }
  return q;
}

/** The checkpoint entries bnb writes for weight `name` quantised as `q` (see the file comment). */
export function serializeQuantized4bit(name: string, q: Readonly<Quantized4bit>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  out.set(name, new Tensor('uint8', [q.packed.length, 1], Uint8Array.from(q.packed)));
  const fields: [string, string | number | readonly number[] | PyFloat][] = [
    ['quant_type', q.quantType],
    ['blocksize', q.blocksize],
    ['dtype', q.dtype],
    ['shape', q.shape],
  ];
  if (q.nested) {
    out.set(`${name}.absmax`, new Tensor('uint8', [q.nested.code.length], Uint8Array.from(q.nested.code)));
    out.set(`${name}.quant_map`, new Tensor('float32', [16], Float32Array.from(codebook4bit(q.quantType))));
    out.set(`${name}.nested_absmax`, new Tensor('float32', [q.nested.nestedAbsmax.length], Float32Array.from(q.nested.nestedAbsmax)));
    out.set(`${name}.nested_quant_map`, new Tensor('float32', [256], Float32Array.from(q.nested.quantMap)));
    fields.push(['nested_blocksize', q.nested.blocksize], ['nested_dtype', 'float32'], ['nested_offset', { float: q.nested.offset }]);
  } else {
    out.set(`${name}.absmax`, new Tensor('float32', [q.absmax.length], Float32Array.from(q.absmax)));
    out.set(`${name}.quant_map`, new Tensor('float32', [16], Float32Array.from(codebook4bit(q.quantType))));
  }
  const json = pythonJsonDumps(fields);
  const bytes = new TextEncoder().encode(json);
  out.set(`${name}${QUANT_STATE_PREFIX}${q.quantType}`, new Tensor('uint8', [bytes.length], bytes));
  return out;
}

/** Python `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16. */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [mant, expStr] = Math.abs(x).toExponential().split('e') as [string, string];
  const e = Number(expStr);
  const digits = mant.replace('.', '');
  if (e < -4 || e >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const ae = Math.abs(e);
    return `${sign}${m}e${e < 0 ? '-' : '+'}${ae < 10 ? '0' : ''}${ae}`;
  }
  if (e < 0) return `${sign}0.${'0'.repeat(-e - 1)}${digits}`;
  const intPart = digits.length > e + 1 ? digits.slice(0, e + 1) : digits.padEnd(e + 1, '0');
  const frac = digits.length > e + 1 ? digits.slice(e + 1) : '0';
  return `${sign}${intPart}.${frac}`;
}

/** A Python float in the quant-state JSON (plain numbers there are Python ints). */
interface PyFloat {
  float: number;
}

/** Python `json.dumps` of a flat dict of str / int / float / list-of-int values (default separators). */
function pythonJsonDumps(fields: readonly [string, string | number | readonly number[] | PyFloat][]): string {
  const val = (v: string | number | readonly number[] | PyFloat): string => {
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'number') return String(v);
    if ('float' in v) return pythonFloatRepr(v.float);
    return `[${v.map((d) => String(d)).join(', ')}]`;
  };
  return `{${fields.map(([k, v]) => `${JSON.stringify(k)}: ${val(v)}`).join(', ')}}`;
}
