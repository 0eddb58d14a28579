// §4a–d of the walkthrough: a QLoRA config, the 4-bit model, prepare_model_for_kbit_training, a LoRA config
// over every linear layer, get_peft_model, the trainable-parameter line, one loss + gradients, a few plain
// SGD steps, and the PEFT-format adapter on disk (loadable by Python's PeftModel.from_pretrained).
// Runs offline on the tiny Llama checkpoint of the test fixtures (its vocabulary is 128 ids, so the batch is
// given as token ids; with a real model, tokenize as in examples/03-tokenizer.ts):
//   npx tsx examples/05-lora.ts                       (or: npx tsx examples/05-lora.ts MODEL_DIR_OR_HUB_ID OUT_DIR)
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AutoModelForCausalLM,
  BitsAndBytesConfig,
  LoraConfig,
  PeftModel,
  findAllLinearNames,
  getPeftModel,
  prepareModelForKbitTraining,
} from '../src/index.js'; // in your project: from 'ts-finetune'

const modelId = process.argv[2] ?? 'test/fixtures/models/llama-gqa';
const outDir = process.argv[3] ?? path.join(os.tmpdir(), 'ts-finetune-05-lora');

// 4a. Quantisation: NF4 weights with double quantisation (QLoRA). On the CPU the compute dtype is fp32.
const bnbConfig = new BitsAndBytesConfig({
  loadIn4bit: true,
  bnb4bitQuantType: 'nf4',
  bnb4bitComputeDtype: 'bfloat16',
  bnb4bitUseDoubleQuant: true,
});

// 4b. The model, its linear layers quantised to 4-bit as they load.
const model = await AutoModelForCausalLM.fromPretrained(modelId, { dtype: 'bfloat16', quantizationConfig: bnbConfig, device: 'cpu' });
model.config.useCache = false;
const kbit = prepareModelForKbitTraining(model); // frozen base, gradient checkpointing on

// 4c. LoRA on every linear layer but lm_head.
const targetModules = findAllLinearNames(model);
console.log('linear modules:', targetModules.join(', '));
const peftConfig = new LoraConfig({ r: 16, loraAlpha: 16, targetModules, loraDropout: 0.05, bias: 'none', taskType: 'CAUSAL_LM' });

// 4d. The PEFT model.
const peft = getPeftModel(kbit, peftConfig);
peft.printTrainableParameters();

// One batch: row 1 is right-padded; labels are the ids with -100 where nothing is learned.
const inputIds = [
  [1, 17, 42, 99, 5, 63, 120, 7],
  [1, 88, 23, 64, 2, 0, 0, 0],
];
const attentionMask = inputIds.map((row, b) => row.map((_, t) => (b === 1 && t >= 5 ? 0 : 1)));
const labels = inputIds.map((row, b) => row.map((id, t) => (attentionMask[b]![t] ? id : -100)));

// Loss and gradients keyed by PEFT names (the training graph without the optimizer; dropout active).
const { loss, grads } = await peft.lossAndGradients({ inputIds, attentionMask, labels });
console.log(`loss ${loss.toFixed(4)}; ${grads.size} gradient tensors, e.g.`);
for (const name of [...grads.keys()].slice(0, 2)) {
  const g = grads.get(name)!;
  console.log(`  ${name} [${g.dims.join(', ')}] ‖g‖ = ${Math.hypot(...g.data).toExponential(3)}`);
}

// A few plain SGD steps on the adapter (the trainers do AdamW, clipping and schedules for you).
for (let step = 1; step <= 5; step++) {
  const r = await peft.lossAndGradients({ inputIds, attentionMask, labels }, { stepSeed: step });
  for (const [name, g] of r.grads) {
    const w = peft.tensor(name).data;
    for (let i = 0; i < w.length; i++) w[i]! -= 0.5 * g.data[i]!;
  }
  console.log(`step ${step}: loss ${r.loss.toFixed(4)}`);
}

// The adapter in PEFT's format, and back.
const adapterDir = path.join(outDir, 'adapter');
await peft.savePretrained(adapterDir);
console.log(`adapter saved to ${adapterDir} (adapter_config.json + adapter_model.safetensors)`);
const reloaded = await PeftModel.fromPretrained(model, adapterDir, { isTrainable: true });
const check = await reloaded.forward({ inputIds, attentionMask, labels });
console.log(`reloaded adapter: eval loss ${check.loss!.toFixed(4)}`);
await reloaded.release();

// Merged into the base (4-bit weights are dequantised first) and saved as a plain HF model folder.
const merged = await peft.mergeAndUnload();
const mergedDir = path.join(outDir, 'merged');
await merged.savePretrained(mergedDir);
console.log(`merged model saved to ${mergedDir}`);
await merged.release();
