// §1 of the walkthrough, "Download": loadDataset from the Hub (→ HF cache), the whole DatasetDict, local parquet
// files, hfHubDownload of one file, and Dataset.fromParquet. Runs offline on the copy of the dataset's layout
// that ships in examples/data/python-code (data/train-00000-of-00001.parquet, made from python-code-sample.jsonl):
//   npx tsx examples/01-datasets.ts          (offline, local files)
//   npx tsx examples/01-datasets.ts --hub    (downloads jtatman/python-code-dataset-500k: ~1 GB, network needed)
import * as os from 'node:os';
import * as path from 'node:path';
import { Dataset, hfHubDownload, loadDataset } from '../src/index.js'; // in your project: from 'ts-finetune'

const hub = process.argv.includes('--hub');
const repo = hub ? 'jtatman/python-code-dataset-500k' : path.join(import.meta.dirname, 'data', 'python-code');

// 1. Download: a Hub id (or a local folder laid out like a Hub repo) → one split, or every split.
const train = await loadDataset(repo, { split: 'train' }); // Hub → HF cache (offline re-runs read the cache)
const all = await loadDataset(repo); // DatasetDict
console.log('train:', String(train));
console.log('all splits:', all.keys(), all.numRows);

// The same files through the parquet builder, with a glob.
const dataDir = hub ? undefined : path.join(repo, 'data');
const local = dataDir ? await loadDataset('parquet', { dataFiles: { train: path.join(dataDir, '*.parquet') } }) : all; // also json, csv, text, arrow
console.log('parquet builder:', local.numRows);

// One file of the repo → a local path, then a Dataset from it.
const file = hub
  ? await hfHubDownload({ repoId: 'jtatman/python-code-dataset-500k', filename: 'data/train-00000-of-00002.parquet', repoType: 'dataset' })
  : path.join(repo, 'data', 'train-00000-of-00001.parquet');
const fromFile = await Dataset.fromParquet(file);
console.log(`fromParquet(${path.basename(file)}): ${fromFile.numRows} rows`);

// What is in it.
console.log('numRows:', train.numRows);
console.log('columnNames:', train.columnNames);
console.log('features:', JSON.stringify(train.features));
console.log('get(0):', train.get(0)); // { output, instruction, system }

// Other sources: a JSON Lines file, and the Arrow folder saveToDisk writes.
const jsonl = await loadDataset('json', { dataFiles: path.join(import.meta.dirname, 'data', 'python-code-sample.jsonl'), split: 'train' });
const saved = path.join(os.tmpdir(), 'ts-finetune-example-ds');
await jsonl.saveToDisk(saved);
console.log('jsonl rows:', jsonl.numRows, '→ saved and reloaded:', (await Dataset.loadFromDisk(saved)).numRows, 'rows from', saved);

// Streaming: rows read on demand (parquet row group by row group), nothing loaded up front.
const stream = await loadDataset(repo, { split: 'train', streaming: true });
for await (const row of stream.take(2)) console.log('streamed:', row.instruction);
