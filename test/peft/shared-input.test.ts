// LoRA A factors of modules that read the same input (q/k/v, gate/up) share one GEMM by default
// (src/peft/shared-input.ts). The shared and the per-module formulations must give the same loss and
// gradients, and the shared graph must really have fewer thin GEMMs.
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/index.js';
import { makeFeeds } from '../../src/models/batch.js';
import { StepProgram } from '../../src/models/program.js';
import { causalLmObjective } from '../../src/models/step-graph.js';
import { PeftModel } from '../../src/peft/index.js';
import { FAST, loadLoraGolden, loadTiny, relErr } from './helpers.js';

describe('shared-input LoRA GEMMs', () => {
  it('give the same loss and gradients as one GEMM per module, with fewer MatMuls', async () => {
    const gold = await loadLoraGolden('llama-gqa');
    const peft = await PeftModel.fromPretrained(await loadTiny('llama-gqa'), 'test/fixtures/golden/adapters/llama-gqa', { isTrainable: true });
    const { feeds, B, T } = makeFeeds({ inputIds: gold.inputIds, attentionMask: gold.attentionMask, labels: gold.labels });
    const results = [];
    for (const loraInput of ['shared', 'separate'] as const) {
      const prog = await StepProgram.compile(peft, { B, T, objective: causalLmObjective, withGrad: true, training: true, formulation: { loraInput } }, FAST);
      const matmuls = prog.opCounts.get('MatMul') ?? 0;
      const res = await prog.run({ ...feeds, extras: { loss_scale: Tensor.fromNumbers([0.1], []) } }, peft.trainableValues(prog.step.layout));
      results.push({ matmuls, loss: res.loss, grads: res.grads! });
      await prog.release();
    }
    const [shared, separate] = results as [(typeof results)[0], (typeof results)[0]];
    // Per layer q/k/v: 3 → 1 forward GEMM, 3 → 1 dA, 3 → 1 dx; gate/up: 2 → 1 each: 9 fewer. Layer 0's
    // q/k/v input is the frozen embedding's output, whose gradient nobody needs (no dx GEMMs): 7 there.
    expect(peft.config.numHiddenLayers).toBe(2);
    expect(separate.matmuls - shared.matmuls).toBe(7 + 9);
    expect(Math.abs(shared.loss - separate.loss)).toBeLessThan(1e-6);
    expect(relErr(shared.grads, separate.grads)).toBeLessThan(1e-6);
    expect(relErr(shared.grads, new Float32Array(shared.grads.length))).toBeGreaterThan(0.5); // gradients are not all zero
    await peft.release();
  });
});
