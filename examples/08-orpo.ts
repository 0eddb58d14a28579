// §6 of the walkthrough: ORPO with LoRA — no reference model; the loss is the chosen answer's NLL plus a
// log-odds-ratio term that pushes the chosen answer above the rejected one. On the embedded preference set
// (conversational rows: chosen = a true fact in the house style "Sure! …", rejected = a false one), so the
// embedded tiny-chat model, which only knows plain sentences, learns the chat format and the true facts.
// Runs offline in about 1.5 minutes on 2 cores:
//   npx tsx examples/08-orpo.ts                    (or: npx tsx examples/08-orpo.ts MODEL_DIR_OR_HUB_ID DATA.jsonl OUT_DIR)
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, LoraConfig, ORPOConfig, ORPOTrainer, PeftModel } from '../src/index.js'; // in your project: from 'ts-finetune'
import { loadDataset } from '../src/data/index.js'; // (root export pending) in your project: from 'ts-finetune'

const modelId = process.argv[2] ?? 'assets/tiny-chat';
const dataFile = process.argv[3] ?? 'assets/data/preferences.jsonl';
const outputDir = process.argv[4] ?? mkdtempSync(path.join(os.tmpdir(), 'ts-finetune-08-orpo-'));

const tokenizer = await AutoTokenizer.fromPretrained(modelId);
if (tokenizer.padToken === null) tokenizer.padToken = tokenizer.eosToken;
const model = await AutoModelForCausalLM.fromPretrained(modelId);
const data = await loadDataset('json', { dataFiles: { train: dataFile }, split: 'train' });
const { train, test } = data.trainTestSplit({ testSize: 0.1, seed: 42 });

const args = new ORPOConfig({
  outputDir,
  beta: 0.1, // the paper's λ
  orpoNllOverPrompt: false, // NLL over the chosen answer only (true: prompt too, as TRL's code)
  perDeviceTrainBatchSize: 8,
  perDeviceEvalBatchSize: 8,
  learningRate: 3e-3,
  lrSchedulerType: 'constant',
  maxSteps: 60,
  loggingSteps: 20,
  maxLength: 96,
  maxPromptLength: 48,
  gradientCheckpointing: false,
  saveStrategy: 'no',
  reportTo: 'none',
  seed: 42,
});
const peftConfig = new LoraConfig({ r: 16, loraAlpha: 32, targetModules: 'all-linear', taskType: 'CAUSAL_LM' });
const trainer = new ORPOTrainer({ model, args, trainDataset: train, evalDataset: test, tokenizer, peftConfig });

const pick = (m: Record<string, number>): string =>
  ['eval_loss', 'eval_nll_loss', 'eval_log_odds_chosen', 'eval_log_odds_ratio', 'eval_rewards/accuracies'].map((k) => `${k} ${m[k]!.toFixed(4)}`).join(', ');
console.log('before:', pick(await trainer.evaluate()));
const result = await trainer.train(); // logs loss, nll_loss, log_odds_ratio, log_odds_chosen, rewards/*, logps/*
console.log('after: ', pick(await trainer.evaluate()));
await trainer.saveModel();
console.log(`${result.globalStep} steps, train_loss ${result.trainingLoss.toFixed(4)}; adapter in ${outputDir}`);

// Merge the adapter and ask questions from the data (greedy). A 4-layer model after a minute of training
// has the format and is on its way to the facts; more steps (maxSteps 120+) help.
const merged = await (trainer.model as PeftModel).mergeAndUnload();
for (const q of ['What does a cow say?', 'What is 2 plus 3?']) {
  const prompt = tokenizer.applyChatTemplate([{ role: 'user', content: q }], { addGenerationPrompt: true });
  const [out] = await merged.generate([prompt], { maxNewTokens: 16, doSample: false, eosTokenId: tokenizer.eosTokenId!, padTokenId: tokenizer.padTokenId! });
  console.log(`user: ${q}\n  assistant: ${JSON.stringify(tokenizer.decode(out!.slice(prompt.length), { skipSpecialTokens: true }))}`);
}
await trainer.release();
await merged.release();
