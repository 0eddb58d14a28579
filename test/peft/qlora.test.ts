import { describe, expect, it, vi } from 'vitest';
import { Tensor } from '../../src/core/index.js';
import { AutoModelForCausalLM } from '../../src/models/auto-model.js';
import { CausalLM } from '../../src/models/causal-lm.js';
import { BitsAndBytesConfig } from '../../src/quant/index.js';
import { getPeftModel, LoraConfig, prepareModelForKbitTraining } from '../../src/peft/index.js';
import { baseLogits, FAST, loadLoraGolden, maxAbsDiff, relErr } from './helpers.js';

const DIR = 'test/fixtures/models/llama-gqa';

async function load4bit(): Promise<CausalLM> {
  return AutoModelForCausalLM.fromPretrained(DIR, { quantizationConfig: new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true }) });
}

/** The fp32 model holding exactly the dequantised NF4 weights. */
function dequantisedCopy(m: CausalLM): CausalLM {
  const dense = new Map(m.dense);
  for (const [name, q] of m.quantized) dense.set(name, (q as unknown as { dequantize(): Tensor<'float32'> }).dequantize());
  return new CausalLM(m.config, dense, new Map(), m.nameOrPath);
}

describe('QLoRA: LoRA over an NF4 base', () => {
  it("trains with gradient checkpointing when the unquantised weights are stored in bfloat16 (dtype: 'bfloat16')", async () => {
    // The checkpoint schedule's ordering edges must not emit ops the CPU EP lacks for 16-bit types.
    const gold = await loadLoraGolden('llama-gqa');
    const bnb = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitComputeDtype: 'bfloat16', bnb4bitUseDoubleQuant: true });
    const results = [];
    for (const dtype of ['bfloat16', 'float32'] as const) {
      const m = prepareModelForKbitTraining(await AutoModelForCausalLM.fromPretrained(DIR, { dtype, quantizationConfig: bnb }));
      expect(m.gradientCheckpointing).toBe(true);
      const p = getPeftModel(m, new LoraConfig({ r: 4, loraAlpha: 8, targetModules: 'all-linear', initLoraWeights: false }), { seed: 5 });
      p.sessionOptions = FAST;
      results.push(await p.lossAndGradients({ inputIds: gold.inputIds, attentionMask: gold.attentionMask, labels: gold.labels }));
      await p.release();
    }
    const [bf16, fp32] = results as [(typeof results)[0], (typeof results)[0]];
    expect(Number.isFinite(bf16.loss)).toBe(true);
    // Only the embeddings and norms differ (bf16-rounded): the loss moves a little, not a lot.
    expect(Math.abs(bf16.loss - fp32.loss)).toBeLessThan(0.05);
    expect(Math.abs(bf16.loss - fp32.loss)).toBeGreaterThan(0);
  });


  for (const useDora of [false, true]) {
    it(`gradients equal those of the fp32 model holding the dequantised weights${useDora ? ' (DoRA)' : ''}`, async () => {
      const gold = await loadLoraGolden('llama-gqa');
      const m4 = prepareModelForKbitTraining(await load4bit());
      expect(m4.quantized.size).toBe(14);
      expect(m4.requiresGrad).toBe(false);
      expect(m4.gradientCheckpointing).toBe(true);
      const ref = dequantisedCopy(m4);
      const config = new LoraConfig({ r: 4, loraAlpha: 8, targetModules: 'all-linear', initLoraWeights: false, useDora });
      const p4 = getPeftModel(m4, config, { seed: 5 });
      const pr = getPeftModel(ref, config, { seed: 5 });
      p4.sessionOptions = FAST;
      pr.sessionOptions = FAST;
      const batch = { inputIds: gold.inputIds, attentionMask: gold.attentionMask, labels: gold.labels };
      const a = await p4.lossAndGradients(batch);
      const b = await pr.lossAndGradients(batch);
      expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-5);
      let worst = 0;
      for (const [k, g] of b.grads) {
        const e = relErr(a.grads.get(k)!.data, g.data);
        worst = Math.max(worst, e);
        expect(e, k).toBeLessThan(1e-4);
      }
      console.log(`QLoRA${useDora ? ' DoRA' : ''}: loss ${a.loss.toFixed(6)} vs ${b.loss.toFixed(6)}, max grad rel err ${worst.toExponential(2)}`);
      if (!useDora) {
        // peft counts a 4-bit weight's packed bytes ×2: all params = every weight element + the adapters
        const line = p4.printTrainableParameters();
        const expectedAll = [...ref.dense.values()].reduce((s, t) => s + t.size, 0) + [...a.grads.values()].reduce((s, t) => s + t.size, 0);
        expect(line).toContain(`all params: ${expectedAll.toLocaleString('en-US')}`);
        // merging into the 4-bit base: dequantise, merge, keep fp32, warn as peft does
        const unmerged = (await p4.forward({ inputIds: gold.inputIds, attentionMask: gold.attentionMask })).logits;
        const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
        const merged = await p4.mergeAndUnload();
        expect(warn.mock.calls.some((c) => String(c[0]).includes('4-bit linear may get different generations'))).toBe(true);
        warn.mockRestore();
        expect(merged.quantized.size).toBe(0);
        const d = maxAbsDiff(await baseLogits(merged, { inputIds: gold.inputIds, attentionMask: gold.attentionMask }), unmerged.data);
        console.log(`QLoRA merged (fp32) vs unmerged 4-bit logits ${d.toExponential(2)}`);
        expect(d).toBeLessThan(1e-5);
      }
      await p4.release();
      await pr.release();
    });
  }
});
