import { describe, expect, it } from 'vitest';
import { PeftModel } from '../../src/peft/index.js';
import { FAST, loadLoraGolden, loadTiny, maxAbsDiff, relErr } from './helpers.js';

const CASES: [string, string][] = [
  ['llama-mha', 'llama-mha'],
  ['llama-gqa', 'llama-gqa'],
  ['llama-tied', 'llama-tied'],
  ['qwen2', 'qwen2'],
  ['rslora', 'llama-mha'],
  ['dora', 'llama-mha'],
];

describe('LoRA gradients vs the independent torch golden values', () => {
  for (const [name, base] of CASES) {
    it(name, async () => {
      const gold = await loadLoraGolden(name);
      const model = await loadTiny(base);
      const peft = await PeftModel.fromPretrained(model, `test/fixtures/golden/adapters/${name}`, { isTrainable: true });
      // llama-mha runs with ORT's default optimisations (as users do); the rest compile faster without them.
      peft.sessionOptions = name === 'llama-mha' ? { worker: false } : FAST;
      const { loss, grads } = await peft.lossAndGradients({ inputIds: gold.inputIds, attentionMask: gold.attentionMask, labels: gold.labels });
      expect(Math.abs(loss - gold.meta.loss)).toBeLessThan(1e-5);
      let worst = 0;
      let worstName = '';
      for (const [k, g] of grads) {
        const want = gold.tensors.get(`grad.${k}`);
        expect(want, k).toBeDefined();
        const e = relErr(g.data, want!.toFloat32());
        if (e > worst) [worst, worstName] = [e, k];
        expect(e, k).toBeLessThan(1e-4);
      }
      expect(grads.size).toBe([...gold.tensors.keys()].filter((k) => k.startsWith('grad.')).length);
      // logits with the adapter active (unmerged), padded query rows excluded
      const { logits } = await peft.forward({ inputIds: gold.inputIds, attentionMask: gold.attentionMask });
      const mask = gold.attentionMask.flat();
      const V = model.config.vocabSize;
      const d = maxAbsDiff(logits.data, gold.tensors.get('logits')!.toFloat32(), (i) => mask[Math.floor(i / V)] === 0);
      expect(d).toBeLessThan(1e-4);
      console.log(`${name}: loss err ${Math.abs(loss - gold.meta.loss).toExponential(2)}, max grad rel err ${worst.toExponential(2)} (${worstName}), logits ${d.toExponential(2)}`);
      await peft.release();
    });
  }
});
