// `ts-finetune dpo` (and, through `preferenceCommand`, `ts-finetune orpo`): preference optimisation from the
// command line. With no arguments it trains the embedded default — the tiny Llama of assets/tiny-chat — on
// the embedded preference set (assets/data/preferences.jsonl: chosen = a true fact, rejected = a false one)
// with LoRA, prints the evaluation before and after and a sample from the merged model, and says where the
// adapter went. Every setting can come from --config run.yaml or key=value, as for `ts-finetune sft`.
// Without LoRA (`lora=false`) DPO's reference is the initial weights; `ref_model=DIR` loads a separate one.

import * as path from 'node:path';
import { TsFinetuneError } from '../core/errors.js';
import { AutoModelForCausalLM } from '../models/index.js';
import { PeftModel } from '../peft/index.js';
import { DPOConfig, DPOTrainer, ORPOConfig, ORPOTrainer } from '../train/index.js';
import { defaultRunDir, embedded, loadRunDataset, loadRunModel, resolveRunConfig } from './run-config.js';
import { sampleChat } from './sample.js';

const COMMON_ARGS: Record<string, unknown> = {
  per_device_train_batch_size: 8,
  per_device_eval_batch_size: 8,
  lr_scheduler_type: 'constant',
  logging_steps: 10,
  save_steps: 30,
  max_length: 96,
  max_prompt_length: 48,
  device: 'cpu',
  gradient_checkpointing: false,
  beta: 0.1,
};

export const DPO_DEFAULTS: Record<string, unknown> = {
  model: embedded('tiny-chat'),
  dataset: embedded('data', 'preferences.jsonl'),
  lora: { r: 16, lora_alpha: 32, target_modules: 'all-linear', lora_dropout: 0.0 },
  sample_prompt: 'What does a cow say?',
  args: { ...COMMON_ARGS, output_dir: defaultRunDir('ts-finetune-dpo-output'), max_steps: 60, learning_rate: 2e-3, loss_type: 'sigmoid' },
};

export const ORPO_DEFAULTS: Record<string, unknown> = {
  ...DPO_DEFAULTS,
  args: { ...COMMON_ARGS, output_dir: defaultRunDir('ts-finetune-orpo-output'), max_steps: 60, learning_rate: 3e-3 },
};

export async function preferenceCommand(kind: 'dpo' | 'orpo', argv: string[]): Promise<number> {
  const cfg = await resolveRunConfig(argv, kind === 'dpo' ? DPO_DEFAULTS : ORPO_DEFAULTS);
  const rawArgs = { ...cfg.args };
  const refModelDir = rawArgs.ref_model;
  delete rawArgs.ref_model;
  if (refModelDir !== undefined && kind === 'orpo') throw new TsFinetuneError('UNKNOWN_CONFIG_KEY', 'ref_model: ORPO has no reference model');
  const args = kind === 'dpo' ? new DPOConfig(rawArgs as never) : new ORPOConfig(rawArgs as never);
  const out = (s: string): boolean => process.stdout.write(`${s}\n`);
  out(`ts-finetune ${kind}: model ${cfg.model}, dataset ${cfg.dataset} (${cfg.datasetSplit}), output ${path.resolve(args.outputDir)}`);
  const { tokenizer, base, loadOpts } = await loadRunModel(cfg, args.useCpu ? 'cpu' : args.device);
  const train = await loadRunDataset(cfg.dataset, cfg.datasetSplit);
  const evalDs = cfg.evalSplit ? await loadRunDataset(cfg.dataset, cfg.evalSplit) : null;
  out(`\nBefore training — user: ${cfg.samplePrompt}\n  assistant: ${await sampleChat(base, tokenizer, cfg.samplePrompt, cfg.maxNewTokens)}\n`);
  const common = { model: base, trainDataset: train, evalDataset: evalDs, tokenizer, peftConfig: cfg.lora };
  const trainer =
    kind === 'dpo'
      ? new DPOTrainer({ ...common, args: args as DPOConfig, refModel: typeof refModelDir === 'string' ? await AutoModelForCausalLM.fromPretrained(refModelDir, loadOpts) : null })
      : new ORPOTrainer({ ...common, args: args as ORPOConfig });
  if (trainer.model instanceof PeftModel) trainer.model.printTrainableParameters();
  if (trainer instanceof DPOTrainer) out(`reference: ${trainer.referenceMode}`);
  const result = await trainer.train();
  await trainer.saveModel();
  await tokenizer.savePretrained(args.outputDir);
  const last = [...trainer.state.logHistory].reverse().find((e) => typeof e['rewards/accuracies'] === 'number');
  if (last) {
    const keys = kind === 'dpo' ? ['rewards/accuracies', 'rewards/margins'] : ['rewards/accuracies', 'nll_loss', 'log_odds_chosen'];
    out(`Last logged: ${keys.map((k) => `${k} ${Number(last[k]).toFixed(4)}`).join(', ')}`);
  }
  await trainer.release();
  const policy = trainer.model instanceof PeftModel ? await trainer.model.mergeAndUnload() : base;
  if (policy === base) await base.release(); // generation graphs bake the weights: rebuild them with the trained ones
  out(`\nAfter training — user: ${cfg.samplePrompt}\n  assistant: ${await sampleChat(policy, tokenizer, cfg.samplePrompt, cfg.maxNewTokens)}\n`);
  out(`Trained ${result.globalStep} steps (final loss ${result.trainingLoss.toFixed(4)}).`);
  out(`${cfg.lora ? 'Adapter' : 'Model'} saved to ${path.resolve(args.outputDir)}; logs in ${path.resolve(args.outputDir, 'logs')}`);
  return result.interrupted ? 130 : 0;
}

export async function dpoCommand(argv: string[]): Promise<number> {
  return preferenceCommand('dpo', argv);
}
