// generate(): transformers' `model.generate` for decoder-only models with a KV cache — greedy or sampled
// decoding of a batch of (left-padded) prompts, stopping per row at EOS (finished rows are filled with the
// pad token) or after maxNewTokens. Returns prompt + new tokens per row, as transformers does.
// Semantics follow transformers generation/utils.py (`_prepare_attention_mask_for_generation`,
// `_prepare_special_tokens`, `_sample`): the attention mask is inferred from the pad token when not given,
// position ids are cumsum(attention_mask) − 1 (padding positions 1), pad defaults to the first EOS id.
// Greedy output equals the step-wise argmax of `forward` on the growing sequence (test/models/generate.test.ts).
// Not here: the graphs and the host cache (kv-cache.ts), token choice (sampling.ts);
// beam search, repetition penalties and stop strings.

import { TsFinetuneError, closestName } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { toIdBatch, type IdsInput } from './batch.js';
import { HostKvCache, kvProgram, paramsFeed, type GenerationModel, type KvProgram } from './kv-cache.js';
import { checkSamplingOptions, nextToken, type SamplingOptions } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  /** Tokens to generate after the prompt (default 20). */
  maxNewTokens?: number;
  /** Stop a row when it emits one of these (default: the model config's eos_token_id; null = never). */
  eosTokenId?: number | number[] | null;
  /** Fills finished rows and marks padding (default: the config's pad_token_id, else the first EOS id). */
  padTokenId?: number;
  /** Seed of the sampling Rng (default: a random seed; same seed → same tokens). */
  seed?: number;
  /** [B, T] 1 = real token, 0 = padding (left padding). Default: inferred from padTokenId, as transformers. */
  attentionMask?: IdsInput;
  /** Called after each step with the token chosen for every row (padTokenId for finished rows). */
  onStep?: (tokens: readonly number[], step: number) => void;
}

const KNOWN: readonly (keyof GenerateOptions)[] = [
  'maxNewTokens',
  'doSample',
  'temperature',
  'topK',
  'topP',
  'eosTokenId',
  'padTokenId',
  'seed',
  'attentionMask',
  'onStep',
];

/** Decode caches are allocated in multiples of this many slots, so nearby lengths share one session. */
const SLOT_BUCKET = 32;

/**
 * Generate continuations of `inputIds` ([B, T] or one row). Works for a CausalLM and for any model whose
 * `buildLogits` passes the decoder inputs through (PeftModel: adapters applied).
 * @example
 * const out = await model.generate([[1, 15, 27]], { maxNewTokens: 8 }); // greedy
 * const s = await model.generate(ids, { doSample: true, temperature: 0.7, topP: 0.9, seed: 0 });
 */
export async function generate(model: GenerationModel, inputIds: IdsInput, opts: GenerateOptions = {}): Promise<number[][]> {
  checkOptions(opts);
  const cfg = model.config;
  const V = cfg.vocabSize;
  const ids = toIdBatch(inputIds);
  const { B, T: Tp } = ids;
  if (B === 0 || Tp === 0) throw new TsFinetuneError('INVALID_ARGUMENT', `generate: inputIds is [${B}, ${Tp}]: need at least one token per row`);
  for (let i = 0; i < ids.data.length; i++) {
    const t = ids.data[i]!;
    if (t < 0n || t >= BigInt(V)) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `generate: inputIds[${Math.floor(i / Tp)}][${i % Tp}] = ${t} is outside the vocabulary [0, ${V})`);
    }
  }
  const maxNew = opts.maxNewTokens ?? 20;
  const eos = eosList(opts.eosTokenId === undefined ? cfg.eosTokenId : opts.eosTokenId);
  const pad = opts.padTokenId ?? cfg.padTokenId ?? eos[0];
  const mask = attentionMaskFor(ids.data, B, Tp, opts.attentionMask, pad, eos);
  if (B > 1 && Array.from({ length: B }, (_, b) => mask[b * Tp + Tp - 1]).some((m) => m === 0n)) {
    console.warn('[ts-finetune] generate: right-padding was detected; decoder-only models need left padding (tokenizer.paddingSide = "left") for correct results.');
  }
  // transformers: position_ids = cumsum(mask) − 1, padding positions set to 1; `real` = tokens per row.
  const positions = new BigInt64Array(B * Tp);
  const real = new Array<number>(B).fill(0);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < Tp; t++) {
      const on = mask[b * Tp + t] === 1n;
      if (on) real[b]!++;
      positions[b * Tp + t] = on ? BigInt(real[b]! - 1) : 1n;
    }
    if (real[b] === 0) throw new TsFinetuneError('INVALID_ARGUMENT', `generate: row ${b} of attentionMask has no real token`);
  }
  const rows: number[][] = Array.from({ length: B }, (_, b) => Array.from(ids.data.subarray(b * Tp, (b + 1) * Tp), Number));
  if (maxNew === 0) return rows;

  const S = Math.ceil((Tp + maxNew - 1) / SLOT_BUCKET) * SLOT_BUCKET;
  const prefill = await kvProgram(model, { B, T: Tp, S: 0 });
  // Compile the decode graph while the prompt runs (session creation is asynchronous in ORT).
  const decode: Promise<KvProgram> | undefined = maxNew > 1 ? kvProgram(model, { B, T: 1, S }) : undefined;
  decode?.catch(() => undefined); // awaited below; do not let an early failure go unhandled
  const params = paramsFeed(model, prefill.layout);
  const pre = await prefill.run({
    ...params,
    input_ids: new Tensor('int64', [B, Tp], ids.data),
    attention_mask: new Tensor('int64', [B, Tp], mask),
    position_ids: new Tensor('int64', [B, Tp], positions),
  });

  const cache = new HostKvCache(cfg.numHiddenLayers, B, cfg.numKeyValueHeads, S, cfg.headDim);
  pre.present.forEach((p, i) => cache.write(i, 0, Tp, p.key, p.value));
  cache.fill(0, Tp, mask);

  const sampling: SamplingOptions = { doSample: opts.doSample ?? false };
  if (opts.temperature !== undefined) sampling.temperature = opts.temperature;
  if (opts.topK !== undefined) sampling.topK = opts.topK;
  if (opts.topP !== undefined) sampling.topP = opts.topP;
  const rng = sampling.doSample ? new Rng(opts.seed ?? Math.floor(Math.random() * 2 ** 32)) : undefined;
  const finished = new Array<boolean>(B).fill(false);
  const tokens = new BigInt64Array(B);
  const stepPositions = new BigInt64Array(B);
  let logits = pre.logits; // [B, 1, V]
  for (let step = 0; step < maxNew; step++) {
    const chosen: number[] = [];
    for (let b = 0; b < B; b++) {
      // Every row draws (finished ones too), as torch.multinomial does over the batch: a row's draws do
      // not depend on when the others finish.
      const t = nextToken(logits.subarray(b * V, (b + 1) * V), sampling, rng);
      chosen.push(finished[b] ? pad! : t);
    }
    chosen.forEach((t, b) => {
      rows[b]!.push(t);
      if (eos.includes(t)) finished[b] = true;
    });
    opts.onStep?.(chosen, step);
    if (step === maxNew - 1 || finished.every(Boolean)) break;

    const prog = await decode!;
    const slot = Tp + step;
    for (let b = 0; b < B; b++) {
      tokens[b] = BigInt(chosen[b]!);
      stepPositions[b] = BigInt(real[b]! + step);
    }
    const out = await prog.run({
      ...params,
      ...cache.feeds,
      input_ids: new Tensor('int64', [B, 1], tokens),
      position_ids: new Tensor('int64', [B, 1], stepPositions),
    });
    out.present.forEach((p, i) => cache.write(i, slot, 1, p.key, p.value));
    cache.fill(slot, 1);
    logits = out.logits;
  }
  return rows;
}

function checkOptions(opts: GenerateOptions): void {
  if (typeof opts !== 'object' || opts === null) throw new TsFinetuneError('INVALID_ARGUMENT', 'generate: options must be an object');
  for (const k of Object.keys(opts)) {
    if (!(KNOWN as readonly string[]).includes(k)) {
      const near = closestName(k, KNOWN);
      throw new TsFinetuneError('UNKNOWN_CONFIG_KEY', `generate: unknown option '${k}'${near ? ` (did you mean '${near}'?)` : ''}`, { key: k });
    }
  }
  const n = opts.maxNewTokens;
  if (n !== undefined && !(Number.isInteger(n) && n >= 0)) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `generate: 'maxNewTokens' must be a non-negative integer, got ${String(n)}`, { key: 'maxNewTokens' });
  }
  for (const k of ['padTokenId', 'seed'] as const) {
    const v = opts[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= 0)) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `generate: '${k}' must be a non-negative integer, got ${String(v)}`, { key: k });
    }
  }
  checkSamplingOptions(opts);
}

function eosList(e: number | number[] | null | undefined): number[] {
  if (e === null || e === undefined) return [];
  const list = Array.isArray(e) ? e : [e];
  for (const t of list) {
    if (!Number.isInteger(t) || t < 0) throw new TsFinetuneError('INVALID_ARGUMENT', `generate: eosTokenId must be non-negative integers, got ${String(t)}`);
  }
  return list;
}

/** The given mask (checked), or transformers' inference: ids ≠ pad when pad occurs and is not an EOS id. */
function attentionMaskFor(ids: BigInt64Array, B: number, T: number, given: IdsInput | undefined, pad: number | undefined, eos: readonly number[]): BigInt64Array {
  if (given !== undefined) {
    const m = toIdBatch(given, 'attentionMask');
    if (m.B !== B || m.T !== T) throw new TsFinetuneError('SHAPE_MISMATCH', `generate: attentionMask is [${m.B}, ${m.T}], inputIds is [${B}, ${T}]`);
    const i = m.data.findIndex((v) => v !== 0n && v !== 1n);
    if (i >= 0) throw new TsFinetuneError('INVALID_ARGUMENT', `generate: attentionMask[${Math.floor(i / T)}][${i % T}] is ${m.data[i]}; it must be 0 or 1`);
    return m.data;
  }
  const ones = new BigInt64Array(B * T).fill(1n);
  if (pad === undefined || eos.includes(pad)) return ones;
  const p = BigInt(pad);
  if (!ids.includes(p)) return ones;
  return ids.map((t) => (t === p ? 0n : 1n));
}
