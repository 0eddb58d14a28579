// src/tokenizers: AutoTokenizer, chat templates, assistant / completion masks. Depends on src/core and src/io.
export { AutoTokenizer, TOKENIZER_PATTERNS, type AutoTokenizerOptions } from './auto-tokenizer.js';
export { PreTrainedTokenizer } from './tokenizer.js';
export { readTokenizerFolder, type TokenizerFiles } from './tokenizer-files.js';
export { compileTemplate } from './chat-template.js';
export type { CharSpan } from './assistant-mask.js';
export * from './types.js';
