// `tokenizer.savePretrained(dir)`: the files transformers writes, so Python's AutoTokenizer and our
// fromPretrained both load the result: tokenizer.json (unchanged), tokenizer_config.json (with the current
// special tokens, padding/truncation sides, model_max_length and chat template), special_tokens_map.json,
// chat_template.jinja and additional_chat_templates/<name>.jinja. Each file is written atomically; the folder
// is not replaced as a whole, because it often also holds an adapter or model files.
// Not here: the model's own config. Follows transformers `tokenization_utils_base.py` `save_pretrained`.

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { TsFinetuneError, writeFileAtomic } from '../core/index.js';
import type { PreTrainedTokenizer } from './tokenizer.js';
import {
  ADDITIONAL_CHAT_TEMPLATES_DIR,
  SPECIAL_TOKEN_KEYS,
  CHAT_TEMPLATE_JINJA_FILE,
  SPECIAL_TOKENS_MAP_FILE,
  TOKENIZER_CONFIG_FILE,
  TOKENIZER_FILE,
  type TokenizerFiles,
} from './tokenizer-files.js';

interface AddedTokenJson {
  content: string;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  single_word?: boolean;
  special?: boolean;
}

/** HF writes special tokens that are added tokens as full AddedToken dicts (keeps lstrip/rstrip flags). */
function tokenEntry(token: string, added: Map<string, AddedTokenJson>): string | Record<string, unknown> {
  const a = added.get(token);
  if (!a) return token;
  return { content: a.content, lstrip: a.lstrip ?? false, normalized: a.normalized ?? false, rstrip: a.rstrip ?? false, single_word: a.single_word ?? false };
}

export async function saveTokenizer(tok: PreTrainedTokenizer, files: TokenizerFiles, dir: string): Promise<string[]> {
  if (typeof dir !== 'string' || dir === '') throw new TsFinetuneError('INVALID_ARGUMENT', 'savePretrained needs a directory path');
  await fsp.mkdir(dir, { recursive: true });
  const written: string[] = [];
  const write = async (name: string, data: string | Uint8Array): Promise<void> => {
    const file = path.join(dir, name);
    await writeFileAtomic(file, data);
    written.push(file);
  };

  // tokenizer.json: byte-for-byte the file we loaded, when there was one.
  let tokenizerJson: string | Uint8Array | undefined;
  if (files.tokenizerJsonPath !== undefined) tokenizerJson = await fsp.readFile(files.tokenizerJsonPath).catch(() => undefined);
  await write(TOKENIZER_FILE, tokenizerJson ?? JSON.stringify(files.tokenizerJson, null, 2));

  const addedList = Array.isArray(files.tokenizerJson.added_tokens) ? (files.tokenizerJson.added_tokens as AddedTokenJson[]) : [];
  const added = new Map(addedList.map((a) => [a.content, a]));
  const map = tok.specialTokensMap;

  const config: Record<string, unknown> = { ...files.config };
  for (const k of SPECIAL_TOKEN_KEYS) {
    const v = map[k];
    if (typeof v === 'string') config[k] = v;
    else if (k in config) config[k] = null;
  }
  config.padding_side = tok.paddingSide;
  config.truncation_side = tok.truncationSide;
  config.model_max_length = tok.modelMaxLength;
  config.tokenizer_class ??= 'PreTrainedTokenizerFast';
  // The template goes to chat_template.jinja (transformers ≥ 4.43 reads it first) and stays in the config too,
  // for loaders that only read tokenizer_config.json (older transformers, transformers.js).
  const named = Object.entries(tok.namedChatTemplates);
  if (tok.chatTemplate !== undefined && named.length === 0) config.chat_template = tok.chatTemplate;
  else if (named.length > 0) {
    config.chat_template = [
      ...(tok.chatTemplate !== undefined ? [{ name: 'default', template: tok.chatTemplate }] : []),
      ...named.map(([name, template]) => ({ name, template })),
    ];
  } else delete config.chat_template;
  await write(TOKENIZER_CONFIG_FILE, JSON.stringify(config, null, 2) + '\n');

  const stm: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(map)) stm[k] = Array.isArray(v) ? v.map((t) => tokenEntry(t, added)) : tokenEntry(v, added);
  await write(SPECIAL_TOKENS_MAP_FILE, JSON.stringify(stm, null, 2) + '\n');

  const jinja = path.join(dir, CHAT_TEMPLATE_JINJA_FILE);
  if (tok.chatTemplate !== undefined) await write(CHAT_TEMPLATE_JINJA_FILE, tok.chatTemplate);
  else await fsp.rm(jinja, { force: true }); // a stale one would be loaded back as this tokenizer's template
  for (const [name, template] of named) {
    if (!/^[\w.-]+$/.test(name)) throw new TsFinetuneError('INVALID_ARGUMENT', `Chat template name ${JSON.stringify(name)} is not a valid file name`);
    await write(path.join(ADDITIONAL_CHAT_TEMPLATES_DIR, `${name}.jinja`), template);
  }
  return written;
}
