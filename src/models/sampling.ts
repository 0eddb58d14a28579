// Choosing the next token from one row of logits, as transformers' generate does: greedy = argmax of the
// raw logits; sampling = the logits warpers in HF's order (temperature → top-k → top-p, each skipped at
// its neutral value), softmax, then one multinomial draw from the seeded `Rng` of src/core (same seed,
// same tokens; not torch's generator, so the draws differ from PyTorch's).
// Follows transformers generation/logits_process.py (TemperatureLogitsWarper, TopKLogitsWarper,
// TopPLogitsWarper with min_tokens_to_keep = 1) and GenerationConfig's defaults (top_k = 50).
// Not here: repetition penalties, min_p / typical / beam search; the decode loop (generate.ts).

import { TsFinetuneError } from '../core/errors.js';
import type { Rng } from '../core/rng.js';

export interface SamplingOptions {
  /** Sample (true) or take the argmax (false, default). */
  doSample?: boolean;
  /** Divides the logits before sampling (> 0; 1 = unchanged). */
  temperature?: number;
  /** Keep the k most likely tokens (0 = all; transformers' default 50 when sampling). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = all). */
  topP?: number;
}

/** transformers' GenerationConfig default for top_k (applies when sampling and topK is not given). */
export const DEFAULT_TOP_K = 50;

/** Validate like GenerationConfig.validate / the warpers' constructors, naming the option. */
export function checkSamplingOptions(o: SamplingOptions): void {
  const bad = (key: string, msg: string, v: unknown): never => {
    throw new TsFinetuneError('INVALID_ARGUMENT', `generate: '${key}' ${msg}, got ${String(v)}`, { key, value: v });
  };
  if (o.temperature !== undefined && !(Number.isFinite(o.temperature) && o.temperature > 0)) bad('temperature', 'must be a strictly positive number', o.temperature);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) bad('topK', 'must be a non-negative integer', o.topK);
  if (o.topP !== undefined && !(Number.isFinite(o.topP) && o.topP > 0 && o.topP <= 1)) bad('topP', 'must be a number in (0, 1]', o.topP);
}

/** Index of the largest value (the first one on ties, like torch.argmax). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  let max = row[0]!;
  for (let i = 1; i < row.length; i++) {
    if (row[i]! > max) {
      max = row[i]!;
      best = i;
    }
  }
  return best;
}

/**
 * The warped scores of one row (a new array; removed tokens are −Infinity): temperature, then top-k,
 * then top-p, each only when it changes something (HF's `_get_logits_processor` conditions).
 */
export function warpLogits(row: ArrayLike<number>, o: SamplingOptions): Float64Array {
  const V = row.length;
  const scores = Float64Array.from(row as ArrayLike<number>);
  const temperature = o.temperature ?? 1;
  if (temperature !== 1) for (let i = 0; i < V; i++) scores[i] = scores[i]! / temperature;
  const topK = Math.min(o.topK ?? DEFAULT_TOP_K, V);
  if (topK > 0 && topK < V) {
    // HF: indices_to_remove = scores < topk(scores, k).values[-1] — ties with the k-th value are kept.
    const kth = scores.slice().sort()[V - topK]!; // typed-array sort: numeric, ascending
    for (let i = 0; i < V; i++) if (scores[i]! < kth) scores[i] = -Infinity;
  }
  const topP = o.topP ?? 1;
  if (topP < 1) {
    // HF: sort ascending, cumulative softmax; drop tokens whose cumulative probability is ≤ 1 − p,
    // always keeping the most likely one. Tokens already at −Infinity have probability 0 and sort
    // first, so leaving them out of the sort changes nothing (and after top-k it is a short list).
    const order: number[] = [];
    for (let i = 0; i < V; i++) if (scores[i] !== -Infinity) order.push(i);
    order.sort((a, b) => scores[a]! - scores[b]!);
    const probs = softmax(order.map((i) => scores[i]!));
    let cum = 0;
    for (let r = 0; r < order.length - 1; r++) {
      cum += probs[r]!;
      if (cum <= 1 - topP) scores[order[r]!] = -Infinity;
    }
  }
  return scores;
}

/** softmax in float64 (−Infinity → exactly 0). */
export function softmax(x: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i]! > max) max = x[i]!;
  const out = new Float64Array(x.length);
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    const e = x[i]! === -Infinity ? 0 : Math.exp(x[i]! - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < x.length; i++) out[i] = out[i]! / sum;
  return out;
}

/** One draw from `probs` (torch.multinomial(probs, 1)) with one uniform from `rng`. */
export function multinomial(probs: ArrayLike<number>, rng: Rng): number {
  const u = rng.random();
  let cum = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i]! <= 0) continue;
    cum += probs[i]!;
    last = i;
    if (u < cum) return i;
  }
  return last; // u landed in the rounding slack above the final cumulative sum
}

/** The next token of one row: argmax, or a draw from the warped distribution. */
export function nextToken(row: ArrayLike<number>, o: SamplingOptions, rng: Rng | undefined): number {
  if (!o.doSample) return argmax(row);
  if (!rng) throw new TsFinetuneError('INVALID_ARGUMENT', 'nextToken: sampling needs an Rng');
  return multinomial(softmax(warpLogits(row, o)), rng);
}
