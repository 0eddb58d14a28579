// Loading a checkpoint's tensors into host memory, one tensor at a time (shard by shard, in file order),
// checked against the names and shapes the config implies. Floats are converted to float32 on the CPU
// (bf16/fp16 have no CPU kernels and cannot cross the JS boundary; see DESIGN.md), unless `halfDType` asks
// to store them in 16 bits (a 4-bit model's non-quantised weights, as transformers does; graphs cast them
// back to float32, float-weights.ts). Linear weights can be handed to a quantiser as they stream in, so a
// 4-bit load never holds the whole fp32 model.
// Peak memory ≈ the loaded model + the largest tensor as stored (bench/load-memory.ts measures it): reading
// a whole shard first (CheckpointReader.iterShards) kept a bf16 shard alive next to its fp32 copies.

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { CheckpointReader } from '../io/index.js';
import { expectedParameters, type CausalLMConfig } from './config.js';
import { FloatWeights, type HalfDType } from './float-weights.js';

export interface LoadOptions<Q> {
  /** Called for each tensor as it streams in; return a quantised form to keep instead of the float one. */
  quantize?: (name: string, t: Tensor) => Q | undefined;
  /** Keys present in a pre-quantized checkpoint (`*.weight.absmax` …) are routed here, whole. */
  prequantized?: (moduleWeight: string, parts: Map<string, Tensor>) => Q;
  onTensor?: (name: string, loaded: number, total: number) => void;
  /** Store the float tensors that are not quantised in this 16-bit dtype (default: float32). */
  halfDType?: HalfDType;
}

export interface LoadedWeights<Q> {
  dense: FloatWeights;
  quantized: Map<string, Q>; // keyed by the weight name, e.g. 'model.layers.0.self_attn.q_proj.weight'
  sourceDtype: string;
}

const QUANT_SUFFIXES = ['.absmax', '.quant_map', '.nested_absmax', '.nested_quant_map', '.quant_state.bitsandbytes__nf4', '.quant_state.bitsandbytes__fp4'];

export async function loadWeights<Q>(dir: string, cfg: CausalLMConfig, opts: LoadOptions<Q> = {}): Promise<LoadedWeights<Q>> {
  const expected = expectedParameters(cfg);
  const reader = await CheckpointReader.open(dir);
  const dense = new FloatWeights();
  const quantized = new Map<string, Q>();
  const pending = new Map<string, Map<string, Tensor>>(); // pre-quantized parts by weight name
  let sourceDtype = 'float32';
  let loaded = 0;
  try {
    for await (const [name, t] of reader.iterTensors()) {
      const suffix = QUANT_SUFFIXES.find((s) => name.endsWith(s));
      if (suffix) {
        const base = name.slice(0, -suffix.length);
        const parts = pending.get(base) ?? new Map<string, Tensor>();
        parts.set(suffix, t);
        pending.set(base, parts);
        continue;
      }
      if (t.dtype === 'uint8' && expected.has(name)) {
        const parts = pending.get(name) ?? new Map<string, Tensor>();
        parts.set('', t);
        pending.set(name, parts);
        continue;
      }
      const shape = expected.get(name);
      if (!shape) continue; // e.g. rotary inv_freq buffers in old checkpoints
      if (t.dims.length !== shape.length || t.dims.some((d, i) => d !== shape[i])) {
        throw new TsFinetuneError(
          'SHAPE_MISMATCH',
          `${dir}: tensor '${name}' has shape [${t.dims.join(', ')}], expected [${shape.join(', ')}]`,
          { tensor: name, expected: shape, found: t.dims },
        );
      }
      if (t.dtype !== 'float32') sourceDtype = t.dtype;
      const q = opts.quantize?.(name, t);
      if (q !== undefined) quantized.set(name, q);
      else if (opts.halfDType === 'float16') dense.setStored(name, t.to('float16')); // the same tensor when already so
      else if (opts.halfDType === 'bfloat16') dense.setStored(name, t.to('bfloat16'));
      // One conversion, straight into the array we keep (Tensor.to would convert, then copy again).
      else dense.set(name, t.dtype === 'float32' ? (t as Tensor<'float32'>) : new Tensor('float32', t.dims, t.toFloat32()));
      opts.onTensor?.(name, ++loaded, expected.size);
    }
  } finally {
    await reader.close();
  }
  for (const [name, parts] of pending) {
    if (!opts.prequantized) {
      throw new TsFinetuneError('UNSUPPORTED_DTYPE', `${dir}: '${name}' is stored 4-bit (bitsandbytes) but no dequantiser was given`);
    }
    quantized.set(name, opts.prequantized(name, parts));
  }
  for (const name of expected.keys()) {
    if (!dense.has(name) && !quantized.has(name)) {
      throw new TsFinetuneError('MISSING_TENSOR', `${dir}: checkpoint has no tensor '${name}'`, { tensor: name, dir });
    }
  }
  return { dense, quantized, sourceDtype };
}
