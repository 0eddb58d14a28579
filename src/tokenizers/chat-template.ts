// Rendering chat templates with @huggingface/jinja the way transformers does: the variables a template sees
// (messages, tools, documents, add_generation_prompt, the special tokens, extra kwargs), template selection
// (named templates, `tool_use` when tools are given), `continue_final_message`, and message validation.
// Also the `{% generation %}` tag: the jinja package drops it; we turn it into sentinel characters so assistant
// masks can be read off the render (assistant-mask.ts).
// Not here: tokenizing the render (tokenizer.ts). Follows transformers `utils/chat_template_utils.py`
// (`render_jinja_template`, `_compile_jinja_template`) and `tokenization_utils_base.py` (`apply_chat_template`).

import { Template } from '@huggingface/jinja';
import { closestName, TsFinetuneError } from '../core/index.js';
import { KNOWN_ROLES, type ChatMessage, type ToolSpec } from './types.js';

const GENERATION_TAG = /\{%(-?)\s*(end)?generation\s*(-?)%\}/g;

export interface CompiledTemplate {
  source: string;
  hasGenerationTags: boolean;
  plain: Template;
  /** Only when hasGenerationTags: the template with the tags rendered as `open` / `close` characters. */
  marked?: { template: Template; open: string; close: string };
}

// Templates are compiled once per source: rendering thousands of rows must not re-parse.
const cache = new Map<string, CompiledTemplate>();

/** Two private-use characters absent from `avoid` (sentinels never collide with real text). */
export function pickSentinels(avoid: string, count: number): string[] {
  const out: string[] = [];
  for (let cp = 0xf8ff; cp >= 0xe000 && out.length < count; cp--) {
    const c = String.fromCharCode(cp);
    if (!avoid.includes(c)) out.push(c);
  }
  return out;
}

function parse(source: string): Template {
  try {
    return new Template(source);
  } catch (e) {
    throw new TsFinetuneError('CHAT_TEMPLATE_ERROR', `The chat template does not parse: ${(e as Error).message}`, { template: source.slice(0, 200) }, { cause: e });
  }
}

export function compileTemplate(source: string): CompiledTemplate {
  const hit = cache.get(source);
  if (hit) return hit;
  const hasGenerationTags = new RegExp(GENERATION_TAG.source).test(source);
  const compiled: CompiledTemplate = { source, hasGenerationTags, plain: parse(source) };
  if (hasGenerationTags) {
    const [open, close] = pickSentinels(source, 2) as [string, string];
    // `{%- generation -%}` strips whitespace on both sides; `{{- 'x' -}}` does exactly the same.
    const markedSource = source.replace(GENERATION_TAG, (_m, l: string, end: string | undefined, r: string) => `{{${l} '${end ? close : open}' ${r}}}`);
    compiled.marked = { template: parse(markedSource), open, close };
  }
  if (cache.size > 64) cache.delete(cache.keys().next().value as string);
  cache.set(source, compiled);
  return compiled;
}

/** transformers' choice: an explicit template or name, else `tool_use` when tools are given, else the default. */
export function selectTemplate(
  nameOrPath: string,
  def: string | undefined,
  named: Readonly<Record<string, string>>,
  requested: string | undefined,
  hasTools: boolean,
): string {
  if (requested !== undefined) {
    if (requested in named) return named[requested]!;
    if (requested === 'default' && def !== undefined) return def;
    // A name-like string that is not one of ours is almost certainly a typo, not a template.
    if (/^[\w.-]+$/.test(requested)) {
      const known = [...(def !== undefined ? ['default'] : []), ...Object.keys(named)];
      const near = closestName(requested, known);
      throw new TsFinetuneError(
        'CHAT_TEMPLATE_ERROR',
        `Tokenizer ${nameOrPath} has no chat template named "${requested}"` +
          (known.length ? ` (it has: ${known.join(', ')}${near ? `; did you mean "${near}"?` : ''})` : ''),
        { requested, known },
      );
    }
    return requested;
  }
  if (hasTools && named.tool_use !== undefined) return named.tool_use;
  if (def !== undefined) return def;
  const names = Object.keys(named);
  throw new TsFinetuneError(
    'CHAT_TEMPLATE_ERROR',
    `Tokenizer ${nameOrPath} has no chat template` +
      (names.length ? ` (only named ones: ${names.join(', ')}; pass chatTemplate: '<name>')` : '') +
      '. Pass one as applyChatTemplate(messages, { chatTemplate: "{% for m in messages %}…{% endfor %}" }) ' +
      'or set tokenizer.chatTemplate = "…" once.',
    { nameOrPath },
  );
}

/** Reject what no template handles meaningfully: unknown roles, content that is neither text nor parts. */
export function validateConversation(messages: unknown, where: string): asserts messages is ChatMessage[] {
  if (!Array.isArray(messages)) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `${where}: a conversation must be an array of { role, content } messages, got ${typeof messages}`);
  }
  if (messages.length === 0) throw new TsFinetuneError('INVALID_ARGUMENT', `${where}: the conversation is empty`);
  messages.forEach((m: unknown, i) => {
    if (typeof m !== 'object' || m === null) throw new TsFinetuneError('INVALID_ARGUMENT', `${where}, message ${i}: expected an object, got ${m === null ? 'null' : typeof m}`, { message: i });
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== 'string' || !(KNOWN_ROLES as readonly string[]).includes(role)) {
      const near = typeof role === 'string' ? closestName(role, KNOWN_ROLES) : undefined;
      throw new TsFinetuneError(
        'INVALID_ARGUMENT',
        `${where}, message ${i}: unknown role ${JSON.stringify(role)} (expected one of ${KNOWN_ROLES.join(', ')}${near ? `; did you mean "${near}"?` : ''})`,
        { message: i, role },
      );
    }
    const toolCalls = (m as { tool_calls?: unknown }).tool_calls;
    const ok =
      typeof content === 'string' ||
      (Array.isArray(content) && content.every((p: unknown) => typeof p === 'object' && p !== null && typeof (p as { type?: unknown }).type === 'string')) ||
      ((content === null || content === undefined) && Array.isArray(toolCalls));
    if (!ok) {
      throw new TsFinetuneError(
        'INVALID_ARGUMENT',
        `${where}, message ${i} (${role}): content must be a string or a list of { type, … } parts` +
          ` (null only with tool_calls), got ${content === null ? 'null' : Array.isArray(content) ? 'a list with a non-part entry' : typeof content}`,
        { message: i, role },
      );
    }
  });
}

export interface RenderInputs {
  messages: ChatMessage[];
  addGenerationPrompt: boolean;
  tools: ToolSpec[] | null;
  documents: Record<string, unknown>[] | null;
  specialTokens: Record<string, unknown>;
  kwargs: Record<string, unknown>;
}

/** Render once. A template that raises (raise_exception or a runtime error) surfaces its message. */
export function render(t: CompiledTemplate, inp: RenderInputs, which: 'plain' | 'marked' = 'plain'): string {
  const template = which === 'marked' ? t.marked!.template : t.plain;
  // Order as transformers: special tokens first, then user kwargs (which may override them).
  const vars: Record<string, unknown> = {
    ...inp.specialTokens,
    ...inp.kwargs,
    messages: inp.messages,
    tools: inp.tools,
    documents: inp.documents,
    add_generation_prompt: inp.addGenerationPrompt,
  };
  try {
    return template.render(vars);
  } catch (e) {
    throw new TsFinetuneError('CHAT_TEMPLATE_ERROR', `The chat template raised: ${(e as Error).message}`, { error: (e as Error).message }, { cause: e });
  }
}

function finalText(m: ChatMessage): string {
  const c = m.content;
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) {
    for (let i = c.length - 1; i >= 0; i--) {
      const t = c[i]!.text;
      if (typeof t === 'string') return t;
    }
  }
  throw new TsFinetuneError('INVALID_ARGUMENT', 'continueFinalMessage is set but the final message has no text to continue');
}

/** HF `continue_final_message`: cut the render right after the final message's text. */
export function cutAfterFinalMessage(rendered: string, messages: ChatMessage[]): string {
  const final = finalText(messages[messages.length - 1]!);
  const stripped = final.trim();
  const loc = rendered.lastIndexOf(stripped);
  if (loc < 0) {
    throw new TsFinetuneError(
      'CHAT_TEMPLATE_ERROR',
      'continueFinalMessage is set but the final message does not appear in the rendered chat (the template transforms it)',
    );
  }
  const lstripped = final.trimStart();
  // The template kept the message as is: cut after it; else (it trimmed the message) after the stripped text.
  if (rendered.slice(loc, loc + lstripped.length) === final) return rendered.slice(0, loc + lstripped.length);
  return rendered.slice(0, loc + stripped.length);
}
