// Which engine encodes a given tokenizer.json: our byte-level BPE encoder (fast-bpe.ts) when every part of the
// pipeline is one it reproduces exactly, else @huggingface/tokenizers. Also builds the encoder's tables.
// Supported (anything else falls back, with the reason): normalizer none or NFC; pre-tokenizer
// Sequence[Split(regex or string, Isolated), ByteLevel(use_regex false)] (Llama-3, Qwen2/3) or ByteLevel with its
// GPT-2 regex (GPT-2 style); model BPE without byte_fallback, dropout, word prefixes/suffixes or fused unknowns;
// added tokens without single_word; post-processor none, ByteLevel, TemplateProcessing or a Sequence of them.
// Not here: the encoding itself (fast-bpe.ts), decoding (the engine).
// Follows @huggingface/tokenizers 0.2 `Tokenizer` constructor (added tokens laid over the model vocabulary,
// `normalized` defaulting to `!special`), `BPE` constructor (merge ranks, last duplicate wins) and
// `TemplateProcessing.post_process` (special tokens resolved by their string).

import { BPE, ByteLevelPreTokenizer, SplitPreTokenizer, type Tokenizer as Engine } from '@huggingface/tokenizers';

/** One added token as the splitter needs it. */
export interface FastAddedToken {
  content: string;
  id: number;
  lstrip: boolean;
  rstrip: boolean;
}

/** Everything the encoder needs, as plain data: structured-clonable, tables on SharedArrayBuffers for the workers. */
export interface FastBpeSpec {
  /** Source and flags of the pre-tokenizer RegExp exactly as @huggingface/tokenizers builds it. */
  patternSource: string;
  patternFlags: string;
  /** Split 'Isolated' keeps the text between matches as pieces; ByteLevel's own regex (String.match) drops it. */
  keepGaps: boolean;
  /** ByteLevel `add_prefix_space`: a space before each section that does not start with one. */
  addPrefixSpace: boolean;
  /** The normalizer is NFC (else none). */
  nfc: boolean;
  /** GPT-2 unicode character of each byte, and that character's id. */
  byteChars: string[];
  byteIds: Int32Array;
  /** ignore_merges: a pre-token that is itself a vocabulary entry is one token. Needs `vocabTokens`/`vocabIds`. */
  ignoreMerges: boolean;
  vocabTokens: string[];
  vocabIds: Int32Array;
  /** Open-addressing merge table, 4 ints per slot: left id (-1 = empty), right id, rank, merged id. */
  mergeTable: Int32Array;
  mergeBits: number;
  /** Added tokens matched on the raw text, and (normalized: true, with a normalizer) on the normalized text. */
  addedRaw: FastAddedToken[];
  addedNormalized: FastAddedToken[];
  /** Ids the post-processor puts around the text with add_special_tokens true / false. */
  prefix: number[];
  suffix: number[];
  prefixNoSpecial: number[];
  suffixNoSpecial: number[];
  /** Pre-tokens cached per generation (two generations: a cheap approximation of LRU). */
  cacheSize: number;
}

/** Home slot of a merge pair in a table of 2^bits slots. createFastBpe (fast-bpe.ts) repeats this line: it must be self-contained. */
export function mergeSlot(a: number, b: number, bits: number): number {
  return Math.imul(Math.imul(a, 0x85ebca6b) ^ b, 0x9e3779b1) >>> (32 - bits);
}

export type EncoderPlan =
  | { engine: 'fast-bpe'; spec: FastBpeSpec; summary: string }
  | { engine: 'huggingface'; reason: string };

type Json = Record<string, unknown>;

/** Reasons to fall back, thrown inside planning and caught once. */
class Unsupported extends Error {}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const empty = (v: unknown): boolean => v === undefined || v === null || v === '';

/** The GPT-2 byte → unicode table (bytes that are printable Latin-1 map to themselves, the rest to U+0100…). */
export function byteToUnicode(): string[] {
  const out = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  return out;
}

/**
 * Decide the encoder for one tokenizer and, for ours, build its tables from the already loaded `engine` (its
 * vocabulary with added tokens laid over it, its parsed merges) and the tokenizer.json / tokenizer_config.json flags.
 */
export function planEncoder(engine: Engine, json: Json, config: Json, cacheSize = 65536): EncoderPlan {
  try {
    return build(engine, json, config, cacheSize);
  } catch (e) {
    if (e instanceof Unsupported) return { engine: 'huggingface', reason: e.message };
    throw e;
  }
}

function need(ok: boolean, reason: string): void {
  if (!ok) throw new Unsupported(reason);
}

function build(engine: Engine, json: Json, config: Json, cacheSize: number): EncoderPlan {
  const m = isObj(json.model) ? json.model : {};
  need(m.type === 'BPE' && engine.model instanceof BPE, `model type ${String(m.type)} (only BPE)`);
  const model = engine.model as BPE;
  need(!m.byte_fallback, 'BPE byte_fallback (SentencePiece-style BPE)');
  need(empty(m.dropout) || m.dropout === 0, 'BPE dropout');
  need(empty(m.continuing_subword_prefix) && empty(m.end_of_word_suffix) && empty(m.continuing_subword_suffix), 'BPE word prefix/suffix');
  need(!(m.fuse_unk && !empty(m.unk_token)), 'BPE fuse_unk with an unk token');
  need(!config.remove_space && !config.do_lowercase_and_remove_accent, 'tokenizer_config sets remove_space / do_lowercase_and_remove_accent');
  const norm = json.normalizer;
  need(norm === null || norm === undefined || (isObj(norm) && norm.type === 'NFC'), `normalizer ${isObj(norm) ? String(norm.type) : '?'} (only none or NFC)`);
  const nfc = isObj(norm);
  const pre = pretokenizer(json.pre_tokenizer);

  // The engine's `tokens_to_ids`: the model vocabulary with every added token laid over it. Ids must name one
  // string each (merges are keyed by ids, not strings): each id's string in `model.vocab` must map back to it.
  const vocab = model.tokens_to_ids;
  for (const [t, id] of vocab) need(model.vocab[id] === t, `id ${id} names both ${JSON.stringify(model.vocab[id])} and ${JSON.stringify(t)}`);
  const addedRaw: FastAddedToken[] = [];
  const addedNormalized: FastAddedToken[] = [];
  const addedList = json.added_tokens ?? [];
  need(Array.isArray(addedList), 'added_tokens is not a list');
  const seen = new Set<string>();
  for (const a of addedList as unknown[]) {
    need(isObj(a) && typeof a.content === 'string' && Number.isInteger(a.id), 'malformed added token');
    const t = a as Json;
    const content = t.content as string;
    need(!t.single_word, `added token ${JSON.stringify(content)} has single_word`);
    // The engine's maps keep the last of repeated contents in its own interleaved order: not worth reproducing.
    need(!seen.has(content), `added token ${JSON.stringify(content)} is listed twice`);
    seen.add(content);
    const normalized = Boolean(t.normalized ?? !t.special);
    const tok: FastAddedToken = { content, id: t.id as number, lstrip: Boolean(t.lstrip), rstrip: Boolean(t.rstrip) };
    if (normalized && nfc) {
      // The engine also maps the normalized form; we only take tokens for which that form is the content itself.
      need(content.normalize('NFC') === content, `normalized added token ${JSON.stringify(content)} changes under NFC`);
      addedNormalized.push(tok);
    } else addedRaw.push(tok);
  }

  const byteChars = byteToUnicode();
  const byteIds = new Int32Array(256);
  byteChars.forEach((c, b) => {
    const id = vocab.get(c);
    need(id !== undefined, `byte ${b} (${JSON.stringify(c)}) is not in the vocabulary: not a byte-level BPE`);
    byteIds[b] = id!;
  });

  const { table, bits, count } = mergeTable(model.merges, vocab);
  const ignoreMerges = Boolean(m.ignore_merges ?? false);
  const post = (add: boolean): [number[], number[]] => postIds(json.post_processor, add, vocab, model.unk_token_id);
  const [prefix, suffix] = post(true);
  const [prefixNoSpecial, suffixNoSpecial] = post(false);
  const spec: FastBpeSpec = {
    ...pre.pattern,
    byteChars,
    byteIds,
    nfc,
    ignoreMerges,
    vocabTokens: ignoreMerges ? [...vocab.keys()] : [],
    vocabIds: ignoreMerges ? Int32Array.from(vocab.values()) : new Int32Array(0),
    mergeTable: table,
    mergeBits: bits,
    addedRaw,
    addedNormalized,
    prefix,
    suffix,
    prefixNoSpecial,
    suffixNoSpecial,
    cacheSize,
  };
  const summary =
    `byte-level BPE (${pre.kind}${nfc ? ', NFC' : ''}${ignoreMerges ? ', ignore_merges' : ''}; ${count} merges, ` +
    `${addedRaw.length + addedNormalized.length} added tokens)`;
  return { engine: 'fast-bpe', spec, summary };
}

function pretokenizer(p: unknown): { kind: string; pattern: Pick<FastBpeSpec, 'patternSource' | 'patternFlags' | 'keepGaps' | 'addPrefixSpace'> } {
  need(isObj(p), 'no pre-tokenizer: not a byte-level BPE');
  const c = p as Json;
  try {
    if (c.type === 'ByteLevel') {
      need(c.use_regex !== false, 'ByteLevel pre-tokenizer without its regex');
      // The engine's own GPT-2 regex, applied with String.match (text between matches is dropped).
      const re = new ByteLevelPreTokenizer(c as unknown as ConstructorParameters<typeof ByteLevelPreTokenizer>[0]).pattern;
      const pattern = { patternSource: re.source, patternFlags: re.flags, keepGaps: false, addPrefixSpace: Boolean(c.add_prefix_space) };
      return { kind: 'ByteLevel regex', pattern };
    }
    const steps = c.type === 'Sequence' && Array.isArray(c.pretokenizers) ? (c.pretokenizers as unknown[]) : [];
    const [split, bl] = steps;
    need(steps.length === 2 && isObj(split) && isObj(bl), `pre-tokenizer ${String(c.type)} (only Sequence[Split, ByteLevel] or ByteLevel)`);
    const s = split as Json;
    const b = bl as Json;
    need(s.type === 'Split' && s.behavior === 'Isolated' && !s.invert, 'pre-tokenizer Split other than Isolated, non-inverted');
    need(b.type === 'ByteLevel' && b.use_regex === false && !b.add_prefix_space, 'ByteLevel step with a regex or add_prefix_space after Split');
    // The very RegExp the engine compiles (its rewrite of the Oniguruma/Rust syntax): identical splits by construction.
    const re = new SplitPreTokenizer(s as unknown as ConstructorParameters<typeof SplitPreTokenizer>[0]).pattern;
    need(re !== null, 'Split pattern the engine cannot compile');
    return { kind: 'Split regex + ByteLevel', pattern: { patternSource: re!.source, patternFlags: re!.flags, keepGaps: true, addPrefixSpace: false } };
  } catch (e) {
    if (e instanceof Unsupported) throw e;
    throw new Unsupported(`pre-tokenizer: ${(e as Error).message}`);
  }
}

/** Merge ranks keyed by id pairs, in an open-addressing table on a SharedArrayBuffer (workers share it). */
function mergeTable(merges: readonly (readonly unknown[])[], vocab: Map<string, number>): { table: Int32Array; bits: number; count: number } {
  let bits = 4;
  while (1 << bits < merges.length / 0.6) bits++;
  const table = new Int32Array(new SharedArrayBuffer(4 << (bits + 2))).fill(-1);
  const mask = (1 << bits) - 1;
  let count = 0;
  for (let rank = 0; rank < merges.length; rank++) {
    const x = merges[rank]!;
    const l = x[0];
    const r = x[1];
    // The engine keys ranks by the JSON of the whole pair: anything but two strings never matches.
    if (typeof l !== 'string' || typeof r !== 'string' || x.length !== 2) continue;
    const a = vocab.get(l);
    const b = vocab.get(r);
    // A part outside the vocabulary never occurs while merging (bytes and merge results all are in it): skip.
    if (a === undefined || b === undefined) continue;
    const ab = vocab.get(l + r);
    need(ab !== undefined, `merge ${rank} (${JSON.stringify([l, r])}) makes a token outside the vocabulary`);
    let slot = mergeSlot(a, b, bits);
    for (;;) {
      const k = slot << 2;
      const empty = table[k] === -1;
      if (empty || (table[k] === a && table[k + 1] === b)) {
        // A duplicate pair keeps the later rank, as the engine's Map does.
        if (empty) count++;
        table[k] = a;
        table[k + 1] = b;
        table[k + 2] = rank;
        table[k + 3] = ab!;
        break;
      }
      slot = (slot + 1) & mask;
    }
  }
  return { table, bits, count };
}

/** Ids before and after the text, by running the post-processor on a placeholder for the sequence. */
function postIds(pp: unknown, add: boolean, vocab: Map<string, number>, unkId: number | undefined): [number[], number[]] {
  const SEQ = Symbol('sequence');
  type Item = string | typeof SEQ;
  const run = (p: unknown, items: Item[]): Item[] => {
    if (p === null || p === undefined) return items;
    need(isObj(p), 'malformed post_processor');
    const c = p as Json;
    if (c.type === 'ByteLevel') return items;
    if (c.type === 'Sequence' && Array.isArray(c.processors)) return (c.processors as unknown[]).reduce<Item[]>((acc, q) => run(q, acc), items);
    need(c.type === 'TemplateProcessing' && Array.isArray(c.single), `post_processor ${String(c.type)}`);
    const out: Item[] = [];
    for (const it of c.single as unknown[]) {
      const item = isObj(it) ? it : {};
      if (isObj(item.SpecialToken)) {
        need(typeof item.SpecialToken.id === 'string', 'TemplateProcessing special token without an id');
        if (add) out.push(item.SpecialToken.id as string);
      } else {
        need(isObj(item.Sequence) && item.Sequence.id === 'A', 'TemplateProcessing single template with a B sequence');
        out.push(...items);
      }
    }
    return out;
  };
  const items = run(pp, [SEQ]);
  const at = items.indexOf(SEQ);
  need(at >= 0 && items.lastIndexOf(SEQ) === at, 'post-processor that drops or repeats the text');
  const ids = (xs: Item[]): number[] =>
    xs.map((t) => {
      const id = typeof t === 'string' ? (vocab.get(t) ?? unkId) : undefined;
      need(id !== undefined, `post-processor token ${String(t)} is not in the vocabulary`);
      return id!;
    });
  return [ids(items.slice(0, at)), ids(items.slice(at + 1))];
}
