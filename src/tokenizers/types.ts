// The public shapes of the tokenizer module: chat messages, call options and what calls return.
// Not here: behaviour (tokenizer.ts, chat-template.ts, padding.ts).
// Follows transformers `tokenization_utils_base.py` (`__call__`, `apply_chat_template`) with camelCase names;
// message objects keep the snake_case keys chat templates read (`tool_calls`, `reasoning_content`).

/** Roles a message may have. Templates branch on these; anything else is rejected before rendering. */
export const KNOWN_ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'ipython', 'function'] as const;
export type ChatRole = (typeof KNOWN_ROLES)[number];

/** One part of a multimodal message (`{ type: 'text', text }`, `{ type: 'image' }` …), as HF processors take it. */
export interface ContentPart {
  type: string;
  text?: string;
  [key: string]: unknown;
}

export interface ToolCall {
  id?: string;
  type?: 'function';
  function: { name: string; arguments: string | Record<string, unknown> };
}

/**
 * A chat message exactly as the template sees it. Extra keys (`reasoning_content`, `name`, `tool_call_id` …)
 * are passed through unchanged, because templates read them by their snake_case names.
 */
export interface ChatMessage {
  // Any string type-checks (messages built with .map() have role: string); unknown roles are rejected at run time.
  role: ChatRole | (string & Record<never, never>);
  content?: string | ContentPart[] | null;
  tool_calls?: ToolCall[];
  reasoning_content?: string;
  [key: string]: unknown;
}

/** A JSON-schema tool description as the templates expect it (`{ type: 'function', function: { name, … } }`). */
export type ToolSpec = Record<string, unknown>;

export type PaddingStrategy = boolean | 'longest' | 'max_length' | 'do_not_pad';
export type TruncationStrategy = boolean | 'longest_first' | 'only_first' | 'do_not_truncate';
export type Side = 'left' | 'right';

/** Options of `tokenizer(textOrTexts, options)` (HF `__call__`). */
export interface TokenizerCallOptions {
  /** `true` / 'longest': pad to the longest row; 'max_length': pad to `maxLength`. Default: no padding. */
  padding?: PaddingStrategy;
  /**
   * Cut rows to `maxLength` from `truncationSide`. Left unset with `maxLength` given and no padding, rows are
   * truncated (with a warning), as HF does.
   */
  truncation?: TruncationStrategy;
  /** Target length for truncation / 'max_length' padding; default `modelMaxLength`. */
  maxLength?: number;
  /** Round the padded length up to a multiple of this (tensor-core friendly shapes). */
  padToMultipleOf?: number;
  /** Add the tokenizer's BOS/EOS as its post-processor says. Default true. */
  addSpecialTokens?: boolean;
  /** Default true. */
  returnAttentionMask?: boolean;
}

/** `tokenizer(text)` on one string. */
export interface Encoding {
  inputIds: number[];
  attentionMask: number[];
}

/** `tokenizer(texts)` on a list: one row per text. */
export interface BatchEncoding {
  inputIds: number[][];
  attentionMask: number[][];
}

export interface EncodeOptions {
  addSpecialTokens?: boolean;
  truncation?: TruncationStrategy;
  maxLength?: number;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /** Default: the tokenizer config's `clean_up_tokenization_spaces`. */
  cleanUpTokenizationSpaces?: boolean;
}

/** Options of `applyChatTemplate`. Unknown keys (e.g. `enable_thinking`) are passed to the template as variables. */
export interface ApplyChatTemplateOptions {
  /** Default true (HF): return token ids; false returns the rendered string. */
  tokenize?: boolean;
  /** Append the header that opens an assistant turn. */
  addGenerationPrompt?: boolean;
  /** Leave the final (assistant) message open, so generation continues it. */
  continueFinalMessage?: boolean;
  /** Return `{ inputIds, attentionMask }` instead of bare ids. */
  returnDict?: boolean;
  /** Also return `assistantMasks` (1 on tokens of assistant turns incl. their end-of-turn token). Implies returnDict. */
  returnAssistantTokensMask?: boolean;
  /** Tool schemas for templates that support tool use. */
  tools?: ToolSpec[] | null;
  /** RAG documents for templates that support them. */
  documents?: Record<string, unknown>[] | null;
  /** A template source, or the name of one of the tokenizer's named templates. */
  chatTemplate?: string;
  /** Extra template variables (same as passing them as unknown keys). */
  templateKwargs?: Record<string, unknown>;
  padding?: PaddingStrategy;
  truncation?: TruncationStrategy;
  maxLength?: number;
  padToMultipleOf?: number;
  [templateVariable: string]: unknown;
}

export interface ChatEncoding {
  inputIds: number[];
  attentionMask: number[];
  assistantMasks?: number[];
}

export interface BatchChatEncoding {
  inputIds: number[][];
  attentionMask: number[][];
  assistantMasks?: number[][];
}

/** A prompt/completion row tokenized for completion-only loss (TRL `sft_trainer.py` tokenize step). */
export interface PromptCompletionEncoding {
  inputIds: number[];
  attentionMask: number[];
  /** 0 on prompt tokens, 1 on completion tokens. */
  completionMask: number[];
}

export interface PromptCompletionOptions {
  /** Append EOS to a plain-text completion that does not end with it (TRL does). Default true. */
  addEos?: boolean;
  /** Template options for conversational rows (tools, chatTemplate, template variables). */
  chatTemplateOptions?: Pick<ApplyChatTemplateOptions, 'tools' | 'documents' | 'chatTemplate' | 'templateKwargs'> & Record<string, unknown>;
}
