// The DPO loss as a step-graph Objective (trl `trainer/dpo_trainer.py`, REFERENCE.md "TRL DPO"), over the
// concatenated batch of dpo-batch.ts (chosen rows 0..P−1, rejected rows P..2P−1):
//   logπ(y) = Σ log p over the completion tokens (per-token average for ipo);
//   d = (logπ(c) − logπref(c)) − (logπ(r) − logπref(r));
//   sigmoid: −logσ(βd), with label smoothing ε (cDPO) −(1−ε)logσ(βd) − ε logσ(−βd); ipo: (d̄ − 1/(2β))²;
//   hinge: relu(1 − βd);  logσ(z) = −softplus(−z).
// The loss is Σ over real pairs × `loss_scale` (1 / pairs of the whole accumulation group), so accumulation
// equals one big batch. The reference log-probs come from the same graph with adapters disabled (PEFT: one
// copy of the base, no gradient), from an input `ref_logps` [2P] (a separate reference model, or values
// precomputed once), or are 0 (referenceFree). Metrics leave the graph as sums over real pairs; summarizeDpo
// turns the sums of a logging window into TRL's logged means.

import { op, type Value } from '../graph/index.js';
import { IGNORE_INDEX } from '../nn/loss.js';
import type { Objective, ObjectiveContext } from '../models/index.js';
import type { DPOLossType } from './dpo-config.js';

export type ReferenceSource = 'in-graph' | 'input' | 'free';

export interface DpoObjectiveOptions {
  beta: number;
  lossType: DPOLossType;
  labelSmoothing?: number;
  reference: ReferenceSource;
}

/**
 * Summed log p(target) per row [B] from raw logits, without materialising a [B, T, V] log-softmax output:
 * logit[target] − logsumexp(logits). Used for reference passes (no gradient needed).
 */
export function rowLogps(logits: Value, targets: Value): Value {
  const validB = op.Not(op.Equal(targets, IGNORE_INDEX));
  const idx = op.Unsqueeze(op.Where(validB, targets, 0), [-1]);
  const picked = op.GatherElements(logits, idx, -1); // [B, T, 1]
  const lse = op.ReduceLogSumExp(logits, [-1], true); // [B, T, 1]
  const lp = op.Mul(op.Squeeze(op.Sub(picked, lse), [-1]), op.Cast(validB, 'float32'));
  return op.ReduceSum(lp, [1], false);
}

/** Policy log-probs per row: sums [B] and completion-token counts [B] (from ctx.scores(), shared with backward). */
export function policyRowLogps(ctx: ObjectiveContext): { sum: Value; count: Value } {
  const s = ctx.scores();
  return { sum: op.ReduceSum(s.logProbs, [1], false), count: op.ReduceSum(s.valid, [1], false) };
}

/** logσ(z), stable: −softplus(−z). */
export function logSigmoid(z: Value): Value {
  return op.Neg(op.Softplus(op.Neg(z)));
}

/** Σ over real pairs of x [P] (pair_mask [P]). */
export function maskedSum(x: Value, mask: Value): Value {
  return op.ReduceSum(op.Mul(x, mask), undefined, false);
}

/**
 * Σ over the vocabulary and the counted positions of the logits of each half: TRL's logits/chosen and
 * logits/rejected are these sums / (counted positions × V), pooled over all rows of the half.
 */
function halfLogitSums(ctx: ObjectiveContext, valid: Value, P: number): { chosen: Value; rejected: Value } {
  const perPos = op.Mul(op.ReduceSum(ctx.logits, [2], false), valid); // [B, T]
  const perRow = op.ReduceSum(perPos, [1], false); // [B]
  const [c, r] = op.Split(perRow, [P, P], 0) as [Value, Value];
  return { chosen: op.ReduceSum(c, undefined, false), rejected: op.ReduceSum(r, undefined, false) };
}

export function dpoObjective(o: DpoObjectiveOptions): Objective {
  const beta = o.beta;
  const eps = o.labelSmoothing ?? 0;
  return (ctx) => {
    const P = ctx.B / 2;
    const pairMask = ctx.input('pair_mask', 'float32', [P]);
    const scale = ctx.input('loss_scale', 'float32', []);
    const pol = policyRowLogps(ctx);
    let ref: Value | undefined;
    if (o.reference === 'in-graph') ref = rowLogps(ctx.referenceLogits(), ctx.targets);
    else if (o.reference === 'input') ref = ctx.input('ref_logps', 'float32', [ctx.B]);
    // ipo (and TRL's logged metrics with ipo) use per-token averages: divide by the completion length.
    const avg = o.lossType === 'ipo';
    const denom = op.Max(pol.count, 1);
    const per = (x: Value): Value => (avg ? op.Div(x, denom) : x);
    const [pc, pr] = op.Split(per(pol.sum), [P, P], 0) as [Value, Value];
    let chosenRatio = pc;
    let rejectedRatio = pr;
    if (ref) {
      const [rc, rr] = op.Split(per(ref), [P, P], 0) as [Value, Value];
      chosenRatio = op.Sub(pc, rc);
      rejectedRatio = op.Sub(pr, rr);
    }
    const d = op.Sub(chosenRatio, rejectedRatio);
    let losses: Value;
    if (o.lossType === 'sigmoid') {
      const z = op.Mul(d, beta);
      losses = op.Neg(logSigmoid(z));
      if (eps > 0) losses = op.Sub(op.Mul(losses, 1 - eps), op.Mul(logSigmoid(op.Neg(z)), eps));
    } else if (o.lossType === 'ipo') {
      const e = op.Sub(d, 1 / (2 * beta));
      losses = op.Mul(e, e);
    } else {
      losses = op.Relu(op.Sub(1, op.Mul(d, beta)));
    }
    const lossSum = maskedSum(losses, pairMask);
    const rc = op.Mul(chosenRatio, beta);
    const rr = op.Mul(rejectedRatio, beta);
    const logits = halfLogitSums(ctx, ctx.scores().valid, P);
    const [vc, vr] = op.Split(pol.count, [P, P], 0) as [Value, Value];
    return {
      loss: op.Mul(lossSum, scale),
      metrics: {
        loss_sum: lossSum,
        num_pairs: op.ReduceSum(pairMask, undefined, false),
        rewards_chosen: maskedSum(rc, pairMask),
        rewards_rejected: maskedSum(rr, pairMask),
        rewards_accuracies: maskedSum(op.Cast(op.Greater(rc, rr), 'float32'), pairMask),
        rewards_margins: maskedSum(op.Sub(rc, rr), pairMask),
        logps_chosen: maskedSum(pc, pairMask),
        logps_rejected: maskedSum(pr, pairMask),
        logits_chosen: logits.chosen,
        logits_rejected: logits.rejected,
        tokens_chosen: op.ReduceSum(vc, undefined, false),
        tokens_rejected: op.ReduceSum(vr, undefined, false),
      },
    };
  };
}

/** Reference passes: the summed completion log-probs of each row, as metric `logps` [B]. */
export const sequenceLogpsObjective: Objective = (ctx) => {
  const lp = rowLogps(ctx.logits, ctx.targets);
  return { loss: op.ReduceSum(lp, undefined, false), metrics: { logps: lp } };
};

/** Logged DPO values (TRL's names) from metric sums over a logging window or an evaluation. */
export function summarizeDpo(sums: Record<string, number>, vocabSize: number): Record<string, number> {
  const pairs = sums.num_pairs ?? 0;
  const mean = (k: string): number => (pairs > 0 ? (sums[k] ?? 0) / pairs : 0);
  const perLogit = (k: string, n: string): number => ((sums[n] ?? 0) > 0 ? (sums[k] ?? 0) / ((sums[n] ?? 0) * vocabSize) : 0);
  const out: Record<string, number> = {};
  if (sums.__loss !== undefined) out.loss = mean('loss_sum');
  out['rewards/chosen'] = mean('rewards_chosen');
  out['rewards/rejected'] = mean('rewards_rejected');
  out['rewards/accuracies'] = mean('rewards_accuracies');
  out['rewards/margins'] = mean('rewards_margins');
  out['logps/chosen'] = mean('logps_chosen');
  out['logps/rejected'] = mean('logps_rejected');
  out['logits/chosen'] = perLogit('logits_chosen', 'tokens_chosen');
  out['logits/rejected'] = perLogit('logits_rejected', 'tokens_rejected');
  return out;
}
