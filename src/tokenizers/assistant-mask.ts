// Which characters of a rendered chat belong to assistant turns, for assistant-only loss.
// Stock templates have no `{% generation %}` markers, so (unlike transformers, which then returns an all-zero
// mask) we find the turns ourselves:
//   1. `{% generation %}` present: its blocks are the spans, exactly as transformers uses them.
//   2. Else sentinels: wrap each assistant content in two private-use characters, render once, strip them while
//      recording positions, and require the stripped text to equal the plain render (so the sentinels changed
//      nothing). A turn starts where the generation header (what `add_generation_prompt` appends) ends, so
//      what the template renders around the content (Qwen3's think block, also from `reasoning_content`)
//      counts as assistant output, just as a prompt/completion split would count it; the start sentinel is
//      the fallback when no header is found. Each span ends at the end sentinel, extended over the
//      end-of-turn token that follows (and any tool-call text before it), so the model learns to stop.
//   3. Else prefix rendering: the turn is render(messages[:i+1]) minus render(messages[:i], generation prompt).
//   4. Else a clear error that says to add `{% generation %}` markers.
// Not here: tokenization (the spans are encoded segment by segment by tokenizer.ts).
// Reference: transformers `apply_chat_template(return_assistant_tokens_mask=True)` and TRL's assistant-only loss.

import { TsFinetuneError } from '../core/index.js';
import { pickSentinels, type CompiledTemplate } from './chat-template.js';
import type { ChatMessage, ContentPart } from './types.js';

export interface CharSpan {
  start: number;
  end: number;
}

export interface SpanContext {
  /** The plain render of `messages` (with the caller's generation-prompt setting). */
  plain: string;
  addGenerationPrompt: boolean;
  messages: ChatMessage[];
  compiled: CompiledTemplate;
  /** Render other messages with the same template and variables. */
  renderWith: (messages: ChatMessage[], addGenerationPrompt: boolean, which?: 'plain' | 'marked') => string;
  /** Contents of the special added tokens (turn delimiters, EOS …). */
  specialTokens: readonly string[];
  isEndOfTurn: (token: string) => boolean;
  /** For error messages: which conversation. */
  where: string;
  /** Generation headers found so far (shared by the conversations of one call: same template and variables). */
  headerCache: { value?: string[] };
}

interface Mark {
  kind: number; // index into the sentinel list
  pos: number; // position in the stripped text
}

/** Remove sentinel characters, recording where each was (in stripped coordinates). */
export function stripSentinels(raw: string, sentinels: readonly string[]): { text: string; marks: Mark[] } {
  const marks: Mark[] = [];
  let text = '';
  let from = 0;
  for (let i = 0; i < raw.length; i++) {
    const k = sentinels.indexOf(raw[i]!);
    if (k < 0) continue;
    text += raw.slice(from, i);
    marks.push({ kind: k, pos: text.length });
    from = i + 1;
  }
  text += raw.slice(from);
  return { text, marks };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function specialTokenRegex(tokens: readonly string[]): RegExp | null {
  if (tokens.length === 0) return null;
  const sorted = [...tokens].sort((a, b) => b.length - a.length).map(escapeRegExp);
  return new RegExp(sorted.join('|'), 'g');
}

/** Wrap an assistant content in sentinels; undefined when there is no text to wrap (empty / tool calls only). */
function wrapContent(content: ChatMessage['content'], open: string, close: string): ChatMessage['content'] | undefined {
  if (typeof content === 'string') return content.length > 0 ? open + content + close : undefined;
  if (!Array.isArray(content)) return undefined;
  const textIdx = content.flatMap((p, i) => (typeof p.text === 'string' && p.text.length > 0 ? [i] : []));
  if (textIdx.length === 0) return undefined;
  const first = textIdx[0]!;
  const last = textIdx[textIdx.length - 1]!;
  return content.map((p, i): ContentPart => {
    if (i !== first && i !== last) return p;
    return { ...p, text: (i === first ? open : '') + p.text! + (i === last ? close : '') };
  });
}

export function findAssistantSpans(ctx: SpanContext): CharSpan[] {
  if (!ctx.messages.some((m) => m.role === 'assistant') && !ctx.compiled.hasGenerationTags) return [];
  if (ctx.compiled.hasGenerationTags) return generationSpans(ctx);
  const spans = safe(() => sentinelSpans(ctx)) ?? safe(() => prefixSpans(ctx));
  if (spans) return spans;
  throw new TsFinetuneError(
    'CHAT_TEMPLATE_ERROR',
    `${ctx.where}: could not locate the assistant turns in the rendered chat (the template rewrites assistant content ` +
      'and renders earlier turns differently once later ones follow). Wrap the assistant output in the template with ' +
      '{% generation %} … {% endgeneration %} and pass it as chatTemplate.',
  );
}

function safe<T>(f: () => T | null): T | null {
  try {
    return f();
  } catch (e) {
    if (e instanceof TsFinetuneError && e.code === 'CHAT_TEMPLATE_ERROR') return null;
    throw e;
  }
}

function generationSpans(ctx: SpanContext): CharSpan[] {
  const m = ctx.compiled.marked!;
  const { text, marks } = stripSentinels(ctx.renderWith(ctx.messages, ctx.addGenerationPrompt, 'marked'), [m.open, m.close]);
  if (text !== ctx.plain) {
    throw new TsFinetuneError('CHAT_TEMPLATE_ERROR', `${ctx.where}: the {% generation %} markers change the rendered text`);
  }
  const spans: CharSpan[] = [];
  for (let i = 0; i < marks.length; i++) {
    const open = marks[i]!;
    const close = marks[i + 1];
    if (open.kind !== 0 || close === undefined || close.kind !== 1) {
      throw new TsFinetuneError('CHAT_TEMPLATE_ERROR', `${ctx.where}: unbalanced {% generation %} / {% endgeneration %} in the template`);
    }
    if (close.pos > open.pos) spans.push({ start: open.pos, end: close.pos });
    i++;
  }
  return spans;
}

/** What `add_generation_prompt` appends after messages[:i]: the header that opens an assistant turn. */
function generationHeaders(ctx: SpanContext, i: number): string[] {
  if (i === 0) return [];
  const prefix = ctx.messages.slice(0, i);
  const without = ctx.renderWith(prefix, false);
  const withPrompt = ctx.renderWith(prefix, true);
  if (!withPrompt.startsWith(without) || withPrompt.length === without.length) return [];
  const g = withPrompt.slice(without.length);
  // Qwen3 with enable_thinking=false appends an empty think block: the first line is the header proper.
  const nl = g.indexOf('\n');
  return nl >= 0 && nl + 1 < g.length ? [g, g.slice(0, nl + 1)] : [g];
}

function sentinelSpans(ctx: SpanContext): CharSpan[] | null {
  const avoid = ctx.plain + JSON.stringify(ctx.messages);
  const [open, close] = pickSentinels(avoid, 2) as [string, string];
  const wrapped: boolean[] = [];
  const msgs = ctx.messages.map((m, i) => {
    wrapped[i] = false;
    if (m.role !== 'assistant') return m;
    const c = wrapContent(m.content, open, close);
    if (c === undefined) return m;
    wrapped[i] = true;
    return { ...m, content: c };
  });
  const { text, marks } = stripSentinels(ctx.renderWith(msgs, ctx.addGenerationPrompt), [open, close]);
  if (text !== ctx.plain) return null;
  const starts = marks.filter((k) => k.kind === 0).map((k) => k.pos);
  const ends = marks.filter((k) => k.kind === 1).map((k) => k.pos);
  if (ends.length !== wrapped.filter(Boolean).length) return null; // content dropped or rendered twice
  const special = specialTokenRegex(ctx.specialTokens);
  const spans: CharSpan[] = [];
  let prevEnd = 0;
  let e = 0;
  for (const [i, m] of ctx.messages.entries()) {
    if (m.role !== 'assistant') continue;
    let start: number | undefined;
    let end: number;
    if (wrapped[i]) {
      end = ends[e++]!;
      if (end < prevEnd) return null;
      // The turn starts where the generation header ends (so template-made parts such as Qwen3's think block
      // count as assistant output); the start sentinel is the fallback when no header is found.
      start = headerEnd(ctx, i, text, prevEnd, end, 'before');
      if (start === undefined) {
        const s = starts.filter((p) => p >= prevEnd && p <= end);
        start = s[s.length - 1];
      }
    } else {
      start = headerEnd(ctx, i, text, prevEnd, text.length, 'after');
      end = start ?? 0;
    }
    if (start === undefined) return null;
    end = extendOverEndOfTurn(text, end, special, ctx.isEndOfTurn, marks);
    if (end > start) spans.push({ start, end });
    prevEnd = end;
  }
  return spans;
}

function headerEnd(ctx: SpanContext, i: number, text: string, lo: number, hi: number, dir: 'before' | 'after'): number | undefined {
  const find = (headers: readonly string[]): number | undefined => {
    for (const g of headers) {
      const at = dir === 'before' ? text.lastIndexOf(g, hi - g.length) : text.indexOf(g, lo);
      if (at >= lo && at + g.length <= hi) return at + g.length;
    }
    return undefined;
  };
  // Headers rarely differ between turns: try the last one found before rendering prefixes again.
  const cached = ctx.headerCache.value ? find(ctx.headerCache.value) : undefined;
  if (cached !== undefined) return cached;
  const headers = generationHeaders(ctx, i);
  if (headers.length > 0) ctx.headerCache.value = headers;
  return find(headers);
}

/**
 * Extend a span end over what the assistant still "says" before its turn closes: text without special tokens
 * (tool calls, spaces) up to and including the first special token, if that token ends a turn.
 */
function extendOverEndOfTurn(text: string, end: number, special: RegExp | null, isEot: (t: string) => boolean, marks: Mark[]): number {
  if (!special) return end;
  special.lastIndex = end;
  const m = special.exec(text);
  if (!m || !isEot(m[0])) return end;
  if (marks.some((k) => k.pos > end && k.pos < m.index)) return end; // would swallow another turn
  return m.index + m[0].length;
}

function prefixSpans(ctx: SpanContext): CharSpan[] | null {
  const spans: CharSpan[] = [];
  for (const [i, m] of ctx.messages.entries()) {
    if (m.role !== 'assistant') continue;
    if (i === 0) return null;
    const before = ctx.renderWith(ctx.messages.slice(0, i), true);
    const through = ctx.renderWith(ctx.messages.slice(0, i + 1), false);
    if (!through.startsWith(before) || !ctx.plain.startsWith(through)) return null;
    let end = through.length;
    while (end > before.length && /\s/.test(through[end - 1]!)) end--; // the newline after the end-of-turn token
    if (end > before.length) spans.push({ start: before.length, end });
  }
  return spans;
}

/** Cut a text into segments at span boundaries; `inSpan[k]` says whether segment k is assistant text. */
export function splitAtSpans(text: string, spans: readonly CharSpan[]): { segments: string[]; inSpan: boolean[] } {
  const segments: string[] = [];
  const inSpan: boolean[] = [];
  let at = 0;
  for (const s of spans) {
    const start = Math.min(Math.max(s.start, at), text.length);
    const end = Math.min(s.end, text.length);
    if (start > at) {
      segments.push(text.slice(at, start));
      inSpan.push(false);
    }
    if (end > start) {
      segments.push(text.slice(start, end));
      inSpan.push(true);
    }
    at = Math.max(at, end);
  }
  if (at < text.length) {
    segments.push(text.slice(at));
    inSpan.push(false);
  }
  return { segments, inSpan };
}

/** Default test for end-of-turn tokens: the EOS, or a special token named like one. */
export function endOfTurnTest(eosToken: string | null): (token: string) => boolean {
  const re = /^<\/s>$|eot|eom|im_end|end_of_turn|<\|end\|>|end_of_text|endoftext|<eos>/i;
  return (t) => t === eosToken || (re.test(t) && !/header/i.test(t));
}
