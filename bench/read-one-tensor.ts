// Bench: peak-RSS cost of reading ONE tensor from a ~2 GiB safetensors checkpoint.
//   npx tsx bench/read-one-tensor.ts [--keep]
// Writes /tmp/tsft-bench-2g.safetensors (128 × 16 MiB F32 tensors; sparse, except the tensor we read, which
// holds real values), then in a fresh child process opens it with SafetensorsFile and reads one 16 MiB tensor,
// printing process.resourceUsage().maxRSS before and after. The goal (issue 2): the increase stays below
// 2× the tensor's size, i.e. the file is never read whole.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile } from '../src/io/index.js';

const FILE = '/tmp/tsft-bench-2g.safetensors';
const N_TENSORS = 128;
const ROWS = 2048;
const COLS = 2048; // 2048 × 2048 × 4 B = 16 MiB per tensor, 2 GiB in all
const TARGET = 77;
const name = (i: number): string => `model.layers.${i}.mlp.up_proj.weight`;

function targetValues(): Float32Array {
  const v = new Float32Array(ROWS * COLS);
  let s = 12345;
  for (let i = 0; i < v.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    v[i] = (s / 2 ** 32) * 2 - 1;
  }
  return v;
}

const digest = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex').slice(0, 16);

async function writeCheckpoint(): Promise<{ size: number; tensorBytes: number; hash: string }> {
  const tensorBytes = ROWS * COLS * 4;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  for (let i = 0; i < N_TENSORS; i++) {
    header[name(i)] = { dtype: 'F32', shape: [ROWS, COLS], data_offsets: [i * tensorBytes, (i + 1) * tensorBytes] };
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const dataStart = 8 + json.length;
  const size = dataStart + N_TENSORS * tensorBytes;
  const values = new Uint8Array(targetValues().buffer);
  const fh = await fsp.open(FILE, 'w');
  await fh.write(Buffer.concat([prefix, Buffer.from(json)]), 0, dataStart, 0);
  await fh.write(values, 0, values.length, dataStart + TARGET * tensorBytes);
  await fh.truncate(size); // the other 127 tensors are holes: a 2 GiB file written in milliseconds
  await fh.close();
  return { size, tensorBytes, hash: digest(values) };
}

async function child(): Promise<void> {
  const f = await SafetensorsFile.open(FILE);
  await f.read(name(0)); // warm up code paths, then drop it
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.resourceUsage().maxRSS; // KiB
  const t0 = performance.now();
  const t = await f.read(name(TARGET));
  const ms = performance.now() - t0;
  const after = process.resourceUsage().maxRSS;
  await f.close();
  process.stdout.write(JSON.stringify({ before, after, ms, bytes: t.byteLength, hash: digest(t.bytes()), dims: t.dims }));
}

async function main(): Promise<void> {
  if (process.argv.includes('--child')) return child();
  const t0 = performance.now();
  const { size, tensorBytes, hash } = await writeCheckpoint();
  console.log(`wrote ${FILE}: ${(size / 2 ** 30).toFixed(2)} GiB, ${N_TENSORS} tensors of ${tensorBytes / 2 ** 20} MiB (${(performance.now() - t0).toFixed(0)} ms)`);
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--child'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  const m = JSON.parse(r.stdout) as { before: number; after: number; ms: number; bytes: number; hash: string; dims: number[] };
  if (m.hash !== hash) throw new Error(`tensor content mismatch: ${m.hash} != ${hash}`);
  const incMiB = (m.after - m.before) / 1024;
  const tensorMiB = m.bytes / 2 ** 20;
  console.log(`read '${name(TARGET)}' [${m.dims.join(', ')}] F32 = ${tensorMiB} MiB in ${m.ms.toFixed(1)} ms (content verified)`);
  console.log(`peak RSS: ${(m.before / 1024).toFixed(1)} MiB before → ${(m.after / 1024).toFixed(1)} MiB after: +${incMiB.toFixed(1)} MiB = ${(incMiB / tensorMiB).toFixed(2)}× the tensor (goal < 2×; the file is ${(size / 2 ** 20).toFixed(0)} MiB)`);
  if (!process.argv.includes('--keep')) await fsp.rm(FILE, { force: true });
  if (incMiB >= 2 * tensorMiB) process.exitCode = 1;
}

await main();
