// §5 of the walkthrough: DPO with LoRA and no separate reference model (the reference is the same base with
// the adapter disabled, inside the training graph), on the embedded preference set — conversational rows
// whose chosen answer states a true fact and whose rejected answer a false one. Runs offline on the embedded
// tiny-chat model (assets/tiny-chat: a 4-layer Llama with its own tokenizer), in about a minute on 2 cores:
//   npx tsx examples/07-dpo.ts                     (or: npx tsx examples/07-dpo.ts MODEL_DIR_OR_HUB_ID DATA.jsonl OUT_DIR)
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, DPOConfig, DPOTrainer, LoraConfig } from '../src/index.js'; // in your project: from 'ts-finetune'
import { loadDataset } from '../src/data/index.js'; // (root export pending) in your project: from 'ts-finetune'

const modelId = process.argv[2] ?? 'assets/tiny-chat';
const dataFile = process.argv[3] ?? 'assets/data/preferences.jsonl';
const outputDir = process.argv[4] ?? mkdtempSync(path.join(os.tmpdir(), 'ts-finetune-07-dpo-'));

const tokenizer = await AutoTokenizer.fromPretrained(modelId);
if (tokenizer.padToken === null) tokenizer.padToken = tokenizer.eosToken;
const model = await AutoModelForCausalLM.fromPretrained(modelId);

// Rows: { prompt: [{role:'user',…}], chosen: [{role:'assistant',…}], rejected: [{role:'assistant',…}] }.
const data = await loadDataset('json', { dataFiles: { train: dataFile }, split: 'train' });
const { train, test } = data.trainTestSplit({ testSize: 0.1, seed: 42 });
console.log(`${train.numRows} training pairs, ${test.numRows} held out; first:`, JSON.stringify(train.get(0)));

const args = new DPOConfig({
  outputDir,
  beta: 0.1,
  lossType: 'sigmoid', // or 'ipo', 'hinge'; labelSmoothing > 0 for cDPO
  perDeviceTrainBatchSize: 8,
  perDeviceEvalBatchSize: 8,
  learningRate: 2e-3,
  lrSchedulerType: 'constant',
  maxSteps: 30,
  loggingSteps: 5,
  maxLength: 96,
  maxPromptLength: 48,
  gradientCheckpointing: false,
  saveStrategy: 'no',
  reportTo: 'none',
  seed: 42,
});
const peftConfig = new LoraConfig({ r: 16, loraAlpha: 32, targetModules: 'all-linear', taskType: 'CAUSAL_LM' });
const trainer = new DPOTrainer({ model, refModel: null, args, trainDataset: train, evalDataset: test, tokenizer, peftConfig });
console.log(`reference: ${trainer.referenceMode}`); // adapters-disabled: no second copy of the base

const pick = (m: Record<string, number>): string =>
  ['eval_loss', 'eval_rewards/accuracies', 'eval_rewards/margins', 'eval_logps/chosen', 'eval_logps/rejected'].map((k) => `${k} ${m[k]!.toFixed(4)}`).join(', ');
console.log('before:', pick(await trainer.evaluate()));
const result = await trainer.train(); // logs loss, rewards/*, logps/*, logits/* every loggingSteps
console.log('after: ', pick(await trainer.evaluate()));
await trainer.saveModel(); // adapter_config.json + adapter_model.safetensors
console.log(`${result.globalStep} steps, train_loss ${result.trainingLoss.toFixed(4)}; adapter in ${outputDir}`);
await trainer.release();
