// §4 of the walkthrough end to end: dataset → tokenizer → model → LoRA config → SFTConfig → SFTTrainer.train →
// evaluate → saveModel → generate. Runs offline on the embedded default — assets/tiny-chat, a 4-layer Llama
// the repository pretrained with its own engine, with a ChatML template — and the embedded instruction set
// (assets/data/instructions.jsonl: conversations whose answers start with the house style "Sure! …").
// Under two minutes on 2 cores:
//   npx tsx examples/06-sft.ts                     (or: npx tsx examples/06-sft.ts MODEL_DIR_OR_HUB_ID DATA.jsonl OUT_DIR)
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, LoraConfig, PeftModel, SFTConfig, SFTTrainer, loadDataset, type GenerateOptions } from '../src/index.js'; // in your project: from 'ts-finetune'

const modelId = process.argv[2] ?? 'assets/tiny-chat';
const dataFile = process.argv[3] ?? 'assets/data/instructions.jsonl';
const outputDir = process.argv[4] ?? mkdtempSync(path.join(os.tmpdir(), 'ts-finetune-06-sft-'));

// 1–2. The dataset: rows { messages: [{ role: 'user', … }, { role: 'assistant', … }] }, split for evaluation.
const data = await loadDataset('json', { dataFiles: { train: dataFile }, split: 'train' });
const { train, test } = data.trainTestSplit({ testSize: 0.05, seed: 42 });
console.log(`${train.numRows} training rows, ${test.numRows} held out; first:`, JSON.stringify(train.get(0)));

// The tokenizer (its chat template renders the conversations) and the model.
const tokenizer = await AutoTokenizer.fromPretrained(modelId);
if (tokenizer.padToken === null) tokenizer.padToken = tokenizer.eosToken;
const model = await AutoModelForCausalLM.fromPretrained(modelId, { device: 'cpu' });

// A greedy answer to one question, through the chat template.
async function ask(m: { generate(ids: number[][], o: GenerateOptions): Promise<number[][]> }, question: string): Promise<string> {
  const ids = tokenizer.applyChatTemplate([{ role: 'user', content: question }], { tokenize: true, addGenerationPrompt: true });
  const opts: GenerateOptions = { maxNewTokens: 24, doSample: false };
  if (tokenizer.eosTokenId !== null) opts.eosTokenId = tokenizer.eosTokenId;
  const [out] = await m.generate([ids], opts);
  return tokenizer.decode(out!.slice(ids.length), { skipSpecialTokens: true });
}
const question = 'What colour is the grass?';
console.log(`before: ${question} → ${JSON.stringify(await ask(model, question))}`);

// 4. LoRA on every linear layer but lm_head.
const peftConfig = new LoraConfig({ r: 16, loraAlpha: 32, targetModules: 'all-linear', loraDropout: 0.0, bias: 'none', taskType: 'CAUSAL_LM' });

// 4e. The training arguments (TRL's SFTConfig = TrainingArguments + the SFT fields).
const args = new SFTConfig({
  outputDir,
  maxSteps: 120,
  perDeviceTrainBatchSize: 8,
  gradientAccumulationSteps: 1,
  learningRate: 3e-3,
  lrSchedulerType: 'cosine',
  warmupRatio: 0.05,
  maxGradNorm: 1.0,
  optim: 'adamw_torch', // or 'adamw_8bit', 'paged_adamw_32bit', 'paged_adamw_8bit'
  loggingSteps: 20,
  evalStrategy: 'steps',
  evalSteps: 60,
  saveSteps: 60,
  saveTotalLimit: 2,
  maxSeqLength: 96,
  assistantOnlyLoss: true, // train only the assistant turns (and their <|im_end|>), not the questions
  gradientCheckpointing: false, // a 4-layer model needs no recomputation
  reportTo: ['jsonl', 'tensorboard'],
  device: 'cpu',
  seed: 42,
});

// 4f. The trainer wraps the model with the LoRA config (or pass a PeftModel from getPeftModel as `model`).
const trainer = new SFTTrainer({ model, peftConfig, args, trainDataset: train, evalDataset: test, tokenizer });
const result = await trainer.train(); // or trainer.train({ resumeFromCheckpoint: true }) after Ctrl-C
console.log(`${result.globalStep} steps, train_loss ${result.trainingLoss.toFixed(4)}`);
const metrics = await trainer.evaluate();
console.log(`eval_loss ${metrics.eval_loss!.toFixed(4)}, eval_mean_token_accuracy ${metrics.eval_mean_token_accuracy!.toFixed(3)}`);

// 4g. The adapter (adapter_config.json + adapter_model.safetensors) and the tokenizer, in the HF layout.
await trainer.saveModel(outputDir);
console.log(`adapter, tokenizer, checkpoints and logs in ${outputDir}`);

// The trained model answers in the dataset's style. The same adapter, loaded again onto a fresh base:
const peft = trainer.model as PeftModel;
console.log(`after:  ${question} → ${JSON.stringify(await ask(peft, question))}`);
const reloaded = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(modelId, { device: 'cpu' }), outputDir);
console.log(`reloaded adapter: ${question} → ${JSON.stringify(await ask(reloaded, question))}`);
await trainer.release();
