// `AutoTokenizer.fromPretrained(idOrDir)`: a local folder, or a Hub repo id fetched into the HF cache (only the
// tokenizer files), read as transformers reads it, with HF's override keywords (padding side, pad token …).
// Not here: the files' format (tokenizer-files.ts) or the Hub protocol (src/io/hub.ts).
// Follows transformers `AutoTokenizer.from_pretrained` (fast tokenizers only: tokenizer.json is required).

import { TsFinetuneError } from '../core/index.js';
import { resolveModelDir } from '../io/index.js';
import { readTokenizerFolder } from './tokenizer-files.js';
import { PreTrainedTokenizer } from './tokenizer.js';
import type { Side } from './types.js';

/** The files a tokenizer may need from a Hub repo. */
export const TOKENIZER_PATTERNS: readonly string[] = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'chat_template.json',
  'additional_chat_templates/*.jinja',
];

export interface AutoTokenizerOptions {
  /** Branch, tag or commit of a Hub repo (default `main`). */
  revision?: string;
  /** HF cache folder (default from HF_HUB_CACHE / HF_HOME). */
  cacheDir?: string;
  /** Hub access token (default HF_TOKEN or the saved login). */
  token?: string;
  /** Overrides, as keyword arguments of Python's from_pretrained. */
  padToken?: string | null;
  paddingSide?: Side;
  truncationSide?: Side;
  modelMaxLength?: number;
  /** Replace the default chat template. */
  chatTemplate?: string;
  /** Worker threads for large batches (default: cores − 1; 0 disables). */
  numWorkers?: number;
}

export const AutoTokenizer = {
  /**
   * Load a fast tokenizer from a local folder or a Hub repo id.
   *
   * @example
   * const tokenizer = await AutoTokenizer.fromPretrained('Qwen/Qwen3-0.6B');
   * const local = await AutoTokenizer.fromPretrained('./out/llama2_checkpoint');
   */
  async fromPretrained(idOrDir: string, options: AutoTokenizerOptions = {}): Promise<PreTrainedTokenizer> {
    if (typeof idOrDir !== 'string' || idOrDir === '') {
      throw new TsFinetuneError('INVALID_ARGUMENT', 'AutoTokenizer.fromPretrained needs a Hub repo id or a folder path');
    }
    const hubOpts: Parameters<typeof resolveModelDir>[1] = { allowPatterns: [...TOKENIZER_PATTERNS], validateConfig: false };
    if (options.revision !== undefined) hubOpts.revision = options.revision;
    if (options.cacheDir !== undefined) hubOpts.cacheDir = options.cacheDir;
    if (options.token !== undefined) hubOpts.token = options.token;
    const dir = await resolveModelDir(idOrDir, hubOpts);
    const files = await readTokenizerFolder(dir, idOrDir);
    if (options.chatTemplate !== undefined) files.chatTemplate = options.chatTemplate;
    const tok = new PreTrainedTokenizer(files);
    if (options.padToken !== undefined) tok.padToken = options.padToken;
    if (options.paddingSide !== undefined) tok.paddingSide = options.paddingSide;
    if (options.truncationSide !== undefined) tok.truncationSide = options.truncationSide;
    if (options.modelMaxLength !== undefined) tok.modelMaxLength = options.modelMaxLength;
    if (options.numWorkers !== undefined) tok.numWorkers = options.numWorkers;
    return tok;
  },
};
