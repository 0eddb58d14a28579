// Peak memory of DPO with LoRA and no refModel vs SFT with the same number of sequences per step (issue 9:
// within 1.1×, since the reference is the same base with adapters disabled inside the training graph — no
// second copy of the base). Each variant runs in its own child process (maxRSS is per process):
//   load      load the model and wrap it with LoRA, nothing else (the floor)
//   sft       SFTTrainer, 2P sequences per step
//   dpo       DPOTrainer, P pairs per step (= 2P sequences), refModel null: reference in the same graph
//   dpo-ref   DPOTrainer with a separate refModel (a second copy of the base, loaded from the same folder)
// The model is a random Llama written to a temp folder, big enough that its weights dominate the runtime's
// own footprint (default: hidden 384, 6 layers, vocab 4096 — 13.8M parameters, 53 MiB in fp32).
// Run: npx tsx bench/dpo-memory.ts [--hidden 384] [--layers 6] [--vocab 4096] [--pairs 4] [--T 128] [--steps 2]
// (about a minute on a quiet 2-core machine)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../src/core/rng.js';
import { Tensor } from '../src/core/tensor.js';
import { saveSafetensors } from '../src/io/index.js';
import { AutoModelForCausalLM } from '../src/models/index.js';
import { LoraConfig, getPeftModel } from '../src/peft/index.js';
import { DPOConfig, DPOTrainer, SFTConfig, SFTTrainer } from '../src/train/index.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}

const HIDDEN = Number(arg('hidden', '384'));
const LAYERS = Number(arg('layers', '6'));
const VOCAB = Number(arg('vocab', '4096'));
const PAIRS = Number(arg('pairs', '4'));
const T = Number(arg('T', '128'));
const STEPS = Number(arg('steps', '2'));

async function writeModel(dir: string): Promise<number> {
  const inter = Math.round((HIDDEN * 8) / 3 / 32) * 32;
  const heads = HIDDEN / 64;
  const cfg = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: VOCAB,
    hidden_size: HIDDEN,
    intermediate_size: inter,
    num_hidden_layers: LAYERS,
    num_attention_heads: heads,
    num_key_value_heads: heads,
    head_dim: 64,
    hidden_act: 'silu',
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 0,
    torch_dtype: 'float32',
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
  const rng = new Rng(1);
  const tensors = new Map<string, Tensor>();
  let n = 0;
  const add = (name: string, dims: number[], std: number, ones = false): void => {
    const size = dims.reduce((a, b) => a * b, 1);
    const d = new Float32Array(size);
    for (let i = 0; i < size; i++) d[i] = ones ? 1 : (rng.random() * 2 - 1) * std;
    tensors.set(name, new Tensor('float32', dims, d));
    n += size;
  };
  add('model.embed_tokens.weight', [VOCAB, HIDDEN], 0.02);
  for (let l = 0; l < LAYERS; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, [HIDDEN], 0, true);
    add(`${p}.post_attention_layernorm.weight`, [HIDDEN], 0, true);
    for (const k of ['q', 'k', 'v', 'o']) add(`${p}.self_attn.${k}_proj.weight`, [HIDDEN, HIDDEN], 0.03);
    add(`${p}.mlp.gate_proj.weight`, [inter, HIDDEN], 0.03);
    add(`${p}.mlp.up_proj.weight`, [inter, HIDDEN], 0.03);
    add(`${p}.mlp.down_proj.weight`, [HIDDEN, inter], 0.03);
  }
  add('model.norm.weight', [HIDDEN], 0, true);
  add('lm_head.weight', [VOCAB, HIDDEN], 0.02);
  await saveSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  return n;
}

/** Token-id rows: every sequence T tokens long (prompt T/2, completion T/2), so SFT and DPO see equal shapes. */
function rows(seed: number): { prompt_ids: number[]; chosen_ids: number[]; rejected_ids: number[] }[] {
  const rng = new Rng(seed);
  const ids = (k: number): number[] => Array.from({ length: k }, () => 3 + rng.randint(VOCAB - 3));
  return Array.from({ length: PAIRS * STEPS }, () => ({ prompt_ids: [1, ...ids(T / 2 - 1)], chosen_ids: ids(T / 2), rejected_ids: ids(T / 2) }));
}

async function child(kind: string, dir: string): Promise<void> {
  const t0 = performance.now();
  const base = await AutoModelForCausalLM.fromPretrained(dir);
  const lora = new LoraConfig({ r: 16, loraAlpha: 32, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] });
  const common = { outputDir: join(dir, `out-${kind}`), maxSteps: STEPS, reportTo: 'none', saveStrategy: 'no', disableTqdm: true, gradientCheckpointing: false, learningRate: 1e-4 } as const;
  const data = rows(7);
  let steps = 0;
  if (kind === 'load') {
    getPeftModel(base, lora);
  } else if (kind === 'sft') {
    // 2P sequences of T tokens per step, completion-only loss over the second half (as DPO's completions).
    const sftRows = data.flatMap((r) => [r, r]).map((r, i) => {
      const c = i % 2 === 0 ? r.chosen_ids : r.rejected_ids;
      return { input_ids: [...r.prompt_ids, ...c], completion_mask: [...r.prompt_ids.map(() => 0), ...c.map(() => 1)] };
    });
    const tokenizer = await tinyTokenizerStub();
    const trainer = new SFTTrainer({
      model: getPeftModel(base, lora),
      args: new SFTConfig({ ...common, perDeviceTrainBatchSize: 2 * PAIRS, maxLength: T, padToMultipleOf: T, packing: false }),
      trainDataset: sftRows.map((r) => ({ text: r.input_ids.map((x) => (x === 1 ? '<s>' : String.fromCharCode(0x4e00 + x))).join('') })),
      tokenizer,
    });
    steps = (await trainer.train()).globalStep;
    await trainer.release();
  } else {
    const refModel = kind === 'dpo-ref' ? await AutoModelForCausalLM.fromPretrained(dir) : null;
    const trainer = new DPOTrainer({
      model: getPeftModel(base, lora),
      refModel,
      args: new DPOConfig({ ...common, perDeviceTrainBatchSize: PAIRS, maxLength: T, maxPromptLength: T / 2, padToMultipleOf: T }),
      trainDataset: data,
    });
    steps = (await trainer.train()).globalStep;
    await trainer.release();
  }
  const out = { kind, maxRssMB: process.resourceUsage().maxRSS / 1024, seconds: (performance.now() - t0) / 1000, steps };
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`);
}

/**
 * SFT needs a tokenizer for text rows: one character per token id (CJK block offset), so that each SFT row
 * tokenizes to exactly the ids of one DPO sequence. Built in memory as a WordLevel tokenizer.json.
 */
async function tinyTokenizerStub(): Promise<import('../src/tokenizers/index.js').PreTrainedTokenizer> {
  const { PreTrainedTokenizer } = await import('../src/tokenizers/index.js');
  const vocab: Record<string, number> = { '<pad>': 0, '<s>': 1, '</s>': 2 };
  for (let i = 3; i < VOCAB; i++) vocab[String.fromCharCode(0x4e00 + i)] = i;
  const special = (id: number, content: string): Record<string, unknown> => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return new PreTrainedTokenizer({
    nameOrPath: 'bench-stub',
    tokenizerJson: {
      version: '1.0',
      added_tokens: [special(0, '<pad>'), special(1, '<s>'), special(2, '</s>')],
      normalizer: null,
      pre_tokenizer: { type: 'Split', pattern: { Regex: '.' }, behavior: 'Isolated', invert: false },
      post_processor: null,
      decoder: { type: 'Fuse' },
      model: { type: 'WordLevel', vocab, unk_token: '<pad>' },
    },
    config: { pad_token: '<pad>', eos_token: '</s>', bos_token: '<s>' },
    specialTokensMap: {},
    namedChatTemplates: {},
  });
}

async function main(): Promise<void> {
  const kindIdx = process.argv.indexOf('--child');
  if (kindIdx >= 0) return child(process.argv[kindIdx + 1]!, arg('dir', ''));
  const dir = mkdtempSync(join(tmpdir(), 'dpo-memory-'));
  try {
    const n = await writeModel(dir);
    console.log(`model: hidden ${HIDDEN}, ${LAYERS} layers, vocab ${VOCAB}: ${(n / 1e6).toFixed(1)}M params (${((n * 4) / 2 ** 20).toFixed(0)} MiB fp32); ` + `${PAIRS} pairs (${2 * PAIRS} sequences) × T ${T} per step, ${STEPS} steps`);
    const self = fileURLToPath(import.meta.url);
    const res: Record<string, { maxRssMB: number; seconds: number; steps: number }> = {};
    for (const kind of ['load', 'sft', 'dpo', 'dpo-ref']) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', kind, '--dir', dir, ...process.argv.slice(2)], { encoding: 'utf8', maxBuffer: 1 << 26 });
      const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (!line) {
        console.log(`${kind}: failed (exit ${r.status})\n${r.stderr.slice(-3000)}`);
        continue;
      }
      res[kind] = JSON.parse(line.slice(7));
      console.log(`${kind.padEnd(8)} peak RSS ${res[kind]!.maxRssMB.toFixed(0).padStart(6)} MiB   ${res[kind]!.seconds.toFixed(1)} s (${res[kind]!.steps} steps)`);
    }
    if (res.sft && res.dpo) console.log(`DPO (LoRA, no refModel) / SFT peak: ${(res.dpo.maxRssMB / res.sft.maxRssMB).toFixed(3)}×` + (res['dpo-ref'] ? `;  with a separate refModel: ${(res['dpo-ref'].maxRssMB / res.sft.maxRssMB).toFixed(3)}×` : ''));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
