import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readSafetensors, saveSafetensors } from '../../src/io/index.js';
import { getPeftModel, LoraConfig, PeftModel } from '../../src/peft/index.js';
import { readConfig } from '../../src/models/config.js';
import { loadWeights } from '../../src/models/weights.js';
import { baseLogits, FAST, loadLoraGolden, loadTiny, maxAbsDiff } from './helpers.js';


/**
 * Run scripts/apply_adapter.py (the independent torch reference) and return its exit status, or undefined
 * when /usr/bin/python3 or its torch is missing (the check is skipped then).
 */
function applyAdapter(args: string[]): { status: number; out: string } | undefined {
  const r = spawnSync('/usr/bin/python3', ['scripts/apply_adapter.py', ...args], { encoding: 'utf8' });
  if (r.error || /No module named '?torch/.test(r.stderr ?? '')) {
    console.log('skipped apply_adapter.py: /usr/bin/python3 with torch is not available');
    return undefined;
  }
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

const tmp = mkdtempSync(path.join(tmpdir(), 'peft-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('mergeAndUnload, savePretrained, fromPretrained', () => {
  it('llama-mha: saved adapter is byte-identical to the PEFT fixture; merge = unmerged = golden merged logits', async () => {
    const gold = await loadLoraGolden('llama-mha');
    const model = await loadTiny('llama-mha');
    const peft = await PeftModel.fromPretrained(model, 'test/fixtures/golden/adapters/llama-mha');
    peft.sessionOptions = FAST;
    expect(peft.isTrainable).toBe(false);
    const batch = { inputIds: gold.inputIds, attentionMask: gold.attentionMask };
    const unmerged = (await peft.forward(batch)).logits;

    const out = path.join(tmp, 'mha-adapter');
    await peft.savePretrained(out);
    const fixture = 'test/fixtures/golden/adapters/llama-mha';
    expect(readFileSync(path.join(out, 'adapter_config.json'), 'utf8')).toBe(readFileSync(path.join(fixture, 'adapter_config.json'), 'utf8'));
    const ours = await readSafetensors(path.join(out, 'adapter_model.safetensors'));
    const theirs = await readSafetensors(path.join(fixture, 'adapter_model.safetensors'));
    expect([...ours.keys()].sort()).toEqual([...theirs.keys()].sort());
    for (const [k, t] of theirs) expect(Array.from(ours.get(k)!.data as Float32Array)).toEqual(Array.from(t.data as Float32Array));

    const merged = await peft.mergeAndUnload();
    await expect(peft.forward(batch)).rejects.toThrow(/unloaded/);
    const mergedLogits = await baseLogits(merged, batch);
    const dUnmerged = maxAbsDiff(mergedLogits, unmerged.data);
    const dGolden = maxAbsDiff(mergedLogits, gold.tensors.get('merged_logits')!.toFloat32());
    console.log(`llama-mha merged vs unmerged ${dUnmerged.toExponential(2)}, vs golden merged_logits ${dGolden.toExponential(2)}`);
    expect(dUnmerged).toBeLessThan(1e-5);
    expect(dGolden).toBeLessThan(1e-4);

    // The merged model as an HF folder: loads back to the same logits, and the independent reference agrees.
    const mergedDir = path.join(tmp, 'mha-merged');
    await merged.savePretrained(mergedDir);
    const cfg = await readConfig(mergedDir);
    const w = await loadWeights(mergedDir, cfg);
    for (const [k, t] of merged.dense) expect(Array.from(w.dense.get(k)!.data)).toEqual(Array.from(t.data));
    expect(JSON.parse(readFileSync(path.join(mergedDir, 'generation_config.json'), 'utf8')).eos_token_id).toBe(2);
    const r = applyAdapter(['test/fixtures/models/llama-mha', fixture, '--compare-model', mergedDir, '--atol', '1e-5']);
    if (r) expect(r.status, r.out).toBe(0);
  });

  it('dora: merged logits equal the unmerged adapter', async () => {
    const gold = await loadLoraGolden('dora');
    const model = await loadTiny('llama-mha');
    const peft = await PeftModel.fromPretrained(model, 'test/fixtures/golden/adapters/dora');
    peft.sessionOptions = FAST;
    const batch = { inputIds: gold.inputIds, attentionMask: gold.attentionMask };
    const unmerged = (await peft.forward(batch)).logits;
    const prompt = [[1, 17, 42, 99]];
    const tokens = await peft.generate(prompt, { maxNewTokens: 5, eosTokenId: null });
    const merged = await peft.mergeAndUnload();
    const d = maxAbsDiff(await baseLogits(merged, batch), unmerged.data);
    console.log(`dora merged vs unmerged ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-5);
    // greedy generation through the unmerged adapter = through the merged model
    expect(await merged.generate(prompt, { maxNewTokens: 5, eosTokenId: null })).toEqual(tokens);
    await merged.release();
  });

  it('an adapter we train-initialise and save reloads exactly and applies in the independent reference', async () => {
    const model = await loadTiny('qwen2');
    const config = new LoraConfig({ r: 4, loraAlpha: 16, targetModules: 'all-linear', initLoraWeights: false, useRslora: true, rankPattern: { down_proj: 2 } });
    const peft = getPeftModel(model, config, { seed: 3 });
    peft.sessionOptions = FAST;
    const batch = { inputIds: [[1, 5, 9, 17, 33, 2]], attentionMask: [[1, 1, 1, 1, 1, 1]] };
    const logits = (await peft.forward(batch)).logits;
    const dir = path.join(tmp, 'qwen2-adapter');
    await peft.savePretrained(dir);
    const json = JSON.parse(readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
    expect(json.target_modules).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    expect(json.base_model_name_or_path).toBe('test/fixtures/models/qwen2');
    expect(json.rank_pattern).toEqual({ down_proj: 2 });
    const st = await readSafetensors(path.join(dir, 'adapter_model.safetensors'));
    expect(st.get('base_model.model.model.layers.0.mlp.down_proj.lora_A.weight')!.dims).toEqual([2, 96]);
    expect(st.get('base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight')!.dims).toEqual([32, 4]);

    const again = await PeftModel.fromPretrained(await loadTiny('qwen2'), dir);
    again.sessionOptions = FAST;
    expect(maxAbsDiff((await again.forward(batch)).logits.data, logits.data)).toBe(0);
    await again.release();
    await peft.release();

    const cmp = path.join(tmp, 'qwen2-logits.safetensors');
    await saveSafetensors(cmp, new Map([['logits', logits]]));
    const args = ['test/fixtures/models/qwen2', dir, '--input-ids', JSON.stringify(batch.inputIds), '--attention-mask', JSON.stringify(batch.attentionMask)];
    const r = applyAdapter([...args, '--compare', cmp, '--atol', '1e-5']);
    if (r) {
      expect(r.status, r.out).toBe(0);
      console.log(r.out.trim().split('\n').slice(-2).join(' | '));
    }
  });
});
