// The tokenizer users hold: a callable object (`tokenizer(texts, { padding, truncation, maxLength })`, as in
// Python) with encode/decode, settable special tokens (`tokenizer.padToken = tokenizer.eosToken`), padding and
// truncation sides, chat templates, prompt/completion masks and savePretrained.
// Encoding is our byte-level BPE encoder (fast-bpe.ts) where the tokenizer.json is one it reproduces exactly
// (Llama-3, Qwen2/3, GPT-2 style; chosen per file in fast-bpe-plan.ts), else @huggingface/tokenizers; both give
// the ids of transformers' fast tokenizers. Decoding and vocabulary look-ups are the engine's. Large batches go
// to a worker pool (worker-pool.ts) running the same encoder, with identical ids.
// Not here: file reading (tokenizer-files.ts), chat rendering (apply-chat-template.ts), saving (save.ts).
// Follows transformers `tokenization_utils_base.py` / `tokenization_utils_fast.py`.

import { Tokenizer as Engine } from '@huggingface/tokenizers';
import { TsFinetuneError } from '../core/index.js';
import { applyChatTemplate as applyChatTemplateImpl } from './apply-chat-template.js';
import { encodePromptCompletion as encodePromptCompletionImpl } from './completion-mask.js';
import { checkSide, resolveStrategy, truncateAndPad, type PadContext, type PadTruncRequest } from './padding.js';
import { createFastBpe, type FastBpe } from './fast-bpe.js';
import { planEncoder, type FastBpeSpec } from './fast-bpe-plan.js';
import { saveTokenizer } from './save.js';
import { SPECIAL_TOKEN_KEYS, tokenContent, type SpecialTokenKey, type TokenizerFiles } from './tokenizer-files.js';
import type {
  ApplyChatTemplateOptions,
  BatchChatEncoding,
  BatchEncoding,
  ChatEncoding,
  ChatMessage,
  DecodeOptions,
  EncodeOptions,
  Encoding,
  PromptCompletionEncoding,
  PromptCompletionOptions,
  Side,
  TokenizerCallOptions,
} from './types.js';
import { defaultWorkerCount, EncodePool, type PoolJobStats, type PoolSource } from './worker-pool.js';

// A class whose instances are functions, so `tokenizer(texts)` works like Python's `__call__`.
class CallableInstance {
  constructor() {
    const f = (...args: unknown[]): unknown => (f as unknown as { call_(...a: unknown[]): unknown }).call_(...args);
    return Object.setPrototypeOf(f, new.target.prototype) as CallableInstance;
  }
}
Object.setPrototypeOf(CallableInstance.prototype, Function.prototype);

// Declaration merging gives the class its call signatures; this is the one intended use of it here.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface PreTrainedTokenizer {
  /** Tokenize one text: `{ inputIds, attentionMask }` as flat arrays. */
  (text: string, options?: TokenizerCallOptions): Encoding;
  /** Tokenize a batch: one row per text (large batches run on the worker pool). */
  (texts: readonly string[], options?: TokenizerCallOptions): BatchEncoding;
  (input: string | readonly string[], options?: TokenizerCallOptions): Encoding | BatchEncoding;
}

/**
 * A Hugging Face fast tokenizer. Get one with `AutoTokenizer.fromPretrained(idOrDir)`.
 *
 * @example
 * const tokenizer = await AutoTokenizer.fromPretrained('Qwen/Qwen3-0.6B');
 * tokenizer.padToken = tokenizer.eosToken;
 * const { inputIds, attentionMask } = tokenizer(['Hello world', 'Hi'], { padding: true });
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class PreTrainedTokenizer extends CallableInstance {
  readonly nameOrPath: string;
  /** The @huggingface/tokenizers instance: decoding, vocabulary, `tokenize`, and encoding when `encoder` says so. */
  readonly engine: Engine;
  /**
   * Which encoder turns text into ids: 'fast-bpe' (ours, for byte-level BPE tokenizers such as Llama-3 and Qwen)
   * or 'huggingface' (@huggingface/tokenizers, for everything else). Same ids either way.
   */
  readonly encoder: 'fast-bpe' | 'huggingface';
  /** Why: the pipeline our encoder recognised, or the part of tokenizer.json it does not implement. */
  readonly encoderReason: string;
  /** The default chat template (settable, like `tokenizer.chat_template`). */
  chatTemplate: string | undefined;
  readonly namedChatTemplates: Record<string, string>;
  /** `model_max_length`; 1e30 means "no limit", as in transformers. */
  modelMaxLength: number;
  /** Batches at least this long are encoded on the worker pool. */
  parallelMinBatch = 256;
  /** Called for HF-style warnings (too-long rows, prompt/completion mismatch …). Default: console.warn. */
  onWarning: (message: string) => void = (m) => console.warn(`[ts-finetune] ${m}`);
  private paddingSide_: Side;
  private truncationSide_: Side;
  private readonly specials = new Map<SpecialTokenKey, string | null>();
  private readonly additionalSpecial: string[];
  private readonly files: TokenizerFiles;
  private readonly specialAdded: string[];
  private pool: EncodePool | undefined;
  private readonly fast: FastBpe | undefined;
  private readonly fastSpec: FastBpeSpec | undefined;
  private workers_: number = defaultWorkerCount();
  private vocabSize_: number | undefined;
  private length_: number | undefined;

  constructor(files: TokenizerFiles) {
    super();
    this.files = files;
    this.nameOrPath = files.nameOrPath;
    try {
      this.engine = new Engine(files.tokenizerJson, files.config);
    } catch (e) {
      throw new TsFinetuneError('TOKENIZER_ERROR', `Cannot build the tokenizer from ${files.tokenizerJsonPath ?? files.nameOrPath}: ${(e as Error).message}`, {}, { cause: e });
    }
    const plan =
      process.env.TS_FINETUNE_FAST_BPE === '0'
        ? { engine: 'huggingface' as const, reason: 'disabled by TS_FINETUNE_FAST_BPE=0' }
        : planEncoder(this.engine, files.tokenizerJson, files.config);
    this.encoder = plan.engine;
    if (plan.engine === 'fast-bpe') {
      this.fastSpec = plan.spec;
      this.fast = createFastBpe(plan.spec);
      this.encoderReason = plan.summary;
    } else this.encoderReason = plan.reason;
    const cfg = { ...files.config, ...files.specialTokensMap };
    for (const k of SPECIAL_TOKEN_KEYS) {
      const v = tokenContent(cfg[k]);
      this.specials.set(k, v === undefined ? null : v);
    }
    const extra = cfg.additional_special_tokens;
    this.additionalSpecial = Array.isArray(extra) ? extra.map(tokenContent).filter((t): t is string => typeof t === 'string') : [];
    this.chatTemplate = files.chatTemplate;
    this.namedChatTemplates = { ...files.namedChatTemplates };
    const mml = files.config.model_max_length;
    this.modelMaxLength = typeof mml === 'number' && mml > 0 ? mml : 1e30;
    this.paddingSide_ = files.config.padding_side === undefined ? 'right' : checkSide('padding_side', files.config.padding_side);
    this.truncationSide_ = files.config.truncation_side === undefined ? 'right' : checkSide('truncation_side', files.config.truncation_side);
    this.specialAdded = [...this.engine.get_added_tokens_decoder().values()].filter((t) => t.special).map((t) => t.content);
    // len(tokenizer): the function's own `length` is configurable, so it can become the vocabulary size.
    Object.defineProperty(this, 'length', { get: () => (this.length_ ??= this.engine.get_vocab(true).size), configurable: true });
  }

  /** `len(tokenizer)`: vocabulary size including added tokens. */
  declare readonly length: number;

  // ---- special tokens -------------------------------------------------------------------------------------

  private getSpecial(k: SpecialTokenKey): string | null {
    return this.specials.get(k) ?? null;
  }

  private setSpecial(k: SpecialTokenKey, v: string | null | undefined): void {
    if (v !== null && v !== undefined) {
      if (typeof v !== 'string') throw new TsFinetuneError('INVALID_ARGUMENT', `${k} must be a string or null, got ${typeof v}`);
      if (this.engine.token_to_id(v) === undefined) {
        throw new TsFinetuneError(
          'TOKENIZER_ERROR',
          `Cannot set ${k} to ${JSON.stringify(v)}: it is not a token of ${this.nameOrPath} (adding new tokens needs a ` +
            'resized embedding matrix; use an existing token such as tokenizer.eosToken)',
          { key: k, token: v },
        );
      }
    }
    this.specials.set(k, v ?? null);
  }

  private idOf(k: SpecialTokenKey): number | null {
    const t = this.getSpecial(k);
    return t === null ? null : (this.engine.token_to_id(t) ?? null);
  }

  get bosToken(): string | null { return this.getSpecial('bos_token'); }
  set bosToken(v: string | null) { this.setSpecial('bos_token', v); }
  get eosToken(): string | null { return this.getSpecial('eos_token'); }
  set eosToken(v: string | null) { this.setSpecial('eos_token', v); }
  get unkToken(): string | null { return this.getSpecial('unk_token'); }
  set unkToken(v: string | null) { this.setSpecial('unk_token', v); }
  get padToken(): string | null { return this.getSpecial('pad_token'); }
  set padToken(v: string | null) { this.setSpecial('pad_token', v); }
  get bosTokenId(): number | null { return this.idOf('bos_token'); }
  get eosTokenId(): number | null { return this.idOf('eos_token'); }
  get unkTokenId(): number | null { return this.idOf('unk_token'); }
  get padTokenId(): number | null { return this.idOf('pad_token'); }

  /** HF `special_tokens_map`: the set slots, plus `additional_special_tokens`. */
  get specialTokensMap(): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (const k of SPECIAL_TOKEN_KEYS) {
      const v = this.getSpecial(k);
      if (v !== null) out[k] = v;
    }
    if (this.additionalSpecial.length > 0) out.additional_special_tokens = [...this.additionalSpecial];
    return out;
  }

  /** Contents of every added token marked special (turn delimiters, EOS, image placeholders …). */
  get allSpecialTokens(): string[] {
    return [...this.specialAdded];
  }

  get allSpecialIds(): number[] {
    return this.specialAdded.map((t) => this.engine.token_to_id(t)!);
  }

  get paddingSide(): Side { return this.paddingSide_; }
  set paddingSide(v: Side) { this.paddingSide_ = checkSide('paddingSide', v); }
  get truncationSide(): Side { return this.truncationSide_; }
  set truncationSide(v: Side) { this.truncationSide_ = checkSide('truncationSide', v); }

  /** Number of worker threads for large batches (0 = never). Default: cores − 1, or TOKENIZERS_PARALLELISM=false → 0. */
  get numWorkers(): number { return this.workers_; }
  set numWorkers(n: number) {
    if (!Number.isInteger(n) || n < 0) throw new TsFinetuneError('INVALID_ARGUMENT', `numWorkers must be a non-negative integer, got ${n}`);
    if (n !== this.workers_) void this.dispose();
    this.workers_ = n;
  }

  /** Base vocabulary size (HF `vocab_size`: the model's vocabulary, without added tokens); `length` includes them. */
  get vocabSize(): number {
    if (this.vocabSize_ === undefined) {
      const v = (this.files.tokenizerJson.model as { vocab?: unknown }).vocab;
      this.vocabSize_ = Array.isArray(v) ? v.length : typeof v === 'object' && v !== null ? Object.keys(v).length : this.engine.get_vocab(false).size;
    }
    return this.vocabSize_;
  }

  /** The tokenizer_config.json this tokenizer was loaded from (read-only view). */
  get initConfig(): Readonly<Record<string, unknown>> {
    return this.files.config;
  }

  // ---- encoding -------------------------------------------------------------------------------------------

  private call_(input: string | readonly string[], options: TokenizerCallOptions = {}): Encoding | BatchEncoding {
    const single = typeof input === 'string';
    const texts = single ? [input] : input;
    if (!Array.isArray(texts)) throw new TsFinetuneError('INVALID_ARGUMENT', `tokenizer() takes a string or an array of strings, got ${typeof input}`);
    const rows = this.encodeMany(texts, options.addSpecialTokens ?? true);
    const { rows: ids, attentionMask } = this.finish(rows, [], options);
    if (options.returnAttentionMask === false) {
      return (single ? { inputIds: ids[0]! } : { inputIds: ids }) as Encoding | BatchEncoding;
    }
    return single ? { inputIds: ids[0]!, attentionMask: attentionMask[0]! } : { inputIds: ids, attentionMask };
  }

  /** Token ids of many texts, in order; on the worker pool when the batch is large. */
  encodeMany(texts: readonly string[], addSpecialTokens = true): number[][] {
    texts.forEach((t, i) => {
      if (typeof t !== 'string') {
        throw new TsFinetuneError('INVALID_ARGUMENT', `tokenizer input row ${i} is ${t === null ? 'null' : typeof t}, not a string`, { row: i });
      }
    });
    const fast = this.fast;
    const local = fast
      ? (t: string): number[] => fast.encode(t, addSpecialTokens)
      : (t: string): number[] => this.engine.encode(t, { add_special_tokens: addSpecialTokens }).ids;
    if (texts.length >= this.parallelMinBatch && this.workers_ > 0) {
      const pool = this.ensurePool();
      if (pool.size > 0) return pool.encode(texts, addSpecialTokens, local);
    }
    return texts.map(local);
  }

  private ensurePool(): EncodePool {
    if (this.pool) return this.pool;
    const source: PoolSource =
      this.fastSpec !== undefined
        ? { fastBpe: this.fastSpec, config: this.files.config }
        : this.files.tokenizerJsonPath !== undefined
          ? { tokenizerJsonPath: this.files.tokenizerJsonPath, config: this.files.config }
          : { tokenizerJson: this.files.tokenizerJson, config: this.files.config };
    try {
      this.pool = new EncodePool(source, this.workers_);
    } catch (e) {
      // No threads (sandbox, resource limits): stay correct on one thread.
      this.onWarning(`Could not start tokenizer worker threads (${(e as Error).message}); encoding on one thread.`);
      this.pool = new EncodePool(source, 0);
    }
    return this.pool;
  }

  /**
   * Start the worker threads now and wait until they have loaded the tokenizer (otherwise they start on the
   * first large batch, which then runs mostly on the calling thread). Resolves to the number of ready workers.
   */
  async startWorkers(): Promise<number> {
    if (this.workers_ === 0) return 0;
    const pool = this.ensurePool();
    await pool.whenReady();
    return pool.readyCount;
  }

  /** How the last pooled batch was shared between this thread and the workers (undefined before one ran). */
  get lastPoolStats(): PoolJobStats | undefined {
    return this.pool?.lastJob;
  }

  /** Truncate/pad `rows` (and aligned 0/1 masks in `extras`) per HF rules; used by every entry point. */
  finish(rows: number[][], extras: number[][][], req: PadTruncRequest): { rows: number[][]; attentionMask: number[][] } {
    const ctx: PadContext = {
      modelMaxLength: this.modelMaxLength,
      paddingSide: this.paddingSide_,
      truncationSide: this.truncationSide_,
      padTokenId: this.padTokenId,
      warn: (m) => this.onWarning(m),
    };
    const strategy = resolveStrategy(req, ctx);
    const attentionMask = truncateAndPad(rows, extras, strategy, ctx);
    return { rows, attentionMask };
  }

  /** Token ids of one text (HF `encode`). */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const r = this.call_(text, { ...options, returnAttentionMask: false }) as Encoding;
    return r.inputIds;
  }

  /** Token strings (HF `tokenize`), without special tokens unless asked. */
  tokenize(text: string, options: { addSpecialTokens?: boolean } = {}): string[] {
    return this.engine.tokenize(text, { add_special_tokens: options.addSpecialTokens ?? false });
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (ids.length === 0) return ''; // the engine rejects an empty list
    const o: { skip_special_tokens: boolean; clean_up_tokenization_spaces?: boolean } = { skip_special_tokens: options.skipSpecialTokens ?? false };
    if (options.cleanUpTokenizationSpaces !== undefined) o.clean_up_tokenization_spaces = options.cleanUpTokenizationSpaces;
    return this.engine.decode([...ids], o);
  }

  batchDecode(rows: readonly (readonly number[])[], options: DecodeOptions = {}): string[] {
    return rows.map((r) => this.decode(r, options));
  }

  convertTokensToIds(token: string): number | null;
  convertTokensToIds(tokens: readonly string[]): (number | null)[];
  convertTokensToIds(t: string | readonly string[]): number | null | (number | null)[] {
    const one = (s: string): number | null => this.engine.token_to_id(s) ?? this.unkTokenId;
    return typeof t === 'string' ? one(t) : t.map(one);
  }

  convertIdsToTokens(id: number): string | null;
  convertIdsToTokens(ids: readonly number[]): (string | null)[];
  convertIdsToTokens(i: number | readonly number[]): string | null | (string | null)[] {
    const one = (n: number): string | null => this.engine.id_to_token(n) ?? null;
    return typeof i === 'number' ? one(i) : i.map(one);
  }

  /** Token → id for the whole vocabulary, added tokens included. */
  getVocab(): Map<string, number> {
    return this.engine.get_vocab(true);
  }

  /** HF `pad`: pad already-encoded rows (e.g. in a collator). */
  pad(batch: { inputIds: number[][] }, options: Omit<PadTruncRequest, 'truncation'> = {}): BatchEncoding {
    const rows = batch.inputIds.map((r) => [...r]);
    const { rows: ids, attentionMask } = this.finish(rows, [], { padding: true, ...options, truncation: false });
    return { inputIds: ids, attentionMask };
  }

  // ---- chat, completion masks, saving ---------------------------------------------------------------------

  /**
   * Render a conversation (or a list of them) with the chat template, as transformers' `apply_chat_template`.
   *
   * @example
   * const text = tokenizer.applyChatTemplate(messages, { tokenize: false, addGenerationPrompt: true });
   * const { inputIds, assistantMasks } = tokenizer.applyChatTemplate(messages, { returnAssistantTokensMask: true });
   */
  applyChatTemplate(conversation: ChatMessage[], options: ApplyChatTemplateOptions & { tokenize: false }): string;
  applyChatTemplate(conversations: ChatMessage[][], options: ApplyChatTemplateOptions & { tokenize: false }): string[];
  applyChatTemplate(conversation: ChatMessage[], options: ApplyChatTemplateOptions & ({ returnDict: true } | { returnAssistantTokensMask: true })): ChatEncoding;
  applyChatTemplate(conversations: ChatMessage[][], options: ApplyChatTemplateOptions & ({ returnDict: true } | { returnAssistantTokensMask: true })): BatchChatEncoding;
  applyChatTemplate(conversation: ChatMessage[], options?: ApplyChatTemplateOptions): number[];
  applyChatTemplate(conversations: ChatMessage[][], options?: ApplyChatTemplateOptions): number[][];
  applyChatTemplate(conv: ChatMessage[] | ChatMessage[][], options: ApplyChatTemplateOptions = {}): unknown {
    return applyChatTemplateImpl(this, conv, options);
  }

  /** Tokenize a prompt/completion row with a completion mask (TRL completion-only loss). Plain text or messages. */
  encodePromptCompletion(prompt: string | ChatMessage[], completion: string | ChatMessage[], options: PromptCompletionOptions = {}): PromptCompletionEncoding {
    return encodePromptCompletionImpl(this, prompt, completion, options);
  }

  /** Write tokenizer.json, tokenizer_config.json, special_tokens_map.json and chat_template.jinja into `dir`. */
  async savePretrained(dir: string): Promise<string[]> {
    return saveTokenizer(this, this.files, dir);
  }

  /** Stop the worker threads (they are unref'd, so this is only needed to free their memory early). */
  async dispose(): Promise<void> {
    const p = this.pool;
    this.pool = undefined;
    if (p) await p.close();
  }
}
