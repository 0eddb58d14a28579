// PEFT adapter folders on disk: `adapter_config.json` + `adapter_model.safetensors`, written and read in
// peft's exact layout (keys `base_model.model.<module>.lora_A.weight` with no adapter name, A [R, in],
// B [out, R], `lora_magnitude_vector` [out] for DoRA, metadata {"format": "pt"}), and the checks that an
// adapter fits the model it is loaded onto (every tensor named in the error).
// Follows peft `peft_model.py` (save_pretrained / from_pretrained), `utils/save_and_load.py`
// (get_peft_model_state_dict, set_peft_model_state_dict, load_peft_weights).
// Not here: which tensors a model has (peft-model.ts).

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { TsFinetuneError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fs-atomic.js';
import type { Tensor } from '../core/tensor.js';
import { readJsonObject, readSafetensors, resolveModelDir, saveSafetensors, type HubOptions } from '../io/index.js';
import { LoraConfig } from './lora-config.js';

export const ADAPTER_CONFIG_NAME = 'adapter_config.json';
export const ADAPTER_WEIGHTS_NAME = 'adapter_model.safetensors';

/** Write an adapter folder. Each file is replaced atomically; other files in `dir` are left alone (it may be a run's output folder). */
export async function writeAdapterFolder(dir: string, config: LoraConfig, tensors: ReadonlyMap<string, Tensor>): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  await saveSafetensors(path.join(dir, ADAPTER_WEIGHTS_NAME), tensors, { format: 'pt' });
  await writeFileAtomic(path.join(dir, ADAPTER_CONFIG_NAME), config.toJSONString());
}

export interface AdapterFolder {
  dir: string;
  config: LoraConfig;
  tensors: Map<string, Tensor>;
}

/** Read a local adapter folder or a Hub repo holding one. */
export async function readAdapterFolder(dirOrId: string, hub: HubOptions = {}): Promise<AdapterFolder> {
  const dir = await resolveModelDir(dirOrId, { ...hub, allowPatterns: [ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME], validateConfig: false });
  const cfgFile = path.join(dir, ADAPTER_CONFIG_NAME);
  const weightsFile = path.join(dir, ADAPTER_WEIGHTS_NAME);
  try {
    await fsp.access(cfgFile);
  } catch {
    throw new TsFinetuneError('FILE_NOT_FOUND', `${dir} has no ${ADAPTER_CONFIG_NAME}: not a PEFT adapter folder`, { file: cfgFile });
  }
  try {
    await fsp.access(weightsFile);
  } catch {
    const bin = path.join(dir, 'adapter_model.bin');
    const hasBin = await fsp.access(bin).then(
      () => true,
      () => false,
    );
    throw new TsFinetuneError(
      'FILE_NOT_FOUND',
      hasBin
        ? `${dir} holds adapter_model.bin (a pickle); only ${ADAPTER_WEIGHTS_NAME} can be read: re-save it with safe_serialization=True`
        : `${dir} has no ${ADAPTER_WEIGHTS_NAME}`,
      { file: weightsFile },
    );
  }
  const config = LoraConfig.fromJSON(await readJsonObject(cfgFile), cfgFile);
  const tensors = await readSafetensors(weightsFile);
  return { dir, config, tensors };
}

/** What the model expects from an adapter file: shapes by peft key, and the module each key belongs to. */
export interface AdapterExpectation {
  shapes: ReadonlyMap<string, readonly number[]>;
  /** Every module path of the base model (to tell "another architecture" from "not targeted"). */
  modules: ReadonlySet<string>;
  describe: string; // e.g. "llama (2 layers, hidden 64)"
}

const KEY_RE = /^base_model\.model\.(.+?)\.(lora_A\.weight|lora_B\.weight|lora_magnitude_vector|base_layer\.bias|bias|weight)$/;

/**
 * Check `tensors` against `expect` and return them as float32 by key. Every problem names the tensor:
 * a key for a module the model lacks (another architecture), for a module the config does not adapt,
 * a shape that does not fit, a missing tensor.
 */
export function checkAdapterTensors(file: string, tensors: ReadonlyMap<string, Tensor>, expect: AdapterExpectation, baseName?: string): Map<string, Tensor<'float32'>> {
  const out = new Map<string, Tensor<'float32'>>();
  const made = baseName ? ` (the adapter was made for '${baseName}')` : '';
  for (const [key, t] of tensors) {
    const want = expect.shapes.get(key);
    if (!want) {
      const m = KEY_RE.exec(key);
      if (!m) {
        throw new TsFinetuneError('PEFT_ERROR', `${file}: tensor '${key}' is not a LoRA adapter key (expected base_model.model.<module>.lora_A.weight …)`, { file, tensor: key });
      }
      const module = m[1]!;
      if (!expect.modules.has(module)) {
        throw new TsFinetuneError(
          'PEFT_ERROR',
          `${file}: tensor '${key}' adapts module '${module}', which this model — ${expect.describe} — does not have: the adapter was made for another architecture${made}`,
          { file, tensor: key, module },
        );
      }
      throw new TsFinetuneError('PEFT_ERROR', `${file}: tensor '${key}' is for module '${module}', which adapter_config.json does not select (target_modules / layers_to_transform / bias / modules_to_save)`, {
        file,
        tensor: key,
        module,
      });
    }
    if (t.dims.length !== want.length || t.dims.some((d, i) => d !== want[i])) {
      throw new TsFinetuneError('SHAPE_MISMATCH', `${file}: tensor '${key}' has shape [${t.dims.join(', ')}], the model needs [${want.join(', ')}]${made}`, {
        file,
        tensor: key,
        expected: [...want],
        found: [...t.dims],
      });
    }
    out.set(key, t.dtype === 'float32' ? (t as Tensor<'float32'>) : t.to('float32'));
  }
  const missing = [...expect.shapes.keys()].filter((k) => !tensors.has(k));
  if (missing.length) {
    throw new TsFinetuneError('MISSING_TENSOR', `${file}: missing ${missing.length} adapter tensor(s): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`, {
      file,
      missing,
    });
  }
  return out;
}
