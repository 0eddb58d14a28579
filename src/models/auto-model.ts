// AutoModelForCausalLM.fromPretrained: resolve a local folder or Hub id (through the HF cache), read
// config.json, stream the weights in shard by shard, quantise decoder linears to 4-bit when asked
// (bitsandbytes semantics: embeddings, norms and lm_head are not quantised), and return a CausalLM.
// A 4-bit model stores those other weights in 16 bits, as transformers does: with no dtype given,
// Bnb4BitHfQuantizer.update_torch_dtype overrides torch_dtype=None with float16 ("due to requirements of
// bitsandbytes"); 'bfloat16' / 'float16' store them so, 'float32' keeps float32, 'auto' the checkpoint's
// torch_dtype. They are cast to float32 inside the graphs (float-weights.ts, build-context.ts).
// On the CPU everything computes in fp32 (bf16/fp16 have no CPU kernels; DESIGN.md): one notice says so.
// A device whose execution provider certainly cannot start here ('cuda' without ORT's CUDA provider, …)
// fails before any weight is read, with the runtime's EP_UNAVAILABLE text; one that passes this file check
// but still cannot start fails the same way at the first forward / generate (when the first session starts).

import { TsFinetuneError } from '../core/errors.js';
import { resolveModelDir } from '../io/index.js';
import { BitsAndBytesConfig } from '../quant/index.js';
import type { DeviceRequest } from '../runtime/index.js';
// devices.ts only looks at files (never loads onnxruntime-node): a cheap check before reading gigabytes.
import { epPrecheck, epUnavailable } from '../runtime/devices.js';
import { CausalLM } from './causal-lm.js';
import { expectedParameters, readConfig } from './config.js';
import { QuantizedLinear, isQuantizableLinear } from './quantized-linear.js';
import type { HalfDType } from './float-weights.js';
import { loadWeights } from './weights.js';

export type ModelDType = 'float32' | 'bfloat16' | 'float16' | 'auto';

export interface FromPretrainedOptions {
  dtype?: ModelDType;
  /** Also accepted under transformers' older name. */
  torchDtype?: ModelDType;
  quantizationConfig?: BitsAndBytesConfig;
  device?: DeviceRequest;
  revision?: string;
  cacheDir?: string;
  token?: string;
  /** Called per tensor while loading (for progress bars). */
  onProgress?: (loaded: number, total: number) => void;
}

const DTYPES: readonly ModelDType[] = ['float32', 'bfloat16', 'float16', 'auto'];
const DEVICES: readonly DeviceRequest[] = ['cpu', 'cuda', 'webgpu', 'auto'];
const KNOWN = ['dtype', 'torchDtype', 'quantizationConfig', 'device', 'revision', 'cacheDir', 'token', 'onProgress'];
let cpuNoticeShown = false;

/** Storage of a 4-bit model's non-quantised weights (transformers' Bnb4BitHfQuantizer.update_torch_dtype). */
function halfStorage(requested: ModelDType | undefined, configDtype: unknown): HalfDType | undefined {
  const d = requested === undefined ? 'float16' : requested === 'auto' ? configDtype : requested;
  return d === 'float16' || d === 'bfloat16' ? d : undefined;
}

export class AutoModelForCausalLM {
  /**
   * @example
   * const model = await AutoModelForCausalLM.fromPretrained('test/fixtures/models/llama-gqa', { device: 'cpu' });
   * const { logits } = await model.forward({ inputIds: [[1, 2, 3]] });
   */
  static async fromPretrained(idOrDir: string, opts: FromPretrainedOptions = {}): Promise<CausalLM> {
    for (const k of Object.keys(opts)) {
      if (!KNOWN.includes(k)) throw new TsFinetuneError('UNKNOWN_CONFIG_KEY', `fromPretrained: unknown option '${k}' (known: ${KNOWN.join(', ')})`);
    }
    const resolveOpts: Parameters<typeof resolveModelDir>[1] = {};
    if (opts.revision !== undefined) resolveOpts.revision = opts.revision;
    if (opts.cacheDir !== undefined) resolveOpts.cacheDir = opts.cacheDir;
    if (opts.token !== undefined) resolveOpts.token = opts.token;
    const device = opts.device ?? 'cpu';
    const dtype = opts.dtype ?? opts.torchDtype ?? 'auto';
    if (!DEVICES.includes(device)) throw new TsFinetuneError('INVALID_ARGUMENT', `fromPretrained: device '${String(device)}' is not one of ${DEVICES.join(', ')}`);
    if (!DTYPES.includes(dtype)) throw new TsFinetuneError('INVALID_ARGUMENT', `fromPretrained: dtype '${String(dtype)}' is not one of ${DTYPES.join(', ')}`);
    if (device === 'cuda' || device === 'webgpu') {
      const why = epPrecheck(device);
      if (why !== undefined) throw epUnavailable(device, undefined, why);
    }
    if (opts.quantizationConfig && !(opts.quantizationConfig instanceof BitsAndBytesConfig)) {
      throw new TsFinetuneError('INVALID_CONFIG', 'quantizationConfig must be a BitsAndBytesConfig');
    }
    const dir = await resolveModelDir(idOrDir, resolveOpts);
    const cfg = await readConfig(dir);
    // A pre-quantized checkpoint (`*-bnb-4bit`) records its BitsAndBytesConfig in config.json; as in
    // transformers, that one describes the weights (and is saved back by savePretrained).
    const stored = cfg.raw.quantization_config;
    const q = opts.quantizationConfig ?? (stored === undefined || stored === null ? undefined : BitsAndBytesConfig.fromJSON(stored));
    const expected = expectedParameters(cfg);
    const loadOpts: Parameters<typeof loadWeights<QuantizedLinear>>[2] = {
      prequantized: (name, parts) => {
        const ql = QuantizedLinear.fromSerialized(name, parts);
        const want = expected.get(name);
        if (want && (want[0] !== ql.outFeatures || want[1] !== ql.inFeatures)) {
          throw new TsFinetuneError(
            'SHAPE_MISMATCH',
            `${dir}: 4-bit tensor '${name}' has shape [${ql.outFeatures}, ${ql.inFeatures}] (its quant_state), expected [${want.join(', ')}]`,
            { tensor: name, expected: want, found: [ql.outFeatures, ql.inFeatures] },
          );
        }
        return ql;
      },
    };
    if (q?.loadIn4bit) {
      const skip = q.llmInt8SkipModules ?? [];
      loadOpts.quantize = (name, t) =>
        isQuantizableLinear(name, skip) ? QuantizedLinear.quantize(name, t, { quantType: q.bnb4bitQuantType, doubleQuant: q.bnb4bitUseDoubleQuant }) : undefined;
    }
    if (opts.onProgress) {
      const cb = opts.onProgress;
      loadOpts.onTensor = (_n, loaded, total) => cb(loaded, total);
    }
    if (q?.loadIn4bit) {
      const half = halfStorage(opts.dtype ?? opts.torchDtype, cfg.raw.torch_dtype);
      if (half !== undefined) loadOpts.halfDType = half;
    }
    const w = await loadWeights(dir, cfg, loadOpts);
    const wantsHalf = dtype === 'bfloat16' || dtype === 'float16' || (dtype === 'auto' && w.sourceDtype !== 'float32');
    // 'auto' ends on the CPU when neither GPU provider can start (the same file check 'auto' itself uses).
    const onCpu = device === 'cpu' || (device === 'auto' && epPrecheck('cuda') !== undefined && epPrecheck('webgpu') !== undefined);
    if (wantsHalf && onCpu && !cpuNoticeShown) {
      cpuNoticeShown = true;
      process.stderr.write(`ts-finetune: computing in float32 on the CPU (${dtype === 'auto' ? w.sourceDtype : dtype} has no CPU kernels)\n`);
    }
    const model = new CausalLM(cfg, w.dense, w.quantized, idOrDir, device);
    if (q) model.quantizationConfig = q;
    return model;
  }
}
