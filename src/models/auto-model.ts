// AutoModelForCausalLM.fromPretrained: resolve a local folder or Hub id (through the HF cache), read
// config.json, stream the weights in shard by shard, quantise decoder linears to 4-bit when asked
// (bitsandbytes semantics: embeddings, norms and lm_head stay full precision), and return a CausalLM.
// On the CPU everything computes in fp32 (bf16/fp16 have no CPU kernels; DESIGN.md): one notice says so.

import { TsFinetuneError } from '../core/errors.js';
import { resolveModelDir } from '../io/index.js';
import { BitsAndBytesConfig } from '../quant/index.js';
import type { DeviceRequest } from '../runtime/index.js';
import { CausalLM } from './causal-lm.js';
import { readConfig } from './config.js';
import { QuantizedLinear, isQuantizableLinear } from './quantized-linear.js';
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

const KNOWN = ['dtype', 'torchDtype', 'quantizationConfig', 'device', 'revision', 'cacheDir', 'token', 'onProgress'];
let cpuNoticeShown = false;

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
    const dir = await resolveModelDir(idOrDir, resolveOpts);
    const cfg = await readConfig(dir);
    const device = opts.device ?? 'cpu';
    const dtype = opts.dtype ?? opts.torchDtype ?? 'auto';
    const q = opts.quantizationConfig;
    if (q && !(q instanceof BitsAndBytesConfig)) {
      throw new TsFinetuneError('INVALID_CONFIG', 'quantizationConfig must be a BitsAndBytesConfig');
    }
    const loadOpts: Parameters<typeof loadWeights<QuantizedLinear>>[2] = {
      prequantized: (name, parts) => QuantizedLinear.fromSerialized(name, parts),
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
    const w = await loadWeights(dir, cfg, loadOpts);
    const wantsHalf = dtype === 'bfloat16' || dtype === 'float16' || (dtype === 'auto' && w.sourceDtype !== 'float32');
    if (wantsHalf && device === 'cpu' && !cpuNoticeShown) {
      cpuNoticeShown = true;
      process.stderr.write(`ts-finetune: computing in float32 on the CPU (${dtype === 'auto' ? w.sourceDtype : dtype} has no CPU kernels)\n`);
    }
    const model = new CausalLM(cfg, w.dense, w.quantized, idOrDir, device);
    if (q) model.quantizationConfig = q;
    return model;
  }
}
