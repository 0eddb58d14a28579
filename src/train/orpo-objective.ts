// The ORPO loss as a step-graph Objective (trl `experimental/orpo/orpo_trainer.py`, REFERENCE.md "TRL ORPO"),
// over the concatenated batch of dpo-batch.ts. No reference model:
//   ℓc, ℓr = per-token averaged log-probs over the response tokens;
//   log_odds = (ℓc − ℓr) − (log1mexp(ℓc) − log1mexp(ℓr)),  log1mexp(x) = log(1 − eˣ) computed stably;
//   loss = nll_chosen − mean(β · logσ(log_odds)).
// nll_chosen is the token mean of −log p over the chosen rows' targets, pooled over the whole accumulation
// group (× `nll_scale` = 1 / those tokens): the response tokens by default (**ours**, REFERENCE.md), or the
// prompt as well with `orpoNllOverPrompt` (TRL's code), where `response_mask` [2P, T] picks the response
// targets the log-probs average over. The odds-ratio term is Σ over real pairs × `loss_scale` (1 / pairs).

import { op, type Value } from '../graph/index.js';
import type { Objective } from '../models/index.js';
import { logSigmoid, maskedSum } from './dpo-objective.js';

export interface OrpoObjectiveOptions {
  beta: number;
  /** NLL over prompt + response of the chosen rows (TRL's code); needs the `response_mask` input. */
  nllOverPrompt?: boolean;
}

/**
 * log(1 − eˣ) for x < 0 without cancellation (Mächler 2012): log(−expm1(x)) near 0, log1p(−eˣ) below −ln 2.
 * ONNX has no expm1, so −expm1(x) = −tanh(x/2)·(eˣ + 1), exact in relative terms for small |x|. Each branch
 * sees its input clamped to its own half, so the branch Where discards has finite gradients (no 0·∞).
 */
export function log1mexp(x: Value): Value {
  const cut = -Math.LN2;
  const lo = op.Min(x, cut);
  const hi = op.Max(x, cut);
  const farBranch = op.Log(op.Sub(1, op.Exp(lo)));
  const nearBranch = op.Log(op.Mul(op.Neg(op.Tanh(op.Mul(hi, 0.5))), op.Add(op.Exp(hi), 1)));
  return op.Where(op.Less(x, cut), farBranch, nearBranch);
}

export function orpoObjective(o: OrpoObjectiveOptions): Objective {
  const beta = o.beta;
  return (ctx) => {
    const { B, T } = ctx;
    const P = B / 2;
    const pairMask = ctx.input('pair_mask', 'float32', [P]);
    const pairScale = ctx.input('loss_scale', 'float32', []);
    const nllScale = ctx.input('nll_scale', 'float32', []);
    const s = ctx.scores();
    const response = o.nllOverPrompt ? ctx.input('response_mask', 'float32', [B, T]) : s.valid;
    const respLogp = o.nllOverPrompt ? op.Mul(s.logProbs, response) : s.logProbs;
    const avg = op.Div(op.ReduceSum(respLogp, [1], false), op.Max(op.ReduceSum(response, [1], false), 1)); // [B]
    const [lc, lr] = op.Split(avg, [P, P], 0) as [Value, Value];
    // Padding pairs have ℓ = 0, where log1mexp is −∞: give them a harmless value (their terms are masked out).
    const real = op.Greater(pairMask, 0.5);
    const lcs = op.Where(real, lc, -1);
    const lrs = op.Where(real, lr, -1);
    const logOdds = op.Sub(op.Sub(lcs, lrs), op.Sub(log1mexp(lcs), log1mexp(lrs)));
    const ratio = logSigmoid(logOdds);
    const ratioSum = maskedSum(ratio, pairMask);
    // NLL: every counted target of the chosen rows (response only, or prompt + response with nllOverPrompt).
    const chosenRows = op.Slice(s.logProbs, [0], [P], [0]);
    const nllSum = op.Neg(op.ReduceSum(chosenRows, undefined, false));
    const nllTokens = op.ReduceSum(op.Slice(s.valid, [0], [P], [0]), undefined, false);
    const loss = op.Sub(op.Mul(nllSum, nllScale), op.Mul(op.Mul(ratioSum, pairScale), beta));
    const rc = op.Mul(lcs, beta);
    const rr = op.Mul(lrs, beta);
    return {
      loss,
      metrics: {
        num_pairs: op.ReduceSum(pairMask, undefined, false),
        nll_sum: nllSum,
        nll_tokens: nllTokens,
        log_odds_ratio: ratioSum,
        log_odds_chosen: maskedSum(logOdds, pairMask),
        rewards_chosen: maskedSum(rc, pairMask),
        rewards_rejected: maskedSum(rr, pairMask),
        rewards_accuracies: maskedSum(op.Cast(op.Greater(rc, rr), 'float32'), pairMask),
        rewards_margins: maskedSum(op.Sub(rc, rr), pairMask),
        logps_chosen: maskedSum(lcs, pairMask),
        logps_rejected: maskedSum(lrs, pairMask),
      },
    };
  };
}

/** Logged ORPO values (TRL's names) from metric sums over a logging window or an evaluation. */
export function summarizeOrpo(sums: Record<string, number>, beta: number): Record<string, number> {
  const pairs = sums.num_pairs ?? 0;
  const tokens = sums.nll_tokens ?? 0;
  const mean = (k: string): number => (pairs > 0 ? (sums[k] ?? 0) / pairs : 0);
  const nll = tokens > 0 ? (sums.nll_sum ?? 0) / tokens : 0;
  const out: Record<string, number> = {};
  if (sums.__loss !== undefined) out.loss = nll - beta * mean('log_odds_ratio');
  out['rewards/chosen'] = mean('rewards_chosen');
  out['rewards/rejected'] = mean('rewards_rejected');
  out['rewards/accuracies'] = mean('rewards_accuracies');
  out['rewards/margins'] = mean('rewards_margins');
  out['logps/chosen'] = mean('logps_chosen');
  out['logps/rejected'] = mean('logps_rejected');
  out.nll_loss = nll;
  out.log_odds_ratio = mean('log_odds_ratio');
  out.log_odds_chosen = mean('log_odds_chosen');
  return out;
}
