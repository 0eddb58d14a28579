// Our byte-level BPE encoder: text → ids for the tokenizer.json shapes of Llama-3/3.1, Qwen2/2.5/3 and GPT-2
// (added tokens split first, optional NFC, one regex pre-tokenizer, GPT-2 byte→unicode, BPE merges by rank,
// TemplateProcessing/ByteLevel post-processing), with ids identical to @huggingface/tokenizers.
// Not here: deciding whether a tokenizer.json can use it, the spec type and its tables (fast-bpe-plan.ts), decoding
// (stays on @huggingface/tokenizers).
// Follows @huggingface/tokenizers 0.2 `Tokenizer.encode_text`, `DictionarySplitter`, `regex_split` and `BPE.bpe`
// step for step (same splitting rules, same merge order: lowest rank first, leftmost on ties), so the ids match.
//
// `createFastBpe` must stay self-contained (no imports, no module-level helpers, only JS globals): the worker pool
// sends its source text (`createFastBpe.toString()`) to its eval'd workers, so every thread runs this same code.

import type { FastAddedToken, FastBpeSpec } from './fast-bpe-plan.js';

export interface FastBpe {
  encode(text: string, addSpecialTokens: boolean): number[];
}

export function createFastBpe(spec: FastBpeSpec): FastBpe {
  interface TrieNode {
    next: Map<number, TrieNode>;
    end: string | null;
  }
  interface Splitter {
    root: TrieNode;
    first: Uint8Array;
    count: number;
  }
  const NONE = 0x7fffffff;
  const SMALL_WORD = 48; // up to this many bytes: O(n²) array merges beat a heap
  const MAX_CACHED_CHARS = 64; // longer pieces rarely repeat
  const table = spec.mergeTable;
  const bits = spec.mergeBits;
  const mask = (1 << bits) - 1;
  const byteIds = spec.byteIds;
  const byteChars = spec.byteChars;
  const added = new Map<string, FastAddedToken>();
  for (const t of spec.addedRaw) added.set(t.content, t);
  for (const t of spec.addedNormalized) added.set(t.content, t);
  const vocab = new Map<string, number>();
  if (spec.ignoreMerges) spec.vocabTokens.forEach((t, i) => vocab.set(t, spec.vocabIds[i]!));
  const flags = spec.patternFlags.replace(/[gy]/g, '');
  const sticky = new RegExp(spec.patternSource, flags + 'y');
  const glob = new RegExp(spec.patternSource, flags + 'g');
  const unicode = /[uv]/.test(flags);

  // ---- added tokens: greedy longest match at each position, as DictionarySplitter --------------------------
  const makeSplitter = (tokens: FastAddedToken[]): Splitter => {
    const root: TrieNode = { next: new Map(), end: null };
    const first = new Uint8Array(65536);
    let count = 0;
    for (const t of tokens) {
      if (t.content.length === 0) continue;
      let node = root;
      for (let i = 0; i < t.content.length; i++) {
        const c = t.content.charCodeAt(i);
        let child = node.next.get(c);
        if (child === undefined) node.next.set(c, (child = { next: new Map(), end: null }));
        node = child;
      }
      node.end = t.content;
      first[t.content.charCodeAt(0)] = 1;
      count++;
    }
    return { root, first, count };
  };
  const rawSplitter = makeSplitter(spec.addedRaw);
  const normSplitter = makeSplitter(spec.addedNormalized);

  /** Sections of `text` around added tokens, or null when it holds none (the common case: no array). */
  const split = (s: Splitter, text: string): string[] | null => {
    if (s.count === 0) return null;
    const n = text.length;
    let res: string[] | null = null;
    let start = 0;
    let i = 0;
    while (i < n) {
      if (s.first[text.charCodeAt(i)] === 0) {
        i++;
        continue;
      }
      let node: TrieNode | undefined = s.root;
      let match: string | null = null;
      for (let j = i; j < n; j++) {
        node = node.next.get(text.charCodeAt(j));
        if (node === undefined) break;
        if (node.end !== null) match = node.end;
      }
      if (match === null) {
        i++;
        continue;
      }
      res ??= [];
      if (i > start) res.push(text.slice(start, i));
      res.push(match);
      i += match.length;
      start = i;
    }
    if (res !== null && start < n) res.push(text.slice(start));
    return res;
  };

  /** lstrip / rstrip of added tokens trim their neighbours (JS trimEnd / trimStart, as the engine does). */
  const strip = (sections: string[]): void => {
    for (let i = 0; i < sections.length; i++) {
      const t = added.get(sections[i]!);
      if (t === undefined) continue;
      if (t.lstrip && i > 0) sections[i - 1] = sections[i - 1]!.trimEnd();
      if (t.rstrip && i < sections.length - 1) sections[i + 1] = sections[i + 1]!.trimStart();
    }
  };

  // ---- BPE of one pre-token ----------------------------------------------------------------------------------
  let bytes = new Uint8Array(1024);
  let toks = new Int32Array(1024);
  let ranks = new Int32Array(1024);
  let slots = new Int32Array(1024);

  const lookup = (a: number, b: number): number => {
    let slot = Math.imul(Math.imul(a, 0x85ebca6b) ^ b, 0x9e3779b1) >>> (32 - bits); // = mergeSlot (fast-bpe-plan.ts)
    for (;;) {
      const k = slot << 2;
      const ka = table[k]!;
      if (ka === -1) return -1;
      if (ka === a && table[k + 1] === b) return k;
      slot = (slot + 1) & mask;
    }
  };

  /** UTF-8 bytes of `s` into `bytes` (lone surrogates become U+FFFD, as TextEncoder does); returns the count. */
  const utf8 = (s: string): number => {
    if (bytes.length < s.length * 3) bytes = new Uint8Array(s.length * 3);
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        bytes[n++] = c;
        continue;
      }
      if (c < 0x800) {
        bytes[n++] = 0xc0 | (c >> 6);
        bytes[n++] = 0x80 | (c & 63);
        continue;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          bytes[n++] = 0xf0 | (c >> 18);
          bytes[n++] = 0x80 | ((c >> 12) & 63);
          bytes[n++] = 0x80 | ((c >> 6) & 63);
          bytes[n++] = 0x80 | (c & 63);
          continue;
        }
        c = 0xfffd;
      }
      bytes[n++] = 0xe0 | (c >> 12);
      bytes[n++] = 0x80 | ((c >> 6) & 63);
      bytes[n++] = 0x80 | (c & 63);
    }
    return n;
  };

  /** Small words: rescan the pair ranks, merge the lowest (leftmost on ties), shift. */
  const mergeSmall = (n: number): number[] => {
    for (let i = 0; i + 1 < n; i++) {
      const k = lookup(toks[i]!, toks[i + 1]!);
      slots[i] = k;
      ranks[i] = k < 0 ? NONE : table[k + 2]!;
    }
    let m = n;
    while (m > 1) {
      let best = NONE;
      let at = -1;
      for (let i = 0; i + 1 < m; i++) {
        if (ranks[i]! < best) {
          best = ranks[i]!;
          at = i;
        }
      }
      if (at < 0) break;
      toks[at] = table[slots[at]! + 3]!;
      toks.copyWithin(at + 1, at + 2, m);
      ranks.copyWithin(at, at + 1, m - 1);
      slots.copyWithin(at, at + 1, m - 1);
      m--;
      for (let i = Math.max(0, at - 1); i <= at && i + 1 < m; i++) {
        const k = lookup(toks[i]!, toks[i + 1]!);
        slots[i] = k;
        ranks[i] = k < 0 ? NONE : table[k + 2]!;
      }
    }
    return Array.from(toks.subarray(0, m));
  };

  /** Long words: a linked list over positions and a binary heap of (rank, position); stale entries are re-checked. */
  const mergeLarge = (n: number): number[] => {
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const heap: number[] = []; // rank * 2^32 + position: exact in a double, ordered as (rank, position)
    const push = (v: number): void => {
      let i = heap.length;
      heap.push(v);
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p]! <= v) break;
        heap[i] = heap[p]!;
        i = p;
      }
      heap[i] = v;
    };
    const pop = (): number => {
      const top = heap[0]!;
      const last = heap.pop()!;
      if (heap.length > 0) {
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= heap.length) break;
          const c = l + 1 < heap.length && heap[l + 1]! < heap[l]! ? l + 1 : l;
          if (heap[c]! >= last) break;
          heap[i] = heap[c]!;
          i = c;
        }
        heap[i] = last;
      }
      return top;
    };
    const rankAt = (p: number): number => {
      const q = next[p]!;
      if (q < 0) return -1;
      const k = lookup(toks[p]!, toks[q]!);
      return k < 0 ? -1 : table[k + 2]!;
    };
    const offer = (p: number): void => {
      const r = rankAt(p);
      if (r >= 0) push(r * 4294967296 + p);
    };
    for (let i = 0; i + 1 < n; i++) offer(i);
    while (heap.length > 0) {
      const v = pop();
      const p = v % 4294967296;
      const r = (v - p) / 4294967296;
      if (!alive[p] || rankAt(p) !== r) continue; // stale: the pair at p changed since it was queued
      const q = next[p]!;
      toks[p] = table[lookup(toks[p]!, toks[q]!) + 3]!;
      alive[q] = 0;
      next[p] = next[q]!;
      if (next[q]! >= 0) prev[next[q]!] = p;
      if (prev[p]! >= 0) offer(prev[p]!);
      offer(p);
    }
    const out: number[] = [];
    for (let p = 0; p >= 0; p = next[p]!) out.push(toks[p]!);
    return out;
  };

  const bpe = (piece: string): number[] => {
    const n = utf8(piece);
    if (n === 1) return [byteIds[bytes[0]!]!];
    if (spec.ignoreMerges) {
      let s = '';
      for (let i = 0; i < n; i++) s += byteChars[bytes[i]!];
      const id = vocab.get(s);
      if (id !== undefined) return [id];
    }
    if (toks.length < n) {
      toks = new Int32Array(n);
      ranks = new Int32Array(n);
      slots = new Int32Array(n);
    }
    for (let i = 0; i < n; i++) toks[i] = byteIds[bytes[i]!]!;
    return n <= SMALL_WORD ? mergeSmall(n) : mergeLarge(n);
  };

  // ---- pre-tokens, cached ------------------------------------------------------------------------------------
  let cache = new Map<string, number[]>();
  let older = new Map<string, number[]>();
  const piece = (p: string, out: number[]): void => {
    let ids = cache.get(p);
    if (ids === undefined) {
      ids = older.get(p);
      if (ids === undefined) ids = bpe(p);
      if (p.length <= MAX_CACHED_CHARS) {
        if (cache.size >= spec.cacheSize) {
          older = cache;
          cache = new Map();
        }
        cache.set(p, ids);
      }
    }
    for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
  };

  /** regex_split (Split 'Isolated') or String.match (ByteLevel's regex): same matches, same empty-match steps. */
  const preTokenize = (text: string, out: number[]): void => {
    if (spec.addPrefixSpace && !text.startsWith(' ')) text = ' ' + text;
    const len = text.length;
    let li = 0;
    let prev = 0;
    for (;;) {
      let start: number;
      let end: number;
      sticky.lastIndex = li;
      if (li <= len && sticky.test(text)) {
        start = li;
        end = sticky.lastIndex;
      } else {
        glob.lastIndex = li;
        const m = glob.exec(text);
        if (m === null) break;
        start = m.index;
        end = start + m[0].length;
      }
      if (spec.keepGaps && prev < start) piece(text.slice(prev, start), out);
      if (end > start) {
        piece(text.slice(start, end), out);
        li = end;
      } else {
        const c = text.charCodeAt(start);
        li = unicode && c >= 0xd800 && c <= 0xdbff && start + 1 < len && (text.charCodeAt(start + 1) & 0xfc00) === 0xdc00 ? start + 2 : start + 1;
      }
      prev = end;
    }
    if (spec.keepGaps && prev < len) piece(text.slice(prev), out);
  };

  /** One section between raw added tokens: normalize, split on normalized added tokens, pre-tokenize, BPE. */
  const section = (text: string, out: number[]): void => {
    if (spec.nfc) {
      text = text.normalize('NFC');
      if (text.length === 0) return;
    }
    const subs = split(normSplitter, text);
    if (subs === null) {
      // The engine checks the normalized text against every added token too (NFC may have produced one).
      const t = spec.nfc ? added.get(text) : undefined;
      if (t !== undefined) out.push(t.id);
      else preTokenize(text, out);
      return;
    }
    strip(subs);
    for (const s of subs) {
      if (s.length === 0) continue;
      const t = added.get(s);
      if (t !== undefined) out.push(t.id);
      else preTokenize(s, out);
    }
  };

  const encode = (text: string, addSpecialTokens: boolean): number[] => {
    const out: number[] = addSpecialTokens ? spec.prefix.slice() : spec.prefixNoSpecial.slice();
    const sections = split(rawSplitter, text) ?? (text.length > 0 ? [text] : []);
    if (sections.length > 1) strip(sections);
    for (const s of sections) {
      if (s.length === 0) continue;
      const t = added.get(s);
      if (t !== undefined) out.push(t.id);
      else section(s, out);
    }
    for (const id of addSpecialTokens ? spec.suffix : spec.suffixNoSpecial) out.push(id);
    return out;
  };

  return { encode };
}
