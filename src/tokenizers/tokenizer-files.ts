// Reading a tokenizer folder as transformers lays it out: tokenizer.json (the fast-tokenizer pipeline),
// tokenizer_config.json (special tokens, padding side, model_max_length, often the chat template),
// special_tokens_map.json, chat_template.jinja / chat_template.json and additional_chat_templates/*.jinja.
// Not here: Hub resolution (src/io) or building the tokenizer (tokenizer.ts).
// Follows transformers `tokenization_utils_base.py` (`from_pretrained`, `_from_pretrained`, the chat-template files).

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { TsFinetuneError } from '../core/index.js';
import { readJsonObject } from '../io/json-file.js';
import { pathExists } from '../core/fs-atomic.js';

export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
export const SPECIAL_TOKENS_MAP_FILE = 'special_tokens_map.json';
export const CHAT_TEMPLATE_JINJA_FILE = 'chat_template.jinja';
export const CHAT_TEMPLATE_JSON_FILE = 'chat_template.json';
export const ADDITIONAL_CHAT_TEMPLATES_DIR = 'additional_chat_templates';

/** The special-token slots of a transformers tokenizer (`SPECIAL_TOKENS_ATTRIBUTES`). */
export const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;
export type SpecialTokenKey = (typeof SPECIAL_TOKEN_KEYS)[number];

/** Everything a tokenizer is built from. `tokenizerJsonPath` lets workers load the very same file. */
export interface TokenizerFiles {
  nameOrPath: string;
  tokenizerJson: Record<string, unknown>;
  tokenizerJsonPath?: string;
  config: Record<string, unknown>;
  specialTokensMap: Record<string, unknown>;
  /** The default template, if any. */
  chatTemplate?: string;
  /** Named templates (`tool_use`, `rag` …) besides the default one. */
  namedChatTemplates: Record<string, string>;
}


/** `chat_template` as stored in tokenizer_config.json: a string, or a list of `{ name, template }`. */
export function parseChatTemplateField(v: unknown, file: string): { def?: string; named: Record<string, string> } {
  const named: Record<string, string> = {};
  if (v === undefined || v === null) return { named };
  if (typeof v === 'string') return { def: v, named };
  if (Array.isArray(v)) {
    let def: string | undefined;
    for (const [i, e] of v.entries()) {
      const entry = e as { name?: unknown; template?: unknown };
      if (typeof entry?.name !== 'string' || typeof entry.template !== 'string') {
        throw new TsFinetuneError('INVALID_CONFIG', `${file}: chat_template[${i}] must be { name: string, template: string }`, { file, index: i });
      }
      if (entry.name === 'default') def = entry.template;
      else named[entry.name] = entry.template;
    }
    return def === undefined ? { named } : { def, named };
  }
  if (typeof v === 'object') {
    let def: string | undefined;
    for (const [name, t] of Object.entries(v as Record<string, unknown>)) {
      if (typeof t !== 'string') throw new TsFinetuneError('INVALID_CONFIG', `${file}: chat_template.${name} must be a string`, { file, key: name });
      if (name === 'default') def = t;
      else named[name] = t;
    }
    return def === undefined ? { named } : { def, named };
  }
  throw new TsFinetuneError('INVALID_CONFIG', `${file}: chat_template must be a string or a list of named templates`, { file });
}

/** Read a local tokenizer folder. Missing tokenizer.json is an error that says what the folder holds instead. */
export async function readTokenizerFolder(dir: string, nameOrPath = dir): Promise<TokenizerFiles> {
  let entries: string[];
  try {
    entries = await fsp.readdir(dir);
  } catch (e) {
    throw new TsFinetuneError('FILE_NOT_FOUND', `Tokenizer folder not found: ${dir}`, { dir }, { cause: e });
  }
  const tokenizerJsonPath = path.join(dir, TOKENIZER_FILE);
  if (!entries.includes(TOKENIZER_FILE)) {
    const slow = entries.filter((f) => /^(tokenizer\.model|vocab\.(json|txt)|merges\.txt|spiece\.model)$/.test(f));
    throw new TsFinetuneError(
      'FILE_NOT_FOUND',
      `No ${TOKENIZER_FILE} in ${dir}` +
        (slow.length > 0
          ? ` (found ${slow.join(', ')}: only fast tokenizers are supported; convert once in Python with ` +
            `AutoTokenizer.from_pretrained(dir).save_pretrained(dir), which writes ${TOKENIZER_FILE})`
          : ` (it holds: ${entries.slice(0, 12).join(', ') || 'nothing'})`),
      { dir, file: tokenizerJsonPath, found: entries },
    );
  }
  const tokenizerJson = await readJsonObject(tokenizerJsonPath);
  if (typeof tokenizerJson.model !== 'object' || tokenizerJson.model === null) {
    throw new TsFinetuneError('CORRUPT_FILE', `${tokenizerJsonPath} has no "model" section: not a tokenizers JSON file`, { file: tokenizerJsonPath });
  }
  const configPath = path.join(dir, TOKENIZER_CONFIG_FILE);
  const config = entries.includes(TOKENIZER_CONFIG_FILE) ? await readJsonObject(configPath) : {};
  const mapPath = path.join(dir, SPECIAL_TOKENS_MAP_FILE);
  const specialTokensMap = entries.includes(SPECIAL_TOKENS_MAP_FILE) ? await readJsonObject(mapPath) : {};

  // Precedence as in transformers ≥ 4.43: chat_template.jinja, then chat_template.json, then the config field.
  const fromConfig = parseChatTemplateField(config.chat_template, configPath);
  let chatTemplate = fromConfig.def;
  const namedChatTemplates = { ...fromConfig.named };
  if (entries.includes(CHAT_TEMPLATE_JSON_FILE)) {
    const file = path.join(dir, CHAT_TEMPLATE_JSON_FILE);
    const parsed = parseChatTemplateField((await readJsonObject(file)).chat_template, file);
    if (parsed.def !== undefined) chatTemplate = parsed.def;
    Object.assign(namedChatTemplates, parsed.named);
  }
  if (entries.includes(CHAT_TEMPLATE_JINJA_FILE)) {
    chatTemplate = await fsp.readFile(path.join(dir, CHAT_TEMPLATE_JINJA_FILE), 'utf8');
  }
  const extraDir = path.join(dir, ADDITIONAL_CHAT_TEMPLATES_DIR);
  if (entries.includes(ADDITIONAL_CHAT_TEMPLATES_DIR) && (await pathExists(extraDir))) {
    for (const f of (await fsp.readdir(extraDir)).sort()) {
      if (f.endsWith('.jinja')) namedChatTemplates[f.slice(0, -'.jinja'.length)] = await fsp.readFile(path.join(extraDir, f), 'utf8');
    }
  }
  const files: TokenizerFiles = { nameOrPath, tokenizerJson, tokenizerJsonPath, config, specialTokensMap, namedChatTemplates };
  if (chatTemplate !== undefined) files.chatTemplate = chatTemplate;
  return files;
}

/** A special-token entry of a config: `"<s>"`, `{ content: "<s>", … }` or null. */
export function tokenContent(v: unknown): string | null | undefined {
  if (v === undefined) return undefined;
  if (v === null) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}
