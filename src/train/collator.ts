// Batching tokenized examples into the int64 [B, T] arrays a step graph takes (TRL's
// DataCollatorForLanguageModeling): right padding with the pad id, labels padded with −100 (never with
// the pad id, so pad = eos does not hide the real EOS), attention mask 0 on padding, positions 0..T−1.
// T is rounded up to a multiple of `padToMultipleOf`, because every new T compiles a new static graph.

import { TsFinetuneError } from '../core/errors.js';
import { shiftLabels } from '../nn/loss.js';
import type { BatchFeeds } from '../models/index.js';

export interface TokenizedExample {
  inputIds: number[];
  /** −100 where the loss ignores the token. */
  labels: number[];
  positionIds?: number[];
  documentIds?: number[];
  /** The dataset rows it came from (several when packed), for error messages. */
  sourceRows?: number[];
}

export interface CollatedBatch {
  feeds: BatchFeeds;
  B: number;
  T: number;
  /** Label tokens that count for the loss (after the shift). */
  numLabelTokens: number;
  /** Real (non-padding) tokens. */
  numTokens: number;
  packed: boolean;
}

export function collate(
  examples: readonly TokenizedExample[],
  opts: { padTokenId: number; padToMultipleOf?: number; maxLength?: number; B?: number },
): CollatedBatch {
  if (examples.length === 0) throw new TsFinetuneError('INVALID_ARGUMENT', 'collate: empty batch');
  const mult = Math.max(1, opts.padToMultipleOf ?? 1);
  const longest = Math.max(...examples.map((e) => e.inputIds.length));
  let T = Math.ceil(longest / mult) * mult;
  if (opts.maxLength !== undefined) T = Math.min(T, Math.max(opts.maxLength, longest));
  const B = opts.B ?? examples.length;
  const packed = examples.some((e) => e.documentIds !== undefined);
  const ids = new BigInt64Array(B * T).fill(BigInt(opts.padTokenId));
  const mask = new BigInt64Array(B * T);
  const pos = new BigInt64Array(B * T);
  const labels = new Array<number>(B * T).fill(-100);
  const docs = packed ? new BigInt64Array(B * T).fill(-1n) : undefined;
  let numTokens = 0;
  examples.forEach((e, b) => {
    if (e.labels.length !== e.inputIds.length) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `collate: example ${b} has ${e.inputIds.length} ids but ${e.labels.length} labels`);
    }
    for (let t = 0; t < T; t++) pos[b * T + t] = BigInt(t);
    e.inputIds.forEach((id, t) => {
      ids[b * T + t] = BigInt(id);
      mask[b * T + t] = 1n;
      labels[b * T + t] = e.labels[t]!;
      if (e.positionIds) pos[b * T + t] = BigInt(e.positionIds[t]!);
      if (docs) docs[b * T + t] = BigInt(e.documentIds?.[t] ?? 0);
    });
    numTokens += e.inputIds.length;
  });
  // Rows beyond the examples (a short last batch padded to the graph's B) stay fully masked; give their
  // first key a valid mask so no softmax row is all −inf, but no label counts.
  for (let b = examples.length; b < B; b++) {
    mask[b * T] = 1n;
    for (let t = 0; t < T; t++) pos[b * T + t] = BigInt(t);
  }
  const targets = shiftLabels(labels, B, T);
  if (docs) {
    // A target in the next document is not a prediction of this one: shift + document boundary.
    for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) if (docs[b * T + t] !== docs[b * T + t + 1]) targets[b * T + t] = -100n;
  }
  let numLabelTokens = 0;
  for (const v of targets) if (v !== -100n) numLabelTokens++;
  const feeds: BatchFeeds = { inputIds: ids, attentionMask: mask, positionIds: pos, targets };
  if (docs) feeds.documentIds = docs;
  return { feeds, B, T, numLabelTokens, numTokens, packed };
}
