// DPO losses, metrics and LoRA gradients against the independent torch reference (scripts/golden_prefs.py,
// test/fixtures/README.md): llama-mha + the golden adapter as the policy, the base with the adapter disabled
// as the reference, two pairs fed as token ids through the concatenated batch of dpo-batch.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/index.js';
import { StepProgram, type TrainableModel } from '../../src/models/index.js';
import type { PeftModel } from '../../src/peft/index.js';
import type { CausalLM } from '../../src/models/index.js';
import { collatePreferences, type PreferenceBatch } from '../../src/train/dpo-batch.js';
import { dpoObjective, sequenceLogpsObjective, summarizeDpo, type DpoObjectiveOptions } from '../../src/train/dpo-objective.js';
import type { DPOLossType } from '../../src/train/dpo-config.js';
import { FAST, f32, goldenPairs, goldenPolicy, loadPrefGolden, maxAbs, relErr, type PrefGolden } from './dpo-helpers.js';

const TOL = 1e-4;
let gold: PrefGolden;
let base: CausalLM;
let peft: PeftModel;
let pb: PreferenceBatch;
const programs: StepProgram[] = [];

async function compile(model: TrainableModel, o: Parameters<typeof StepProgram.compile>[1]): Promise<StepProgram> {
  const p = await StepProgram.compile(model, o, FAST);
  programs.push(p);
  return p;
}

beforeAll(async () => {
  gold = await loadPrefGolden('dpo');
  ({ base, peft } = await goldenPolicy());
  pb = collatePreferences(goldenPairs(gold), { P: 2, padTokenId: 0 });
});

afterAll(async () => {
  for (const p of programs) await p.release();
});

function extras(refLogps?: Float32Array): Record<string, Tensor> {
  const e: Record<string, Tensor> = { pair_mask: pb.pairMask, loss_scale: Tensor.fromNumbers([1 / pb.numPairs], []) };
  if (refLogps) e.ref_logps = new Tensor('float32', [4], refLogps);
  return e;
}

describe('DPO vs the torch golden values', () => {
  it('lays out the concatenated batch as the reference does', () => {
    const ids = gold.tensors.get('concat_input_ids')!.data as BigInt64Array;
    const am = gold.tensors.get('concat_attention_mask')!.data as BigInt64Array;
    const labels = gold.tensors.get('concat_labels')!.data as BigInt64Array;
    expect(pb.batch.B).toBe(4);
    expect(pb.batch.T).toBe(9);
    expect(Array.from(pb.batch.feeds.inputIds)).toEqual(Array.from(ids));
    expect(Array.from(pb.batch.feeds.attentionMask)).toEqual(Array.from(am));
    // targets = labels shifted left by one
    for (let b = 0; b < 4; b++) for (let t = 0; t < 9; t++) {
      const want = t + 1 < 9 ? labels[b * 9 + t + 1]! : -100n;
      expect(pb.batch.feeds.targets[b * 9 + t], `row ${b} pos ${t}`).toBe(want);
    }
  });

  const cases: [string, DPOLossType, number, string, string][] = [
    ['sigmoid', 'sigmoid', 0, 'sigmoid', 'grad.'],
    ['cDPO (label smoothing 0.1)', 'sigmoid', 0.1, 'cdpo', 'grad_cdpo.'],
    ['ipo', 'ipo', 0, 'ipo', 'grad_ipo.'],
    ['hinge', 'hinge', 0, 'hinge', 'grad_hinge.'],
  ];
  for (const [title, lossType, ls, lossKey, gradPrefix] of cases) {
    it(`${title}: loss, metrics and LoRA gradients (reference = adapters disabled in the same graph)`, async () => {
      const o: DpoObjectiveOptions = { beta: gold.meta.beta, lossType, labelSmoothing: ls, reference: 'in-graph' };
      const prog = await compile(peft, { B: 4, T: 9, objective: dpoObjective(o), withGrad: true, training: false });
      const layout = prog.step.layout;
      const res = await prog.run({ ...pb.batch.feeds, extras: extras() }, peft.trainableValues(layout));
      const losses = gold.meta.losses as Record<string, number>;
      const lossErr = Math.abs(res.loss - losses[lossKey]!);
      expect(lossErr).toBeLessThan(TOL);
      const sums = Object.fromEntries(Object.entries(res.metrics).map(([k, t]) => [k, (t.data as Float32Array)[0]!]));
      const logged = summarizeDpo(sums, base.config.vocabSize);
      const want = (lossType === 'ipo' ? gold.meta.metrics_ipo : gold.meta.metrics) as Record<string, number>;
      let metricErr = 0;
      for (const [k, v] of Object.entries(want)) {
        expect(logged[k], k).toBeDefined();
        metricErr = Math.max(metricErr, Math.abs(logged[k]! - v));
        expect(Math.abs(logged[k]! - v), k).toBeLessThan(TOL);
      }
      let worstRel = 0;
      let worstAbs = 0;
      for (const s of layout.specs) {
        const g = layout.view(res.grads!, s.name);
        const w = f32(gold.tensors.get(gradPrefix + s.name));
        worstRel = Math.max(worstRel, relErr(g, w));
        worstAbs = Math.max(worstAbs, maxAbs(g, w));
      }
      expect(worstRel).toBeLessThan(TOL);
      expect(worstAbs).toBeLessThan(TOL);
      console.log(
        `dpo ${title}: loss ${res.loss.toFixed(6)} err ${lossErr.toExponential(2)}, metrics max err ${metricErr.toExponential(2)}, ` +
          `grads max rel err ${worstRel.toExponential(2)} max abs err ${worstAbs.toExponential(2)}`,
      );
    });
  }

  it('reference log-probs from a separate pass (refModel, precompute) give the same loss and gradients', async () => {
    const refC = f32(gold.tensors.get('reference_chosen_logps'));
    const refR = f32(gold.tensors.get('reference_rejected_logps'));
    // (a) a separate frozen reference model (the base, as users pass refModel)
    const refProg = await compile(base.asFrozen(), { B: 4, T: 9, objective: sequenceLogpsObjective, withGrad: false });
    const fromBase = (await refProg.run({ ...pb.batch.feeds })).metrics.logps!.data as Float32Array;
    // (b) the policy with its adapters disabled, as the precompute pass runs it
    const offProg = await compile(peft, { B: 4, T: 9, objective: sequenceLogpsObjective, withGrad: false, adaptersEnabled: false });
    const fromOff = (await offProg.run({ ...pb.batch.feeds }, peft.trainableValues(offProg.step.layout))).metrics.logps!.data as Float32Array;
    const want = Float32Array.from([...refC, ...refR]);
    expect(maxAbs(fromBase, want)).toBeLessThan(TOL);
    expect(maxAbs(fromOff, want)).toBeLessThan(TOL);
    const prog = await compile(peft, { B: 4, T: 9, objective: dpoObjective({ beta: 0.1, lossType: 'sigmoid', reference: 'input' }), withGrad: true, training: false });
    const res = await prog.run({ ...pb.batch.feeds, extras: extras(fromBase) }, peft.trainableValues(prog.step.layout));
    expect(Math.abs(res.loss - (gold.meta.losses as Record<string, number>).sigmoid!)).toBeLessThan(TOL);
    let worst = 0;
    for (const s of prog.step.layout.specs) worst = Math.max(worst, relErr(prog.step.layout.view(res.grads!, s.name), f32(gold.tensors.get(`grad.${s.name}`))));
    expect(worst).toBeLessThan(TOL);
    const pol = Float32Array.from([...f32(gold.tensors.get('policy_chosen_logps')), ...f32(gold.tensors.get('policy_rejected_logps'))]);
    console.log(`dpo reference pass: ref logps max err ${maxAbs(fromBase, want).toExponential(2)} (refModel) / ${maxAbs(fromOff, want).toExponential(2)} (adapters off); policy logps ${pol.join(', ')}`);
  });

  it('padding pairs change nothing (a graph of 3 pairs holding the 2)', async () => {
    const pb3 = collatePreferences(goldenPairs(gold), { P: 3, padTokenId: 0, padToMultipleOf: 8 });
    expect(pb3.batch.B).toBe(6);
    expect(pb3.batch.T).toBe(16);
    const prog = await compile(peft, { B: 6, T: 16, objective: dpoObjective({ beta: 0.1, lossType: 'ipo', reference: 'in-graph' }), withGrad: true, training: false });
    const res = await prog.run(
      { ...pb3.batch.feeds, extras: { pair_mask: pb3.pairMask, loss_scale: Tensor.fromNumbers([1 / 2], []) } },
      peft.trainableValues(prog.step.layout),
    );
    expect(Math.abs(res.loss - (gold.meta.losses as Record<string, number>).ipo!)).toBeLessThan(TOL);
    let worst = 0;
    for (const s of prog.step.layout.specs) worst = Math.max(worst, relErr(prog.step.layout.view(res.grads!, s.name), f32(gold.tensors.get(`grad_ipo.${s.name}`))));
    expect(worst).toBeLessThan(TOL);
  });
});
