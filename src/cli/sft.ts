// `ts-finetune sft`: supervised fine-tuning from the command line. With no arguments it trains the
// embedded default — a tiny Llama the repository pretrained with its own engine (assets/tiny-chat) — on
// the embedded instruction set (assets/data/instructions.jsonl) with LoRA, printing a sample before and
// after, and says where the adapter went. Every setting can come from --config run.yaml or key=value.

import * as path from 'node:path';
import { getPeftModel } from '../peft/index.js';
import { SFTConfig, SFTTrainer } from '../train/index.js';
import { defaultRunDir, embedded, loadRunDataset, loadRunModel, resolveRunConfig } from './run-config.js';
import { sampleChat } from './sample.js';

export const SFT_DEFAULTS: Record<string, unknown> = {
  model: embedded('tiny-chat'),
  dataset: embedded('data', 'instructions.jsonl'),
  lora: { r: 16, lora_alpha: 32, target_modules: 'all-linear', lora_dropout: 0.0 },
  sample_prompt: 'What does a cow say?',
  args: {
    output_dir: defaultRunDir('ts-finetune-output'),
    max_steps: 120,
    per_device_train_batch_size: 8,
    learning_rate: 3e-3,
    lr_scheduler_type: 'cosine',
    warmup_ratio: 0.05,
    logging_steps: 20,
    save_steps: 60,
    max_length: 96,
    device: 'cpu',
    gradient_checkpointing: false,
  },
};

export async function sftCommand(argv: string[]): Promise<number> {
  const cfg = await resolveRunConfig(argv, SFT_DEFAULTS);
  const args = new SFTConfig(cfg.args as never);
  const out = (s: string): boolean => process.stdout.write(`${s}\n`);
  out(`ts-finetune sft: model ${cfg.model}, dataset ${cfg.dataset} (${cfg.datasetSplit}), output ${path.resolve(args.outputDir)}`);
  const { tokenizer, base } = await loadRunModel(cfg, args.useCpu ? 'cpu' : args.device);
  const train = await loadRunDataset(cfg.dataset, cfg.datasetSplit);
  const evalDs = cfg.evalSplit ? await loadRunDataset(cfg.dataset, cfg.evalSplit) : undefined;
  const model = cfg.lora ? getPeftModel(base, cfg.lora, { seed: args.seed }) : base;
  if (cfg.lora && 'printTrainableParameters' in model) (model as { printTrainableParameters(): void }).printTrainableParameters();
  out(`\nBefore training — user: ${cfg.samplePrompt}\n  assistant: ${await sampleChat(model, tokenizer, cfg.samplePrompt, cfg.maxNewTokens)}\n`);
  const trainer = new SFTTrainer({ model, args, trainDataset: train, evalDataset: evalDs ?? null, tokenizer });
  const result = await trainer.train();
  await trainer.saveModel();
  await tokenizer.savePretrained(args.outputDir);
  out(`\nAfter training — user: ${cfg.samplePrompt}\n  assistant: ${await sampleChat(model, tokenizer, cfg.samplePrompt, cfg.maxNewTokens)}\n`);
  out(`Trained ${result.globalStep} steps (final loss ${result.trainingLoss.toFixed(4)}).`);
  out(`Adapter saved to ${path.resolve(args.outputDir)} (adapter_config.json, adapter_model.safetensors); logs in ${path.resolve(args.outputDir, 'logs')}`);
  await trainer.release();
  return result.interrupted ? 130 : 0;
}
