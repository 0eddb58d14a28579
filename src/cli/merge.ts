// `ts-finetune merge --model DIR --adapter DIR --out DIR`: fold a LoRA adapter into its base model
// (PEFT's merge_and_unload) and save a plain Hugging Face folder, with the tokenizer files copied over.

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { TsFinetuneError } from '../core/errors.js';
import { AutoModelForCausalLM } from '../models/index.js';
import { PeftModel } from '../peft/index.js';
import { parseArgs } from './args.js';

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'chat_template.json', 'generation_config.json'];

export async function mergeCommand(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv);
  const need = (k: string): string => {
    const v = flags[k];
    if (typeof v !== 'string') throw new TsFinetuneError('INVALID_ARGUMENT', `ts-finetune merge needs --${k} (usage: merge --model DIR --adapter DIR --out DIR)`);
    return v;
  };
  const modelDir = need('model');
  const adapterDir = need('adapter');
  const out = need('out');
  const base = await AutoModelForCausalLM.fromPretrained(modelDir);
  const peft = await PeftModel.fromPretrained(base, adapterDir);
  const merged = await peft.mergeAndUnload();
  await merged.savePretrained(out);
  for (const f of TOKENIZER_FILES) {
    for (const src of [adapterDir, modelDir]) {
      try {
        await fsp.copyFile(path.join(src, f), path.join(out, f));
        break;
      } catch {
        // not in this folder
      }
    }
  }
  process.stdout.write(`Merged ${adapterDir} into ${modelDir} → ${path.resolve(out)}\n`);
  return 0;
}
