// §3–4b of the walkthrough: load a Hugging Face checkpoint, list its state_dict names, use_cache = false,
// one forward with labels, then the same checkpoint in 4-bit NF4 (BitsAndBytesConfig), its bitsandbytes
// entries, prepare_model_for_kbit_training, and a forward of the 4-bit model.
// Runs offline on the tiny Llama checkpoint of the test fixtures (vocabulary of 128 ids, so the batch is given
// as token ids; with a real model, tokenize as in examples/03-tokenizer.ts):
//   npx tsx examples/04-model.ts                      (or: npx tsx examples/04-model.ts MODEL_DIR_OR_HUB_ID)
import { AutoModelForCausalLM, BitsAndBytesConfig, prepareModelForKbitTraining } from '../src/index.js'; // in your project: from 'ts-finetune'

const modelId = process.argv[2] ?? 'test/fixtures/models/llama-gqa';

// 3. The model as stored (fp32 here; a bf16 checkpoint also computes in fp32 on the CPU, with one notice).
const model = await AutoModelForCausalLM.fromPretrained(modelId, { device: 'cpu' });
const c = model.config;
console.log(`${c.modelType}: ${c.numHiddenLayers} layers, hidden ${c.hiddenSize}, ${c.numAttentionHeads} heads / ${c.numKeyValueHeads} kv heads, vocab ${c.vocabSize}`);
console.log(`parameters: ${model.numParameters().toLocaleString('en-US')}`);

// The state_dict names are the Hugging Face module paths, in torch's order.
const names = [...model.stateDict().keys()];
for (const name of names.slice(0, 12)) {
  const t = model.stateDict().get(name)!;
  console.log(`  ${name.padEnd(48)} ${t.dtype} [${t.dims.join(', ')}]`);
}
console.log(`  … ${names.length} tensors, ending with ${names.at(-1)}`);

model.config.useCache = false; // training builds no KV cache; generate() keeps its own

// One batch: row 1 is right-padded; labels are the ids with -100 where nothing is learned.
const inputIds = [
  [1, 17, 42, 99, 5, 63, 120, 7],
  [1, 88, 23, 64, 2, 0, 0, 0],
];
const attentionMask = inputIds.map((row) => row.map((id, t) => (t > 0 && id === 0 ? 0 : 1)));
const labels = inputIds.map((row, b) => row.map((id, t) => (attentionMask[b]![t] ? id : -100)));
const out = await model.forward({ inputIds, attentionMask, labels });
console.log(`fp32 forward: loss ${out.loss!.toFixed(6)}, logits [${out.logits.dims.join(', ')}]`);
// Generation: model.generate(promptIds, { maxNewTokens, doSample, … }), see docs/generation.md.

// 4a. Quantisation: NF4 with double quantisation (QLoRA). The compute dtype is fp32 on the CPU.
const bnbConfig = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitComputeDtype: 'bfloat16', bnb4bitUseDoubleQuant: true });

// 4b. The decoder's linear layers are quantised as they stream in; embeddings, norms and lm_head stay fp32.
const model4 = await AutoModelForCausalLM.fromPretrained(modelId, { dtype: 'bfloat16', quantizationConfig: bnbConfig, device: 'cpu' });
console.log(`4-bit: ${model4.quantized.size} linear weights quantised; the entries bitsandbytes saves for one:`);
for (const [name, t] of model4.stateDict()) {
  if (name.startsWith('model.layers.0.self_attn.q_proj.')) console.log(`  ${name.padEnd(64)} ${t.dtype} [${t.dims.join(', ')}]`);
}
model4.config.useCache = false;
const kbit = prepareModelForKbitTraining(model4); // frozen base, gradient checkpointing and input grads on
console.log(
  `prepareModelForKbitTraining: trainable ${kbit.numParameters({ onlyTrainable: true })} of ${kbit.numParameters().toLocaleString('en-US')}, ` +
    `gradient checkpointing ${kbit.gradientCheckpointing}`,
);
const out4 = await kbit.forward({ inputIds, attentionMask, labels });
console.log(`4-bit forward: loss ${out4.loss!.toFixed(6)} (fp32: ${out.loss!.toFixed(6)})`);
// Next: LoRA adapters on top (examples/05-lora.ts).

await model.release();
await model4.release();
