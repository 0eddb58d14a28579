// Peak RSS of one training step (forward + backward) of a 12-layer transformer-shaped stack
// (C=512, T=1024, B=1, 8 heads, F=2048; test/autodiff/stack.ts) under three schedules:
//   plain       ORT's own order (backward() without a plan)
//   chain       weight-gradient chaining only (CheckpointPlan { recompute: 'none' })
//   recompute   recompute of every block without chaining ({ recompute: 'all', chainParameterGradients: false })
//   checkpoint  chaining + recompute of every block (CheckpointPlan { recompute: 'all' }, the default plan)
// for LoRA (r=16 on q, v, o, down; frozen base weights) and for full fine-tuning. Each variant runs in its
// own child process (maxRSS is per process); the gradients of all variants are compared.
// Run: node --import tsx bench/checkpoint-memory.ts [--layers 12] [--T 1024] [--modes lora,full] [--schedules plain,chain,recompute,checkpoint]
// (each child runs one step; 2–5 min per mode on the shared 2-core VM, mostly waiting for CPU)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trainingSessionOptions } from '../src/autodiff/index.js';
import { toModelProto } from '../src/graph/index.js';
import { encodeModel } from '../src/onnx/encode.js';
import { createSession } from '../src/runtime/index.js';
import { buildStack, type StackOptions } from '../test/autodiff/stack.js';

type Schedule = StackOptions['schedule'];
interface ChildResult {
  schedule: Schedule;
  lora: number;
  nodes: number;
  rssBeforeRunMB: number;
  maxRssMB: number;
  stepMs: number;
  loss: number;
  gradHash: string;
  gradFile: string;
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}

async function child(): Promise<void> {
  const schedule = arg('schedule', 'plain') as Schedule;
  const lora = Number(arg('lora', '16'));
  const layers = Number(arg('layers', '12'));
  const T = Number(arg('T', '1024'));
  const out = arg('out', '');
  const s = buildStack({ layers, B: 1, T, C: 512, H: 8, F: 2048, lora, schedule });
  const bytes = encodeModel(toModelProto(s.g).model);
  const sess = await createSession(bytes, { worker: false, reuse: false, ...trainingSessionOptions });
  const rssBeforeRunMB = process.memoryUsage().rss / 2 ** 20;
  // One step: the arena reaches its high-water mark in it (a second step would only add time on this
  // shared machine; its step time includes ORT's first-run allocations).
  const t0 = performance.now();
  const r = await sess.run(s.feeds);
  const stepMs = performance.now() - t0;
  const maxRssMB = process.resourceUsage().maxRSS / 1024;
  const h = createHash('sha256');
  const parts: Uint8Array[] = [];
  for (const n of s.gradNames) {
    const d = r[n]!.data as Float32Array;
    const b = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    h.update(b);
    parts.push(b);
  }
  writeFileSync(out, Buffer.concat(parts));
  const res: ChildResult = {
    schedule,
    lora,
    nodes: s.g.nodes.length,
    rssBeforeRunMB,
    maxRssMB,
    stepMs,
    loss: Number((r.loss!.data as Float32Array)[0]),
    gradHash: h.digest('hex').slice(0, 16),
    gradFile: out,
  };
  process.stdout.write(`RESULT ${JSON.stringify(res)}\n`);
  await sess.release();
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / Math.max(1e-3, Math.abs(a[i]!)));
  return m;
}

function parent(): void {
  const modes = arg('modes', 'lora,full').split(',');
  const layers = arg('layers', '12');
  const T = arg('T', '1024');
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-bench-'));
  const self = fileURLToPath(import.meta.url);
  try {
    for (const mode of modes) {
      const lora = mode === 'full' ? 0 : 16;
      const results: ChildResult[] = [];
      for (const schedule of arg('schedules', 'plain,chain,recompute,checkpoint').split(',') as Schedule[]) {
        const out = join(dir, `${mode}-${schedule}.bin`);
        const p = spawnSync(
          process.execPath,
          ['--import', 'tsx', self, '--child', '--schedule', schedule, '--lora', String(lora), '--layers', layers, '--T', T, '--out', out],
          { encoding: 'utf8', maxBuffer: 1 << 24 },
        );
        const line = p.stdout.split('\n').find((l) => l.startsWith('RESULT '));
        if (!line) throw new Error(`child ${mode}/${schedule} failed (status ${p.status}):\n${p.stderr.slice(-2000)}`);
        results.push(JSON.parse(line.slice(7)) as ChildResult);
      }
      const base = results[0]!;
      const baseGrads = new Float32Array(readFileSync(base.gradFile).buffer.slice(0));
      console.log(`\n${mode === 'full' ? 'all weights trainable' : 'LoRA r=16, frozen base'}: ${layers} layers, C=512, T=${T}, B=1, H=8, F=2048`);
      console.log('schedule     nodes  rss@load  peak RSS  ratio  1st step     loss        grads vs plain');
      for (const r of results) {
        const g = new Float32Array(readFileSync(r.gradFile).buffer.slice(0));
        const same = r.gradHash === base.gradHash ? 'bitwise identical' : `max rel diff ${maxRelDiff(baseGrads, g).toExponential(2)}`;
        console.log(
          `${r.schedule.padEnd(11)} ${String(r.nodes).padStart(6)} ${r.rssBeforeRunMB.toFixed(0).padStart(6)} MB ${r.maxRssMB.toFixed(0).padStart(6)} MB ` +
            `${(r.maxRssMB / base.maxRssMB).toFixed(2).padStart(5)}× ${r.stepMs.toFixed(0).padStart(6)} ms  ${r.loss.toPrecision(8)}  ${same}`,
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes('--child')) await child();
else parent();
