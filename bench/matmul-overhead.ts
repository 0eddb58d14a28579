// Bench: what our encoder + runtime cost on top of onnxruntime-node itself (issue 5's targets: a
// [4,512,1024]×[1024,4096] MatMul at ≥ 90% of a raw ORT session's speed; ≤ 1 ms fixed overhead per run).
//   npx tsx bench/matmul-overhead.ts [--runs 9] [--tiny-runs 300]
// The same model bytes (encoded by src/onnx) are run by: a raw ort.InferenceSession on this thread, our
// Session in its worker thread (default), and our Session with worker: false. Runs are interleaved
// (raw, worker, in-process, raw, …) so machine noise hits all three alike; medians are reported.
// Models: `y = x·W` returning y (32 MiB, so the output copy ORT makes is included, as for any output),
// `s = sum(x·W)` returning a scalar (the GEMM alone), and `y = x + 1` on one float (fixed per-run cost).
import * as ort from 'onnxruntime-node';
import { Tensor } from '../src/core/tensor.js';
import { encodeModel } from '../src/onnx/encode.js';
import { AttrType, type ModelProto, type NodeProto } from '../src/onnx/proto.js';
import { createSession, defaultThreadCount, optOutOfOrtTelemetry, type Session } from '../src/runtime/index.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const RUNS = arg('--runs', 9);
const TINY_RUNS = arg('--tiny-runs', 300);
const THREADS = defaultThreadCount();
const [B, T, C, F] = [4, 512, 1024, 4096];
const GFLOP = (2 * B * T * C * F) / 1e9;

function model(name: string, nodes: NodeProto[], inDims: number[], outName: string, outDims: number[], W?: Float32Array): Uint8Array {
  const m: ModelProto = {
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }],
    producerName: 'bench',
    producerVersion: '0',
    graph: {
      name,
      node: nodes,
      initializer: W ? [{ name: 'W', dims: [C, F], dataType: 1, rawData: new Uint8Array(W.buffer) }] : [{ name: 'one', dims: [], dataType: 1, rawData: new Uint8Array(new Float32Array([1]).buffer) }],
      input: [{ name: 'x', elemType: 1, shape: inDims.map((d) => ({ dimValue: d })) }],
      output: [{ name: outName, elemType: 1, shape: outDims.map((d) => ({ dimValue: d })) }],
      valueInfo: [],
    },
  };
  return encodeModel(m);
}

const n = (opType: string, input: string[], output: string[], attribute: NodeProto['attribute'] = []): NodeProto => ({ input, output, name: output[0]!, opType, domain: '', attribute });

const W = Float32Array.from({ length: C * F }, (_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
const xData = Float32Array.from({ length: B * T * C }, (_, i) => ((i * 40503) % 997) / 997 - 0.5);

const t0 = performance.now();
const matmulBytes = model('matmul', [n('MatMul', ['x', 'W'], ['y'])], [B, T, C], 'y', [B, T, F], W);
const sumBytes = model('matmul_sum', [n('MatMul', ['x', 'W'], ['y']), n('ReduceSum', ['y'], ['s'], [{ name: 'keepdims', type: AttrType.INT, i: 0 }])], [B, T, C], 's', [], W);
const tinyBytes = model('tiny', [n('Add', ['x', 'one'], ['y'])], [1], 'y', [1]);
const encodeMs = performance.now() - t0;

const median = (a: number[]): number => {
  const s = [...a].sort((p, q) => p - q);
  return s[Math.floor(s.length / 2)]!;
};

interface Trio {
  raw: ort.InferenceSession;
  worker: Session;
  inproc: Session;
}

async function open(bytes: Uint8Array): Promise<Trio> {
  optOutOfOrtTelemetry(); // the raw session below is the process's first: as the library would (runtime/telemetry.ts)
  const raw = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: THREADS, executionMode: 'sequential' });
  const worker = await createSession(bytes, { device: 'cpu', reuse: false });
  const inproc = await createSession(bytes, { device: 'cpu', reuse: false, worker: false });
  return { raw, worker, inproc };
}

async function time(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

async function compare(label: string, bytes: Uint8Array, x: Float32Array, dims: number[], runs: number): Promise<{ raw: number; worker: number; inproc: number }> {
  const s = await open(bytes);
  const ortX = new ort.Tensor('float32', x, dims);
  const ourX = new Tensor('float32', dims, x);
  const acc = { raw: [] as number[], worker: [] as number[], inproc: [] as number[] };
  for (let i = 0; i < runs + 2; i++) {
    const r = await time(() => s.raw.run({ x: ortX }));
    const w = await time(() => s.worker.run({ x: ourX }));
    const p = await time(() => s.inproc.run({ x: ourX }));
    if (i >= 2) {
      // two warm-up rounds: first-run allocations and page faults
      acc.raw.push(r);
      acc.worker.push(w);
      acc.inproc.push(p);
    }
  }
  await s.raw.release();
  await s.worker.release();
  await s.inproc.release();
  const res = { raw: median(acc.raw), worker: median(acc.worker), inproc: median(acc.inproc) };
  console.log(
    `${label.padEnd(34)} raw ${res.raw.toFixed(3).padStart(9)} ms   worker ${res.worker.toFixed(3).padStart(9)} ms   in-process ${res.inproc.toFixed(3).padStart(9)} ms`,
  );
  return res;
}

console.log(`onnxruntime-node ${ort.env.versions.common}, ${THREADS} intra-op threads, medians of ${RUNS} (tiny: ${TINY_RUNS}) interleaved runs`);
console.log(`encode 3 models (16 MiB initializer) ${encodeMs.toFixed(1)} ms`);
const big = await compare(`MatMul [4,512,1024]x[1024,4096] → y`, matmulBytes, xData, [B, T, C], RUNS);
const sum = await compare(`MatMul … → sum (GEMM only)`, sumBytes, xData, [B, T, C], RUNS);
const tiny = await compare('Add [1] (fixed per-run cost)', tinyBytes, new Float32Array([1]), [1], TINY_RUNS);

const pct = (a: number, b: number): string => `${((100 * a) / b).toFixed(1)}%`;
console.log('');
console.log(`MatMul → y:   ours/raw speed: worker ${pct(big.raw, big.worker)}, in-process ${pct(big.raw, big.inproc)}  (raw ${(GFLOP / (big.raw / 1e3)).toFixed(0)} GFLOP/s)`);
console.log(`MatMul → sum: ours/raw speed: worker ${pct(sum.raw, sum.worker)}, in-process ${pct(sum.raw, sum.inproc)}  (raw ${(GFLOP / (sum.raw / 1e3)).toFixed(0)} GFLOP/s)`);
console.log(`fixed overhead per run beyond raw ORT: worker ${(tiny.worker - tiny.raw).toFixed(3)} ms, in-process ${(tiny.inproc - tiny.raw).toFixed(3)} ms (raw ${(tiny.raw * 1000).toFixed(0)} µs)`);
