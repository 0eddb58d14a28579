// Token log-probabilities and the causal-LM loss (transformers' ForCausalLMLoss): logits[:, t] predicts
// labels[:, t+1]; label -100 is ignored. The shift happens on the host (`shiftLabels`), so the graph
// sees aligned targets [B, T] whose last column is -100.
// Formulation from DESIGN.md's measurements: LogSoftmax over V + GatherElements at the targets
// (SoftmaxCrossEntropyLoss and one-hots were slower). The loss is returned as a SUM with the count of
// label tokens, so gradient accumulation can divide by the tokens of the whole accumulated batch.

import { op, type Value } from '../graph/index.js';

export const IGNORE_INDEX = -100;

/** labels [B, T] → targets [B, T] with targets[b, t] = labels[b, t+1] and the last column -100. */
export function shiftLabels(labels: BigInt64Array | Int32Array | number[], B: number, T: number): BigInt64Array {
  const out = new BigInt64Array(B * T).fill(BigInt(IGNORE_INDEX));
  for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) out[b * T + t] = BigInt(labels[b * T + t + 1]!);
  return out;
}

export interface TokenScores {
  /** log p(target) per position, 0 where ignored: [B, T]. */
  logProbs: Value;
  /** 1 where the target counts, else 0: [B, T] float. */
  valid: Value;
  /** 1 where argmax(logits) = target (and valid): [B, T] float. */
  correct: Value;
}

/** logits [B, T, V], targets [B, T] int64 (−100 = ignore). */
export function tokenScores(logits: Value, targets: Value): TokenScores {
  const logp = op.LogSoftmax(logits, -1); // [B, T, V]
  const validB = op.Not(op.Equal(targets, IGNORE_INDEX)); // [B, T]
  const valid = op.Cast(validB, 'float32');
  const safe = op.Where(validB, targets, 0); // ignored → index 0, masked below
  const idx = op.Unsqueeze(safe, [-1]); // [B, T, 1]
  const picked = op.Squeeze(op.GatherElements(logp, idx, -1), [-1]); // [B, T]
  const logProbs = op.Mul(picked, valid);
  const best = op.Squeeze(op.ReduceMax(logp, [-1]), [-1]); // [B, T]
  const correct = op.Mul(op.Cast(op.GreaterOrEqual(picked, best), 'float32'), valid);
  return { logProbs, valid, correct };
}

export interface LmLoss {
  /** Σ −log p over counted tokens (scalar). */
  lossSum: Value;
  /** Number of counted tokens (scalar float). */
  count: Value;
  /** Number of counted tokens predicted exactly by argmax (scalar float). */
  correct: Value;
}

export function causalLmLoss(logits: Value, targets: Value): LmLoss {
  const s = tokenScores(logits, targets);
  return {
    lossSum: op.Neg(op.ReduceSum(s.logProbs, undefined, false)),
    count: op.ReduceSum(s.valid, undefined, false),
    correct: op.ReduceSum(s.correct, undefined, false),
  };
}
