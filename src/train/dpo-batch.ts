// Preference pairs → ONE concatenated batch, as TRL's DataCollatorForPreference + concatenated forward lay it
// out: 2P rows, the chosen sequences (prompt + chosen) in rows 0..P−1 and the rejected ones (prompt +
// rejected) in rows P..2P−1, each right-padded to T, positions 0..T−1. Targets (shifted labels) count the
// completion tokens only; the loss and metrics see pairs through `pair_mask` [P] (0 for the padding pairs
// of a short last batch, whose rows are fully masked). Used by DPO and ORPO.
// With `nllOverPrompt` (ORPO with TRL's code semantics) the chosen rows' targets also cover the prompt, and
// `responseMask` [2P, T] marks the completion targets the log-probs sum over.
// Not here: tokenization (preference-data.ts), the objectives.

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { IGNORE_INDEX } from '../nn/loss.js';
import type { BatchFeeds } from '../models/index.js';
import type { CollatedBatch } from './collator.js';

export interface PairIds {
  promptIds: readonly number[];
  chosenIds: readonly number[];
  rejectedIds: readonly number[];
}

export interface PreferenceBatch {
  batch: CollatedBatch;
  /** Pairs in the graph (B = 2P). */
  P: number;
  /** Real pairs (≤ P). */
  numPairs: number;
  pairMask: Tensor<'float32'>;
  /** Completion targets, shifted like the targets: [2P, T] (only with nllOverPrompt). */
  responseMask?: Tensor<'float32'>;
  /** Targets counted by the NLL over the chosen rows (ORPO). */
  chosenNllTokens: number;
}

export interface PreferenceCollateOptions {
  /** Pairs per graph (rows = 2P); fewer examples leave padding pairs. */
  P: number;
  padTokenId: number;
  padToMultipleOf?: number;
  /** Chosen rows' targets include the prompt (ORPO `orpoNllOverPrompt`). */
  nllOverPrompt?: boolean;
}

export function collatePreferences(examples: readonly PairIds[], o: PreferenceCollateOptions): PreferenceBatch {
  const n = examples.length;
  const P = o.P;
  if (n === 0) throw new TsFinetuneError('INVALID_ARGUMENT', 'collatePreferences: empty batch');
  if (n > P) throw new TsFinetuneError('INVALID_ARGUMENT', `collatePreferences: ${n} pairs for a graph of ${P}`);
  const B = 2 * P;
  const seqs: { ids: number[]; promptLen: number }[] = [];
  for (const e of examples) seqs.push({ ids: [...e.promptIds, ...e.chosenIds], promptLen: e.promptIds.length });
  const rejected = examples.map((e) => ({ ids: [...e.promptIds, ...e.rejectedIds], promptLen: e.promptIds.length }));
  const rowOf = (k: number, half: 0 | 1): number => half * P + k;
  const mult = Math.max(1, o.padToMultipleOf ?? 1);
  const longest = Math.max(...seqs.map((s) => s.ids.length), ...rejected.map((s) => s.ids.length));
  const T = Math.ceil(longest / mult) * mult;
  const ids = new BigInt64Array(B * T).fill(BigInt(o.padTokenId));
  const mask = new BigInt64Array(B * T);
  const pos = new BigInt64Array(B * T);
  for (let i = 0; i < B * T; i++) pos[i] = BigInt(i % T);
  const targets = new BigInt64Array(B * T).fill(BigInt(IGNORE_INDEX));
  const response = o.nllOverPrompt ? new Float32Array(B * T) : undefined;
  let numTokens = 0;
  let numLabelTokens = 0;
  let chosenNllTokens = 0;
  const place = (s: { ids: number[]; promptLen: number }, b: number, chosen: boolean): void => {
    const base = b * T;
    s.ids.forEach((id, t) => {
      ids[base + t] = BigInt(id);
      mask[base + t] = 1n;
    });
    numTokens += s.ids.length;
    // targets[t] = ids[t + 1]: a completion token t + 1 ≥ promptLen counts; with nllOverPrompt every chosen token does.
    for (let t = 0; t + 1 < s.ids.length; t++) {
      const isCompletion = t + 1 >= s.promptLen;
      if (isCompletion || (chosen && o.nllOverPrompt)) {
        targets[base + t] = BigInt(s.ids[t + 1]!);
        numLabelTokens++;
        if (chosen) chosenNllTokens++;
      }
      if (response && isCompletion) response[base + t] = 1;
    }
  };
  seqs.forEach((s, k) => place(s, rowOf(k, 0), true));
  rejected.forEach((s, k) => place(s, rowOf(k, 1), false));
  // Padding pairs: fully masked rows; one valid key so no softmax row is all −inf (as collate.ts does).
  for (let k = n; k < P; k++) for (const half of [0, 1] as const) mask[rowOf(k, half) * T] = 1n;
  const pairMask = new Float32Array(P);
  pairMask.fill(1, 0, n);
  const feeds: BatchFeeds = { inputIds: ids, attentionMask: mask, positionIds: pos, targets };
  const out: PreferenceBatch = {
    batch: { feeds, B, T, numLabelTokens, numTokens, packed: false },
    P,
    numPairs: n,
    pairMask: new Tensor('float32', [P], pairMask),
    chosenNllTokens,
  };
  if (response) out.responseMask = new Tensor('float32', [B, T], response);
  return out;
}
