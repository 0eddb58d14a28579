// 4-bit loading (BitsAndBytesConfig) checked against an independent reading of REFERENCE.md's bitsandbytes
// facts written here in the test: which tensors are quantised (decoder linears only), the stateDict entries
// bitsandbytes serialises, the codes (nearest codebook value of x·(1/absmax)), absmax per block of 64 with the
// tail block's own absmax, double-quant reconstruction, and logits = those of the fp32 model whose linear
// weights are replaced by the dequantised ones and whose other weights are rounded to the 16-bit dtype the
// 4-bit model stores them in (float16 unless a dtype is given: transformers' Bnb4BitHfQuantizer.
// update_torch_dtype). Also pre-quantized checkpoints and prepareModelForKbitTraining.
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/index.js';
import { CheckpointReader, readSafetensors, saveSafetensors } from '../../src/io/index.js';
import { AutoModelForCausalLM, CausalLM, type QuantizedLinear } from '../../src/models/index.js';
import { prepareModelForKbitTraining } from '../../src/peft/index.js';
import { BitsAndBytesConfig, serializeQuantized4bit } from '../../src/quant/index.js';

const GQA = 'test/fixtures/models/llama-gqa';
const FAST = { worker: false, graphOptimizationLevel: 'disabled' } as const;
const f32 = Math.fround;

// REFERENCE.md, "bitsandbytes 4-bit"
const NF4 = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1.0,
].map(f32);
const FP4 = [0, 0.0625, 8, 12, 4, 6, 2, 3, -0, -0.0625, -8, -12, -4, -6, -2, -3].map((v) => f32(v / 12));
const LINEARS = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];

/** Nearest codebook entry (ties to the lower index); FP4 picks within the sign's half, as its bit tree does. */
function nearestCode(s: number, quantType: 'nf4' | 'fp4'): number {
  const cb = quantType === 'nf4' ? NF4 : FP4;
  const [lo, hi] = quantType === 'nf4' ? [0, 16] : s < 0 || Object.is(s, -0) ? [8, 16] : [0, 8];
  let best = lo;
  for (let k = lo + 1; k < hi; k++) if (Math.abs(s - cb[k]!) < Math.abs(s - cb[best]!)) best = k;
  return best;
}

interface Stored {
  codes: number[];
  absmax: Float32Array; // the per-block scale dequantisation uses
  state: Record<string, unknown>;
}

/** Decode the bitsandbytes entries of one weight from a stateDict, without src/quant. */
function readStored(sd: Map<string, Tensor>, w: string, quantType: 'nf4' | 'fp4'): Stored {
  const state = JSON.parse(new TextDecoder().decode(sd.get(`${w}.quant_state.bitsandbytes__${quantType}`)!.data as Uint8Array)) as Record<string, unknown>;
  const shape = state.shape as number[];
  const n = shape[0]! * shape[1]!;
  const packed = sd.get(w)!.data as Uint8Array;
  const codes: number[] = [];
  for (let i = 0; i < n; i++) codes.push(i % 2 === 0 ? packed[i >> 1]! >> 4 : packed[i >> 1]! & 15);
  const a = sd.get(`${w}.absmax`)!;
  let absmax: Float32Array;
  if (a.dtype === 'uint8') {
    // double quant: absmax_i = nested_quant_map[code_i] · nested_absmax[i / 256] + offset
    const qm = sd.get(`${w}.nested_quant_map`)!.data as Float32Array;
    const na = sd.get(`${w}.nested_absmax`)!.data as Float32Array;
    const off = f32(state.nested_offset as number);
    absmax = Float32Array.from(a.data as Uint8Array, (c, i) => f32(f32(qm[c]! * na[Math.floor(i / 256)]!) + off));
  } else absmax = a.data as Float32Array;
  return { codes, absmax, state };
}

/** codebook[code] · absmax[block] in float32, [out, in] as the fp32 weight. */
function dequant(s: Stored, quantType: 'nf4' | 'fp4'): Tensor<'float32'> {
  const cb = quantType === 'nf4' ? NF4 : FP4;
  const shape = s.state.shape as number[];
  const bs = s.state.blocksize as number;
  return new Tensor('float32', shape, Float32Array.from(s.codes, (c, i) => f32(cb[c]! * s.absmax[Math.floor(i / bs)]!)));
}

const opened: CausalLM[] = [];
async function load(dir: string, q?: BitsAndBytesConfig, dtype?: 'float32' | 'float16' | 'bfloat16' | 'auto'): Promise<CausalLM> {
  const opts: Parameters<typeof AutoModelForCausalLM.fromPretrained>[1] = {};
  if (q) opts.quantizationConfig = q;
  if (dtype) opts.dtype = dtype;
  const m = await AutoModelForCausalLM.fromPretrained(dir, opts);
  m.sessionOptions = FAST;
  opened.push(m);
  return m;
}
afterAll(async () => {
  for (const m of opened) await m.release();
});

function maxAbs(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

let gold: Map<string, Tensor>;
const batch = (): { inputIds: Tensor; attentionMask: Tensor } => ({ inputIds: gold.get('input_ids')!, attentionMask: gold.get('attention_mask')! });

/**
 * Checks one 4-bit model against its fp32 source: entries, codes, absmax, logits via the dequantised weights.
 * `stored` is the dtype the other weights must be held in (float16 when fromPretrained gets no dtype).
 */
async function checkQuantised(
  dir: string,
  q: BitsAndBytesConfig,
  inputs: { inputIds: Tensor | number[][]; attentionMask?: Tensor },
  opts: { dtype?: 'float32' | 'float16' | 'bfloat16' | 'auto'; stored?: 'float32' | 'float16' | 'bfloat16' } = {},
): Promise<CausalLM> {
  const quantType = q.bnb4bitQuantType;
  const dq = q.bnb4bitUseDoubleQuant;
  const stored = opts.stored ?? 'float16';
  const m4 = await load(dir, q, opts.dtype);
  const reader = await CheckpointReader.open(dir);
  const file = await reader.readAll();
  await reader.close();
  const cfg = m4.config;
  const sd = m4.stateDict();
  const weights = [...file.keys()].filter((k) => LINEARS.some((l) => k.endsWith(`${l}.weight`)));
  expect(weights).toHaveLength(7 * cfg.numHiddenLayers);
  expect([...m4.quantized.keys()].sort()).toEqual([...weights].sort());
  const dense = new Map<string, Tensor<'float32'>>();
  for (const [k, t] of file) {
    if (weights.includes(k)) continue;
    // embeddings, norms, lm_head: not quantised, held in `stored` (rounded to nearest even, as torch's .to)
    const held = t.to(stored);
    expect(sd.get(k)!.dtype, k).toBe(stored);
    expect(sd.get(k)!.data, k).toEqual(held.data);
    if (stored !== 'float32') expect(maxAbs(held.toFloat32(), t.toFloat32()), `${k} is really rounded`).toBeGreaterThan(0);
    dense.set(k, held.to('float32'));
  }
  for (const w of weights) {
    const src = file.get(w)!.data as Float32Array;
    const [out, inF] = file.get(w)!.dims as [number, number];
    const n = out * inF;
    const keys = [...sd.keys()].filter((k) => k === w || k.startsWith(`${w}.`));
    const parts = ['', '.absmax', '.quant_map', ...(dq ? ['.nested_absmax', '.nested_quant_map'] : []), `.quant_state.bitsandbytes__${quantType}`];
    expect(keys, w).toEqual(parts.map((p) => `${w}${p}`)); // bitsandbytes' order
    expect(sd.get(w)!.dtype).toBe('uint8');
    expect(sd.get(w)!.dims).toEqual([Math.ceil(n / 2), 1]);
    const nBlocks = Math.ceil(n / 64);
    expect(sd.get(`${w}.absmax`)!.dims).toEqual([nBlocks]);
    expect(sd.get(`${w}.absmax`)!.dtype).toBe(dq ? 'uint8' : 'float32');
    expect(sd.get(`${w}.quant_map`)!.data).toEqual(Float32Array.from(quantType === 'nf4' ? NF4 : FP4));
    const stored = readStored(sd, w, quantType);
    expect(stored.state).toMatchObject({ quant_type: quantType, blocksize: 64, dtype: 'float32', shape: [out, inF] });
    if (dq) {
      expect(sd.get(`${w}.nested_absmax`)!.dims).toEqual([Math.ceil(nBlocks / 256)]);
      expect(stored.state).toMatchObject({ nested_blocksize: 256, nested_dtype: 'float32' });
    }
    // absmax of every block (the tail block of a count that is not a multiple of 64 has its own)
    const trueAbsmax = new Float32Array(nBlocks);
    for (let i = 0; i < n; i++) trueAbsmax[Math.floor(i / 64)] = Math.max(trueAbsmax[Math.floor(i / 64)]!, Math.abs(src[i]!));
    if (dq) {
      for (let b = 0; b < nBlocks; b++) expect(Math.abs(stored.absmax[b]! - trueAbsmax[b]!)).toBeLessThan(0.02 * trueAbsmax[b]!);
    } else expect(stored.absmax).toEqual(trueAbsmax);
    // codes: the nearest codebook value of x·(1/absmax), with the original absmax (double quant only
    // changes the stored scale); an odd count pads the last low nibble with the code of 0
    let mismatches = 0;
    for (let i = 0; i < n; i++) {
      const a = trueAbsmax[Math.floor(i / 64)]!;
      if (stored.codes[i] !== nearestCode(f32(src[i]! * f32(1 / a)), quantType)) mismatches++;
    }
    expect(mismatches, w).toBe(0);
    if (n % 2 === 1) expect((sd.get(w)!.data as Uint8Array)[(n - 1) >> 1]! & 15).toBe(nearestCode(0, quantType));
    dense.set(w, dequant(stored, quantType));
  }
  // numParameters counts a 4-bit weight as its elements (transformers: packed uint8 numel × 2)
  const elements = [...file.values()].reduce((s, t) => s + t.size, 0);
  const oddWeights = weights.filter((w) => file.get(w)!.size % 2 === 1).length;
  expect(m4.numParameters()).toBe(elements + oddWeights);

  const ref = new CausalLM(cfg, dense, new Map(), dir);
  ref.sessionOptions = FAST;
  opened.push(ref);
  const fp = await load(dir);
  const [l4, lr, lf] = await Promise.all([m4.forward(inputs), ref.forward(inputs), fp.forward(inputs)]);
  const d = maxAbs(l4.logits.data, lr.logits.data);
  const dq4 = maxAbs(l4.logits.data, lf.logits.data);
  console.log(`${path.basename(dir)} ${quantType}${dq ? ' + double quant' : ''}: |4-bit − dequantised fp32| ${d.toExponential(2)}, |4-bit − original fp32| ${dq4.toExponential(2)}`);
  expect(d).toBeLessThan(1e-4);
  expect(dq4).toBeGreaterThan(1e-3); // the weights really are 4-bit
  return m4;
}

beforeAll(async () => {
  gold = await readSafetensors('test/fixtures/golden/forward-llama-gqa.safetensors');
});

describe('load 4-bit: llama-gqa', () => {
  for (const [quantType, dq] of [['nf4', true], ['nf4', false], ['fp4', false]] as const) {
    it(`${quantType}${dq ? ' + double quant' : ''}: decoder linears quantised as bitsandbytes, logits = dequantised fp32 model`, async () => {
      const q = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: quantType, bnb4bitUseDoubleQuant: dq, bnb4bitComputeDtype: 'bfloat16' });
      const m4 = await checkQuantised(GQA, q, batch());
      expect(m4.quantizationConfig).toBe(q);
    });
  }

  for (const [dtype, stored] of [['bfloat16', 'bfloat16'], ['float32', 'float32'], ['auto', 'float32']] as const) {
    it(`dtype '${dtype}': the weights that are not quantised are held in ${stored} (the fixture's torch_dtype is float32)`, async () => {
      const q = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true });
      await checkQuantised(GQA, q, batch(), { dtype, stored });
    });
  }

  it('llmInt8SkipModules keeps the named modules unquantised', async () => {
    const m = await load(GQA, new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', llmInt8SkipModules: ['down_proj', 'model.layers.0.self_attn.q_proj'] }));
    expect(m.quantized.size).toBe(14 - 2 - 1);
    expect(m.dense.has('model.layers.1.mlp.down_proj.weight')).toBe(true);
    expect(m.dense.has('model.layers.0.self_attn.q_proj.weight')).toBe(true);
    expect(m.quantized.has('model.layers.1.self_attn.q_proj.weight')).toBe(true);
  });
});

describe('pre-quantized checkpoints', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-4bit-'));
  });
  afterAll(async () => {
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  for (const [quantType, dq] of [['nf4', true], ['fp4', false]] as const) {
    it(`${quantType}${dq ? ' + double quant' : ''}: a saved 4-bit model loads as it is (same entries, same logits), and saves back the same`, async () => {
      const q = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: quantType, bnb4bitUseDoubleQuant: dq });
      const m4 = await load(GQA, q);
      const dir = path.join(tmp, `${quantType}-${dq}`);
      await m4.savePretrained(dir);
      const cfgJson = JSON.parse(await fsp.readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      expect(cfgJson.quantization_config).toEqual(q.toJSON());
      const onDisk = await readSafetensors(path.join(dir, 'model.safetensors'));
      expect(onDisk.get(`model.layers.0.mlp.up_proj.weight.quant_state.bitsandbytes__${quantType}`)).toBeDefined();

      const again = await load(dir); // no quantizationConfig: the checkpoint's own
      expect(again.quantized.size).toBe(14);
      expect(again.quantizationConfig?.toJSON()).toEqual(q.toJSON());
      const a = m4.stateDict();
      const b = again.stateDict();
      expect([...b.keys()]).toEqual([...a.keys()]);
      for (const [k, t] of a) {
        expect(b.get(k)!.dtype, k).toBe(t.dtype);
        expect(b.get(k)!.data, k).toEqual(t.data);
      }
      const [la, lb] = await Promise.all([m4.forward(batch()), again.forward(batch())]);
      expect(maxAbs(la.logits.data, lb.logits.data)).toBe(0);
      // save → load → save keeps quantization_config (transformers could not load it without)
      const dir2 = path.join(tmp, `${quantType}-${dq}-again`);
      await again.savePretrained(dir2);
      expect(await fsp.readFile(path.join(dir2, 'config.json'), 'utf8')).toBe(await fsp.readFile(path.join(dir, 'config.json'), 'utf8'));
    });
  }
});

describe('a *-bnb-4bit checkpoint as the Hub has them (bf16 dense weights, quant_state dtype bfloat16)', () => {
  it('written with serializeQuantized4bit: loads as it is, logits = the same 4-bit weights with bf16-rounded dense ones', async () => {
    const q = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true, bnb4bitComputeDtype: 'bfloat16' });
    const m4 = await load(GQA, q);
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-bnb4-'));
    try {
      const out = new Map<string, Tensor>();
      const rounded = new Map<string, Tensor<'float32'>>();
      for (const [k, t] of m4.dense) {
        const bf = t.to('bfloat16');
        out.set(k, bf);
        rounded.set(k, bf.to('float32'));
      }
      for (const [w, ql] of m4.quantized) {
        for (const [k, t] of serializeQuantized4bit(w, { ...(ql as QuantizedLinear).q, dtype: 'bfloat16' })) out.set(k, t);
      }
      await saveSafetensors(path.join(dir, 'model.safetensors'), out, { format: 'pt' });
      const cfg = JSON.parse(await fsp.readFile(path.join(GQA, 'config.json'), 'utf8')) as Record<string, unknown>;
      await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, torch_dtype: 'bfloat16', quantization_config: q.toJSON() }));
      const again = await load(dir);
      expect(again.quantized.size).toBe(14);
      expect(again.quantizationConfig?.bnb4bitUseDoubleQuant).toBe(true);
      const state = new TextDecoder().decode(again.stateDict().get('model.layers.0.mlp.up_proj.weight.quant_state.bitsandbytes__nf4')!.data as Uint8Array);
      expect(JSON.parse(state)).toMatchObject({ dtype: 'bfloat16', quant_type: 'nf4' });
      for (const [w, ql] of m4.quantized) {
        const a = (ql as QuantizedLinear).q;
        const b = (again.quantized.get(w) as QuantizedLinear).q;
        expect([b.packed, b.absmax], w).toEqual([a.packed, a.absmax]);
      }
      const ref = new CausalLM(m4.config, rounded, m4.quantized, GQA);
      ref.sessionOptions = FAST;
      opened.push(ref);
      const [la, lb] = await Promise.all([again.forward(batch()), ref.forward(batch())]);
      expect(maxAbs(la.logits.data, lb.logits.data)).toBe(0);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('element counts that are not a multiple of the block size', () => {
  let dir: string;
  beforeAll(async () => {
    // hidden 35, intermediate 37: q/o [32, 35] = 1120 = 17·64 + 32, k/v [16, 35] = 560 = 8·64 + 48,
    // gate/up [37, 35] and down [35, 37] = 1295 = 20·64 + 15 (odd: the last byte has one code)
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-odd-'));
    const config = {
      architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 35, intermediate_size: 37, num_hidden_layers: 1,
      num_attention_heads: 2, num_key_value_heads: 1, head_dim: 16, vocab_size: 50, max_position_embeddings: 64,
      rms_norm_eps: 1e-5, rope_theta: 10000.0, tie_word_embeddings: false, torch_dtype: 'float32',
    };
    await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
    const rng = new Rng(77);
    const t = (dims: number[], std: number, mean = 0): Tensor =>
      new Tensor('float32', dims, Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => mean + std * rng.normal()));
    const p = 'model.layers.0';
    await saveSafetensors(path.join(dir, 'model.safetensors'), {
      'model.embed_tokens.weight': t([50, 35], 0.5),
      [`${p}.input_layernorm.weight`]: t([35], 0.1, 1),
      [`${p}.self_attn.q_proj.weight`]: t([32, 35], 0.15),
      [`${p}.self_attn.k_proj.weight`]: t([16, 35], 0.15),
      [`${p}.self_attn.v_proj.weight`]: t([16, 35], 0.1),
      [`${p}.self_attn.o_proj.weight`]: t([35, 32], 0.1),
      [`${p}.post_attention_layernorm.weight`]: t([35], 0.1, 1),
      [`${p}.mlp.gate_proj.weight`]: t([37, 35], 0.1),
      [`${p}.mlp.up_proj.weight`]: t([37, 35], 0.1),
      [`${p}.mlp.down_proj.weight`]: t([35, 37], 0.1),
      'model.norm.weight': t([35], 0.1, 1),
      'lm_head.weight': t([50, 35], 0.2),
    }, { format: 'pt' });
  });
  afterAll(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  for (const [quantType, dq] of [['nf4', false], ['nf4', true]] as const) {
    it(`${quantType}${dq ? ' + double quant' : ''}: tail blocks get their own absmax; MatMulBnb4 agrees with the dequantised weights`, async () => {
      const q = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: quantType, bnb4bitUseDoubleQuant: dq });
      await checkQuantised(dir, q, { inputIds: [[1, 7, 33, 12, 49, 3], [1, 2, 3, 4, 5, 6]] });
    });
  }
});

describe('prepareModelForKbitTraining (peft semantics)', () => {
  it('4-bit model: the same object, every base parameter frozen, gradient checkpointing and input grads on', async () => {
    const m = await load(GQA, new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true }));
    expect(m.numParameters({ onlyTrainable: true })).toBeGreaterThan(0); // embeddings, norms, lm_head
    const all = m.numParameters();
    const k = prepareModelForKbitTraining(m);
    expect(k).toBe(m);
    expect(k.numParameters({ onlyTrainable: true })).toBe(0);
    expect(k.trainableParams()).toEqual([]);
    expect(k.numParameters()).toBe(all);
    expect(k.gradientCheckpointing).toBe(true);
    expect(k.inputRequireGrads).toBe(true);
    // still computes the same
    expect(maxAbs((await k.forward(batch())).logits.data, (await m.forward(batch())).logits.data)).toBe(0);
  });

  it('useGradientCheckpointing: false leaves checkpointing off; an fp32 model is frozen but not checkpointed (peft does both only for k-bit models)', async () => {
    const m4 = prepareModelForKbitTraining(await load(GQA, new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4' })), { useGradientCheckpointing: false });
    expect([m4.numParameters({ onlyTrainable: true }), m4.gradientCheckpointing]).toEqual([0, false]);
    const fp = prepareModelForKbitTraining(await load(GQA));
    expect([fp.numParameters({ onlyTrainable: true }), fp.gradientCheckpointing, fp.inputRequireGrads]).toEqual([0, false, false]);
  });
});
