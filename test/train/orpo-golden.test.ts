// ORPO loss, metrics and LoRA gradients against the independent torch reference (scripts/golden_prefs.py):
// NLL over the chosen response (ours, REFERENCE.md) and over prompt + response (orpoNllOverPrompt, TRL's code).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/index.js';
import { StepProgram } from '../../src/models/index.js';
import type { PeftModel } from '../../src/peft/index.js';
import { collatePreferences } from '../../src/train/dpo-batch.js';
import { log1mexp, orpoObjective, summarizeOrpo } from '../../src/train/orpo-objective.js';
import { Graph } from '../../src/graph/index.js';
import { createSession } from '../../src/runtime/index.js';
import { toModelProto } from '../../src/graph/index.js';
import { encodeModel } from '../../src/onnx/encode.js';
import { FAST, f32, goldenPairs, goldenPolicy, loadPrefGolden, maxAbs, relErr, type PrefGolden } from './dpo-helpers.js';

const TOL = 1e-4;
let gold: PrefGolden;
let peft: PeftModel;
const programs: StepProgram[] = [];

beforeAll(async () => {
  gold = await loadPrefGolden('orpo');
  ({ peft } = await goldenPolicy());
});

afterAll(async () => {
  for (const p of programs) await p.release();
});

describe('ORPO vs the torch golden values', () => {
  for (const withPrompt of [false, true]) {
    const title = withPrompt ? 'NLL over prompt + response (orpoNllOverPrompt)' : 'NLL over the response';
    it(title, async () => {
      const pb = collatePreferences(goldenPairs(gold), { P: 2, padTokenId: 0, nllOverPrompt: withPrompt });
      const prog = await StepProgram.compile(
        peft,
        { B: 4, T: 9, objective: orpoObjective({ beta: gold.meta.beta, nllOverPrompt: withPrompt }), withGrad: true, training: false },
        FAST,
      );
      programs.push(prog);
      const extras: Record<string, Tensor> = {
        pair_mask: pb.pairMask,
        loss_scale: Tensor.fromNumbers([1 / pb.numPairs], []),
        nll_scale: Tensor.fromNumbers([1 / pb.chosenNllTokens], []),
      };
      if (pb.responseMask) extras.response_mask = pb.responseMask;
      const layout = prog.step.layout;
      const res = await prog.run({ ...pb.batch.feeds, extras }, peft.trainableValues(layout));
      const wantLoss = (withPrompt ? gold.meta.loss_with_prompt : gold.meta.loss) as number;
      const lossErr = Math.abs(res.loss - wantLoss);
      expect(lossErr).toBeLessThan(TOL);
      const sums = Object.fromEntries(Object.entries(res.metrics).map(([k, t]) => [k, (t.data as Float32Array)[0]!]));
      const logged = summarizeOrpo({ ...sums, __loss: res.loss }, gold.meta.beta);
      expect(Math.abs(logged.loss! - wantLoss)).toBeLessThan(TOL);
      const want = (withPrompt ? gold.meta.metrics_with_prompt : gold.meta.metrics) as Record<string, number>;
      let metricErr = 0;
      for (const [k, v] of Object.entries(want)) {
        expect(logged[k], k).toBeDefined();
        metricErr = Math.max(metricErr, Math.abs(logged[k]! - v));
        expect(Math.abs(logged[k]! - v), k).toBeLessThan(TOL);
      }
      let worstRel = 0;
      let worstAbs = 0;
      const prefix = withPrompt ? 'grad_with_prompt.' : 'grad.';
      for (const s of layout.specs) {
        const g = layout.view(res.grads!, s.name);
        const w = f32(gold.tensors.get(prefix + s.name));
        worstRel = Math.max(worstRel, relErr(g, w));
        worstAbs = Math.max(worstAbs, maxAbs(g, w));
      }
      expect(worstRel).toBeLessThan(TOL);
      expect(worstAbs).toBeLessThan(TOL);
      console.log(
        `orpo ${title}: loss ${res.loss.toFixed(6)} err ${lossErr.toExponential(2)}, metrics max err ${metricErr.toExponential(2)}, ` +
          `grads max rel err ${worstRel.toExponential(2)} max abs err ${worstAbs.toExponential(2)}`,
      );
    });
  }

  it('padding pairs change nothing (no NaN from their empty rows)', async () => {
    const pb = collatePreferences(goldenPairs(gold), { P: 3, padTokenId: 0, padToMultipleOf: 8, nllOverPrompt: true });
    const prog = await StepProgram.compile(peft, { B: 6, T: 16, objective: orpoObjective({ beta: 0.1, nllOverPrompt: true }), withGrad: true, training: false }, FAST);
    programs.push(prog);
    const extras: Record<string, Tensor> = {
      pair_mask: pb.pairMask,
      loss_scale: Tensor.fromNumbers([1 / pb.numPairs], []),
      nll_scale: Tensor.fromNumbers([1 / pb.chosenNllTokens], []),
      response_mask: pb.responseMask!,
    };
    const res = await prog.run({ ...pb.batch.feeds, extras }, peft.trainableValues(prog.step.layout));
    expect(Math.abs(res.loss - (gold.meta.loss_with_prompt as number))).toBeLessThan(TOL);
    let worst = 0;
    for (const s of prog.step.layout.specs) worst = Math.max(worst, relErr(prog.step.layout.view(res.grads!, s.name), f32(gold.tensors.get(`grad_with_prompt.${s.name}`))));
    expect(worst).toBeLessThan(TOL);
  });

  it('log1mexp is accurate from −50 to −1e-7 (no cancellation near 0)', async () => {
    const xs = [-50, -10, -2, -0.7, -Math.LN2, -0.69, -0.1, -1e-3, -1e-5, -1e-7];
    const g = new Graph('l1me');
    const x = g.input('x', 'float32', [xs.length]);
    g.output(log1mexp(x), 'y');
    const { model, externalData } = toModelProto(g);
    const s = await createSession(encodeModel(model), { ...FAST, externalData, reuse: false });
    const out = await s.run({ x: new Tensor('float32', [xs.length], Float32Array.from(xs)) });
    const y = out.y!.data as Float32Array;
    xs.forEach((v, i) => {
      const xf = Math.fround(v);
      const exact = xf < -Math.LN2 ? Math.log1p(-Math.exp(xf)) : Math.log(-Math.expm1(xf));
      // relative 1e-5 where float32 can hold it; below e^x ≈ 1e-7 the value rounds towards 0 (absolute ≤ 1e-7)
      const err = Math.abs(y[i]! - exact);
      expect(Math.min(err / Math.abs(exact), err * 100), `x = ${v}`).toBeLessThan(1e-5);
    });
    await s.release();
  });
});
