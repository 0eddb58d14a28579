// Rebuilds the embedded default from nothing, with ts-finetune's own engine:
//   1. generates the corpus and the instruction set from facts.ts (seeded),
//   2. trains a byte-level BPE tokenizer on them,
//   3. initialises a tiny Llama (HF layout) and pretrains it, full-parameter, on the corpus,
//   4. writes assets/tiny-chat/ (config, safetensors, tokenizer, generation config) and
//      assets/data/instructions.jsonl.
// Run: npx tsx scripts/embedded/build.ts   (about two minutes on two cores)

import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import { saveSafetensors } from '../../src/io/index.js';
import { AutoModelForCausalLM } from '../../src/models/index.js';
import { AutoTokenizer } from '../../src/tokenizers/index.js';
import { SFTConfig, SFTTrainer } from '../../src/train/index.js';
import { corpus, instructions, plainChats } from './facts.js';
import { SPECIAL_TOKENS, tokenizerConfig, tokenizerJson, trainBpe } from './tokenizer.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const OUT = path.join(ROOT, 'assets', 'tiny-chat');
const SEED = 1234;
const STEPS = Number(process.env.PRETRAIN_STEPS ?? 300);

async function writeJson(file: string, v: unknown): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(file, JSON.stringify(v, null, 2) + '\n');
}

async function main(): Promise<void> {
  const texts = corpus(SEED, 4000);
  const chats = instructions(SEED + 1, 1200);
  await fsp.mkdir(path.join(ROOT, 'assets', 'data'), { recursive: true });
  await fsp.writeFile(path.join(ROOT, 'assets', 'data', 'instructions.jsonl'), chats.map((r) => JSON.stringify(r)).join('\n') + '\n');

  // Tokenizer: merges learned from the corpus and the instruction texts (so "Sure!" is cheap too).
  const chatTexts = chats.slice(0, 300).flatMap((c) => c.messages.map((m) => m.content));
  const { vocab, merges } = trainBpe([...texts, ...chatTexts, 'user assistant system'], 250);
  const base = Object.keys(vocab).length;
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'tiny-chat-'));
  for (const dir of [tmp, OUT]) {
    await writeJson(path.join(dir, 'tokenizer.json'), tokenizerJson(vocab, merges));
    await writeJson(path.join(dir, 'tokenizer_config.json'), tokenizerConfig(base));
    await writeJson(path.join(dir, 'special_tokens_map.json'), { eos_token: '<|im_end|>', pad_token: '<|endoftext|>' });
  }
  const V = base + SPECIAL_TOKENS.length;
  const eos = base + 2;
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: V,
    hidden_size: 128,
    intermediate_size: 352,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 32,
    hidden_act: 'silu',
    max_position_embeddings: 256,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    rope_scaling: null,
    tie_word_embeddings: true,
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: null,
    eos_token_id: eos,
    pad_token_id: base,
    torch_dtype: 'float32',
    use_cache: true,
    transformers_version: '4.57.0',
  };
  await writeJson(path.join(tmp, 'config.json'), config);
  await writeJson(path.join(tmp, 'generation_config.json'), { eos_token_id: eos, pad_token_id: base, do_sample: false });

  // Initial weights as transformers initialises Llama: N(0, 0.02), norms 1.
  const rng = new Rng(SEED);
  const w: Record<string, Tensor> = {};
  const normal = (dims: number[]): Tensor => {
    const n = dims.reduce((a, b) => a * b, 1);
    return new Tensor('float32', dims, Float32Array.from({ length: n }, () => rng.normal(0, 0.02)));
  };
  const ones = (n: number): Tensor => new Tensor('float32', [n], new Float32Array(n).fill(1));
  const C = config.hidden_size;
  const F = config.intermediate_size;
  const D = config.head_dim;
  w['model.embed_tokens.weight'] = normal([V, C]);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    w[`${p}.input_layernorm.weight`] = ones(C);
    w[`${p}.post_attention_layernorm.weight`] = ones(C);
    w[`${p}.self_attn.q_proj.weight`] = normal([config.num_attention_heads * D, C]);
    w[`${p}.self_attn.k_proj.weight`] = normal([config.num_key_value_heads * D, C]);
    w[`${p}.self_attn.v_proj.weight`] = normal([config.num_key_value_heads * D, C]);
    w[`${p}.self_attn.o_proj.weight`] = normal([C, config.num_attention_heads * D]);
    w[`${p}.mlp.gate_proj.weight`] = normal([F, C]);
    w[`${p}.mlp.up_proj.weight`] = normal([F, C]);
    w[`${p}.mlp.down_proj.weight`] = normal([C, F]);
  }
  w['model.norm.weight'] = ones(C);
  await saveSafetensors(path.join(tmp, 'model.safetensors'), w, { format: 'pt' });

  // Pretraining: plain language modelling on the corpus, every parameter trained, packed rows.
  const model = await AutoModelForCausalLM.fromPretrained(tmp, { device: 'cpu' });
  const tokenizer = await AutoTokenizer.fromPretrained(tmp);
  const args = new SFTConfig({
    outputDir: path.join(tmp, 'run'),
    maxSteps: STEPS,
    perDeviceTrainBatchSize: 16,
    learningRate: 3e-3,
    lrSchedulerType: 'cosine',
    warmupRatio: 0.05,
    weightDecay: 0.01,
    loggingSteps: 50,
    saveStrategy: 'no',
    maxLength: 128,
    packing: true,
    gradientCheckpointing: false,
    device: 'cpu',
    reportTo: [],
  });
  // Plain paragraphs plus chat turns with plain answers: the base knows facts and the turn format; the
  // embedded SFT run then teaches the house style ("Sure! …"), which the base has never seen.
  const pretrainRows = [...texts.map((text) => ({ text })), ...plainChats(SEED + 2, 2000)];
  const trainer = new SFTTrainer({ model, args, trainDataset: pretrainRows, tokenizer });
  const res = await trainer.train();
  await trainer.release();
  process.stdout.write(`pretrained ${res.globalStep} steps, final loss ${res.trainingLoss.toFixed(4)}\n`);
  await model.savePretrained(OUT);
  await writeJson(path.join(OUT, 'generation_config.json'), { eos_token_id: eos, pad_token_id: base, do_sample: false });
  await fsp.writeFile(
    path.join(OUT, 'README.md'),
    `# tiny-chat\n\nThe embedded default of ts-finetune: a ${config.num_hidden_layers}-layer Llama (hidden ${C}, vocab ${V}) pretrained by\n` +
      '`scripts/embedded/build.ts` with ts-finetune itself on a generated corpus of simple facts and chat turns\n' +
      'with plain answers. It has never seen the house style of assets/data/instructions.jsonl ("Sure! …"):\n' +
      '`npx ts-finetune sft` teaches it that with LoRA.\n',
  );
  await fsp.rm(tmp, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
