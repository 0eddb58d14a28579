// `tokenizer.applyChatTemplate(...)`: render → (optionally) tokenize → (optionally) pad, with HF semantics:
// rendered text is tokenized with addSpecialTokens=false (the template already wrote BOS, so no double BOS);
// unknown option keys become template variables (`enable_thinking: false` reaches the template);
// `tools` / `documents` / `continueFinalMessage` / `returnDict` / `returnAssistantTokensMask` as in transformers.
// Not here: span finding (assistant-mask.ts) and template mechanics (chat-template.ts).
// Follows transformers `tokenization_utils_base.py` `apply_chat_template`.

import { TsFinetuneError } from '../core/index.js';
import { endOfTurnTest, findAssistantSpans, splitAtSpans, type SpanContext } from './assistant-mask.js';
import { compileTemplate, cutAfterFinalMessage, render, selectTemplate, validateConversation, type CompiledTemplate, type RenderInputs } from './chat-template.js';
import type { PreTrainedTokenizer } from './tokenizer.js';
import type { ApplyChatTemplateOptions, BatchChatEncoding, ChatEncoding, ChatMessage } from './types.js';

const OWN_KEYS = new Set([
  'tokenize', 'addGenerationPrompt', 'continueFinalMessage', 'returnDict', 'returnAssistantTokensMask', 'tools',
  'documents', 'chatTemplate', 'templateKwargs', 'padding', 'truncation', 'maxLength', 'padToMultipleOf',
]);

const warnedKeys = new Set<string>();

// Generation headers depend on the template and its variables, not on the rows: remember them across calls,
// so per-row calls (Dataset.map without batching) do not render two extra prefixes each. A cached header is
// only used where it is actually found in the render, so a stale one costs a re-render, never a wrong mask.
const headerCaches = new WeakMap<CompiledTemplate, Map<string, { value?: string[] }>>();

function headerCacheFor(compiled: CompiledTemplate, base: Omit<RenderInputs, 'messages' | 'addGenerationPrompt'>): { value?: string[] } {
  let byVars = headerCaches.get(compiled);
  if (!byVars) headerCaches.set(compiled, (byVars = new Map()));
  let key: string;
  try {
    key = JSON.stringify([base.kwargs, base.specialTokens, base.tools !== null, base.documents !== null]);
  } catch {
    return {}; // unserializable variables: no sharing
  }
  let c = byVars.get(key);
  if (!c) {
    if (byVars.size > 256) byVars.clear();
    byVars.set(key, (c = {}));
  }
  return c;
}

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Split options into ours and the template's; warn once when a camelCase key looks meant for a snake_case variable. */
export function templateKwargsOf(options: ApplyChatTemplateOptions, source: string, warn: (m: string) => void): Record<string, unknown> {
  const kwargs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (OWN_KEYS.has(k) || v === undefined) continue;
    kwargs[k] = v;
    const s = snake(k);
    if (s !== k && source.includes(s) && !source.includes(k) && !warnedKeys.has(k)) {
      warnedKeys.add(k);
      warn(`applyChatTemplate: the template reads "${s}", not "${k}"; template variables keep their template names (pass ${s}).`);
    }
  }
  return { ...kwargs, ...(options.templateKwargs ?? {}) };
}

export function applyChatTemplate(tok: PreTrainedTokenizer, conv: ChatMessage[] | ChatMessage[][], options: ApplyChatTemplateOptions): unknown {
  if (!Array.isArray(conv) || conv.length === 0) {
    throw new TsFinetuneError('INVALID_ARGUMENT', 'applyChatTemplate needs a non-empty array of messages (or of conversations)');
  }
  const batched = Array.isArray(conv[0]);
  const conversations = (batched ? conv : [conv]) as ChatMessage[][];
  const addGenerationPrompt = options.addGenerationPrompt ?? false;
  const continueFinal = options.continueFinalMessage ?? false;
  if (addGenerationPrompt && continueFinal) {
    throw new TsFinetuneError(
      'INVALID_ARGUMENT',
      'continueFinalMessage and addGenerationPrompt are not compatible: one continues the final message, the other starts a new one',
    );
  }
  const tools = options.tools ?? null;
  const source = selectTemplate(tok.nameOrPath, tok.chatTemplate, tok.namedChatTemplates, options.chatTemplate, tools !== null && tools.length > 0);
  const compiled = compileTemplate(source);
  const base: Omit<RenderInputs, 'messages' | 'addGenerationPrompt'> = {
    tools,
    documents: options.documents ?? null,
    specialTokens: tok.specialTokensMap,
    kwargs: templateKwargsOf(options, source, tok.onWarning),
  };
  const renderWith = (messages: ChatMessage[], gen: boolean, which: 'plain' | 'marked' = 'plain'): string =>
    render(compiled, { ...base, messages, addGenerationPrompt: gen }, which);

  const full: string[] = [];
  const rendered: string[] = [];
  conversations.forEach((messages, c) => {
    validateConversation(messages, batched ? `conversation ${c}` : 'conversation');
    const text = renderWith(messages, addGenerationPrompt);
    full.push(text);
    rendered.push(continueFinal ? cutAfterFinalMessage(text, messages) : text);
  });

  if (options.tokenize === false) return batched ? rendered : rendered[0];

  const withMask = options.returnAssistantTokensMask ?? false;
  let rows: number[][];
  const masks: number[][] = [];
  if (withMask) {
    const isEndOfTurn = endOfTurnTest(tok.eosToken);
    const specialTokens = tok.allSpecialTokens;
    // Encode every segment of every conversation in one call, so large batches use the worker pool.
    const headerCache = headerCacheFor(compiled, base);
    const allSegments: string[] = [];
    const layout: { count: number; inSpan: boolean[] }[] = [];
    conversations.forEach((messages, c) => {
      const ctx: SpanContext = {
        plain: full[c]!,
        addGenerationPrompt,
        messages,
        compiled,
        renderWith,
        specialTokens,
        isEndOfTurn,
        where: batched ? `conversation ${c}` : 'conversation',
        headerCache,
      };
      const { segments, inSpan } = splitAtSpans(rendered[c]!, findAssistantSpans(ctx));
      allSegments.push(...segments);
      layout.push({ count: segments.length, inSpan });
    });
    const encoded = tok.encodeMany(allSegments, false);
    rows = [];
    let at = 0;
    for (const { count, inSpan } of layout) {
      const ids: number[] = [];
      const mask: number[] = [];
      for (let k = 0; k < count; k++) {
        const seg = encoded[at + k]!;
        ids.push(...seg);
        for (let j = 0; j < seg.length; j++) mask.push(inSpan[k] ? 1 : 0);
      }
      at += count;
      rows.push(ids);
      masks.push(mask);
    }
  } else {
    rows = tok.encodeMany(rendered, false);
  }

  const { rows: ids, attentionMask } = tok.finish(rows, withMask ? [masks] : [], options);
  if (!(options.returnDict ?? false) && !withMask) return batched ? ids : ids[0];
  if (batched) {
    const out: BatchChatEncoding = { inputIds: ids, attentionMask };
    if (withMask) out.assistantMasks = masks;
    return out;
  }
  const out: ChatEncoding = { inputIds: ids[0]!, attentionMask: attentionMask[0]! };
  if (withMask) out.assistantMasks = masks[0]!;
  return out;
}
