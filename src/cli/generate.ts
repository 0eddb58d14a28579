// `ts-finetune generate`: load a model folder (or Hub id) and its tokenizer, optionally a LoRA adapter,
// tokenize the prompt (through the chat template with --chat), generate, and print the completion as it
// is produced. Defaults come from the model's generation_config.json, as transformers' generate takes
// them; flags win. Like `transformers`' text-generation pipeline, minus batching.
// Not here: the decoding itself (src/models/generate.ts).

import { TsFinetuneError, closestName } from '../core/errors.js';
import { resolveModelDir } from '../io/index.js';
import { AutoModelForCausalLM, generate, readGenerationConfig, releaseGenerationPrograms, type GenerateOptions } from '../models/index.js';
import { PeftModel } from '../peft/index.js';
import { AutoTokenizer } from '../tokenizers/index.js';

const USAGE = `Usage: ts-finetune generate --model DIR [--adapter DIR] --prompt "…" [options]

Generates a completion of the prompt and prints it.
  --model DIR|HUB_ID     model folder (config.json, safetensors, tokenizer files) or Hub id
  --adapter DIR|HUB_ID   a PEFT LoRA adapter to apply
  --prompt TEXT          the prompt (required)
  --chat                 wrap the prompt as a user message in the tokenizer's chat template
  --max-new-tokens N     tokens to generate (default: generation_config.json's, else 128)
  --do-sample            sample instead of greedy decoding
  --temperature T        sampling temperature (> 0)
  --top-k K              keep the K most likely tokens when sampling (0 = all; default 50)
  --top-p P              nucleus sampling threshold in (0, 1]
  --seed N               sampling seed (same seed, same text)
  --device D             cpu (default), cuda, webgpu or auto
`;

interface Flags {
  model?: string;
  adapter?: string;
  prompt?: string;
  chat: boolean;
  device?: string;
  gen: GenerateOptions;
}

const VALUE_FLAGS = ['--model', '--adapter', '--prompt', '--max-new-tokens', '--temperature', '--top-k', '--top-p', '--seed', '--device'];
const BOOL_FLAGS = ['--chat', '--do-sample'];

function parseNumber(flag: string, v: string, integer: boolean): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `${flag} needs ${integer ? 'an integer' : 'a number'}, got '${v}'`);
  }
  return n;
}

export function parseGenerateArgs(argv: readonly string[]): Flags {
  const f: Flags = { chat: false, gen: {} };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.indexOf('=');
    const flag = raw.startsWith('--') && eq > 0 ? raw.slice(0, eq) : raw;
    if (BOOL_FLAGS.includes(flag)) {
      if (flag === '--chat') f.chat = true;
      else f.gen.doSample = true;
      continue;
    }
    if (!VALUE_FLAGS.includes(flag)) {
      const near = closestName(flag, [...VALUE_FLAGS, ...BOOL_FLAGS]);
      throw new TsFinetuneError('INVALID_ARGUMENT', `unknown option '${raw}'${near ? ` (did you mean '${near}'?)` : ''}`);
    }
    let v: string | undefined;
    if (flag !== raw) v = raw.slice(eq + 1);
    else v = argv[++i];
    if (v === undefined) throw new TsFinetuneError('INVALID_ARGUMENT', `${flag} needs a value`);
    switch (flag) {
      case '--model': f.model = v; break;
      case '--adapter': f.adapter = v; break;
      case '--prompt': f.prompt = v; break;
      case '--device': f.device = v; break;
      case '--max-new-tokens': f.gen.maxNewTokens = parseNumber(flag, v, true); break;
      case '--temperature': f.gen.temperature = parseNumber(flag, v, false); break;
      case '--top-k': f.gen.topK = parseNumber(flag, v, true); break;
      case '--top-p': f.gen.topP = parseNumber(flag, v, false); break;
      case '--seed': f.gen.seed = parseNumber(flag, v, true); break;
    }
  }
  return f;
}

export async function generateCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  let flags: Flags;
  try {
    flags = parseGenerateArgs(argv);
    if (!flags.model) throw new TsFinetuneError('INVALID_ARGUMENT', '--model is required');
    if (flags.prompt === undefined) throw new TsFinetuneError('INVALID_ARGUMENT', '--prompt is required');
    if (flags.device !== undefined && !['cpu', 'cuda', 'webgpu', 'auto'].includes(flags.device)) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `--device must be cpu, cuda, webgpu or auto, got '${flags.device}'`);
    }
  } catch (e) {
    process.stderr.write(`ts-finetune generate: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const device = (flags.device ?? 'cpu') as 'cpu' | 'cuda' | 'webgpu' | 'auto';
  const model = await AutoModelForCausalLM.fromPretrained(flags.model, { device });
  const dir = await resolveModelDir(flags.model); // already fetched by fromPretrained
  const tokenizer = await AutoTokenizer.fromPretrained(flags.model);
  const defaults = await readGenerationConfig(dir);
  if (Object.keys(defaults.ignored).length > 0) {
    process.stderr.write(`ts-finetune generate: generation_config.json settings not implemented, ignored: ${JSON.stringify(defaults.ignored)}\n`);
  }
  const opts: GenerateOptions = { maxNewTokens: 128, ...defaults.options, ...flags.gen };
  // The model's EOS ids (generation_config.json, else config.json) plus the tokenizer's: a chat tokenizer's
  // EOS is often the end-of-turn token, which is where a chat completion should stop.
  const eosIds = [opts.eosTokenId ?? model.config.eosTokenId ?? []].flat();
  if (tokenizer.eosTokenId !== null && !eosIds.includes(tokenizer.eosTokenId)) eosIds.push(tokenizer.eosTokenId);
  opts.eosTokenId = eosIds;
  if (opts.padTokenId === undefined && model.config.padTokenId === undefined && tokenizer.padTokenId !== null) opts.padTokenId = tokenizer.padTokenId;

  const ids = flags.chat
    ? tokenizer.applyChatTemplate([{ role: 'user', content: flags.prompt }], { addGenerationPrompt: true })
    : tokenizer.encode(flags.prompt);
  // Stream: decode everything generated so far and print what was added (multi-byte pieces settle later).
  const fresh: number[] = [];
  let printed = '';
  const eos = new Set(eosIds);
  opts.onStep = (tokens) => {
    if (!eos.has(tokens[0]!)) fresh.push(tokens[0]!);
    const text = tokenizer.decode(fresh, { skipSpecialTokens: true });
    if (text.startsWith(printed) && !text.endsWith('\uFFFD')) {
      process.stdout.write(text.slice(printed.length));
      printed = text;
    }
  };
  const peft = flags.adapter ? await PeftModel.fromPretrained(model, flags.adapter) : undefined;
  try {
    await (peft ? generate(peft, [ids], opts) : model.generate([ids], opts));
    const text = tokenizer.decode(fresh, { skipSpecialTokens: true });
    if (text.startsWith(printed)) process.stdout.write(text.slice(printed.length));
    else process.stdout.write(`\n${text}`);
    process.stdout.write('\n');
  } finally {
    if (peft) await releaseGenerationPrograms(peft);
    await peft?.release();
    await model.release();
  }
  return 0;
}
