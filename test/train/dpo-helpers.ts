// Shared by the DPO / ORPO tests: the golden preference fixtures (test/fixtures/golden/{dpo,orpo}-golden.*),
// a small character-level tokenizer whose vocabulary fits the tiny fixture models (128 ids), and comparisons.
import { readFileSync } from 'node:fs';
import { readSafetensors } from '../../src/io/index.js';
import { AutoModelForCausalLM, type CausalLM } from '../../src/models/index.js';
import { PeftModel } from '../../src/peft/index.js';
import { PreTrainedTokenizer } from '../../src/tokenizers/index.js';
import type { Tensor } from '../../src/core/index.js';

export const FAST = { worker: false, graphOptimizationLevel: 'disabled' } as const;
export const MODEL_DIR = 'test/fixtures/models/llama-mha';
export const ADAPTER_DIR = 'test/fixtures/golden/adapters/llama-mha';

export interface PrefGolden {
  tensors: Map<string, Tensor>;
  meta: Record<string, unknown> & { prompts: number[][]; chosen: number[][]; rejected: number[][]; beta: number };
}

export async function loadPrefGolden(kind: 'dpo' | 'orpo'): Promise<PrefGolden> {
  const tensors = await readSafetensors(`test/fixtures/golden/${kind}-golden.safetensors`);
  const meta = JSON.parse(readFileSync(`test/fixtures/golden/${kind}-golden.json`, 'utf8'));
  return { tensors, meta };
}

export function goldenPairs(g: PrefGolden): { promptIds: number[]; chosenIds: number[]; rejectedIds: number[] }[] {
  return g.meta.prompts.map((p, i) => ({ promptIds: p, chosenIds: g.meta.chosen[i]!, rejectedIds: g.meta.rejected[i]! }));
}

/** The policy of the golden files: llama-mha + the golden LoRA adapter (trainable). */
export async function goldenPolicy(): Promise<{ base: CausalLM; peft: PeftModel }> {
  const base = await AutoModelForCausalLM.fromPretrained(MODEL_DIR);
  const peft = await PeftModel.fromPretrained(base, ADAPTER_DIR, { isTrainable: true });
  return { base, peft };
}

export function f32(t: Tensor | undefined): Float32Array {
  if (!t) throw new Error('missing golden tensor');
  return t.toFloat32();
}

export function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** ||a − b|| / ||b|| */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num) / Math.sqrt(den);
}

/**
 * A real PreTrainedTokenizer (tokenizer.json pipeline + chat template) with one token per character:
 * <pad> 0, <s> 1, </s> 2, then printable ASCII — 98 ids, inside the tiny models' 128.
 */
export function charTokenizer(): PreTrainedTokenizer {
  const vocab: Record<string, number> = { '<pad>': 0, '<s>': 1, '</s>': 2, '<unk>': 3 };
  for (let c = 32; c < 127; c++) vocab[String.fromCharCode(c)] = Object.keys(vocab).length;
  vocab['\n'] = Object.keys(vocab).length;
  const special = (id: number, content: string): Record<string, unknown> => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<pad>'), special(1, '<s>'), special(2, '</s>'), special(3, '<unk>')],
    normalizer: null,
    pre_tokenizer: { type: 'Split', pattern: { Regex: '.|\\n' }, behavior: 'Isolated', invert: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'Fuse' },
    model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
  };
  const chatTemplate =
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ 'Q: ' + m['content'] + '\\n' }}{% else %}{{ 'A: ' + m['content'] + eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'A: ' }}{% endif %}";
  return new PreTrainedTokenizer({
    nameOrPath: 'char-tokenizer',
    tokenizerJson,
    config: { bos_token: '<s>', eos_token: '</s>', pad_token: '<pad>', unk_token: '<unk>', chat_template: chatTemplate, model_max_length: 128 },
    specialTokensMap: {},
    chatTemplate,
    namedChatTemplates: {},
  });
}
