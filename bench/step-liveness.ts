// Bench tool: where a training step's activation memory is at its peak. Runs one LoRA / QLoRA step with
// ORT's profiler on and its optimised graph saved, then replays the profiled node order over that graph:
// each node's outputs (shapes from the profile) become live when it runs and die after their last
// consumer; Reshape / Squeeze / Unsqueeze / Flatten / Identity outputs share their input's buffer. Prints
// the live bytes over the step, the node at the peak, and what is alive there grouped by producer.
//   npx tsx bench/step-liveness.ts [--layers 4] [--hidden 2048] [--intermediate 5632] [--B 4] [--T 256]
//                                  [--case nf4+ckpt] [--model-dir DIR] [--top 25]
// Why a replay and not ORT's arena: onnxruntime-node exposes no arena statistics. The replay is an upper
// bound of what ORT needs live (its planner may also run elementwise ops in place) and ignores the
// arena's fragmentation; `bench/lora-memory.ts` measures the RSS this explains.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { decodeModel } from '../src/onnx/decode.js';
import { AutoModelForCausalLM } from '../src/models/index.js';
import { StepProgram } from '../src/models/program.js';
import { causalLmObjective } from '../src/models/step-graph.js';
import { LoraConfig, getPeftModel } from '../src/peft/index.js';
import { BitsAndBytesConfig } from '../src/quant/index.js';
import { randomBatch } from './lib/llama-50m.js';
import { argOf, llamaConfigJson, shapeFromArgs, writeRandomCheckpoint } from './lib/random-checkpoint.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => argOf(argv, name, dflt);
const MB = 2 ** 20;
const ALIAS_OPS = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Flatten', 'Identity']);
const BYTES: Record<string, number> = { float: 4, int64: 8, int32: 4, uint8: 1, bool: 1, float16: 2, int8: 1, double: 8 };

interface ProfiledNode {
  name: string;
  op: string;
  outputs: { bytes: number; shape: number[] }[];
  /** ORT's CPU arena after the node (the profiler's BFC counters): regions held, bytes in use, peak in use. */
  arena?: { held: number; inUse: number; peak: number };
}

/** The profile's node runs in execution order (first occurrence of each node: one step). */
function profiledOrder(file: string): ProfiledNode[] {
  type Ev = {
    cat?: string;
    name?: string;
    ts?: number;
    args?: { op_name?: string; output_type_shape?: Record<string, number[]>[]; mem_arena_held?: string; mem_bytes_in_use?: string; mem_in_use_peak?: string };
  };
  const events = (JSON.parse(readFileSync(file, 'utf8')) as Ev[]).filter((e) => e.cat === 'Node' && e.name?.endsWith('_kernel_time'));
  events.sort((a, b) => (a.ts ?? 0) - (b.ts ?? 0));
  const seen = new Set<string>();
  const out: ProfiledNode[] = [];
  for (const e of events) {
    const name = e.name!.slice(0, -'_kernel_time'.length);
    if (seen.has(name)) continue;
    seen.add(name);
    const outputs = (e.args?.output_type_shape ?? []).map((o) => {
      const [dtype, shape] = Object.entries(o)[0]!;
      return { bytes: (BYTES[dtype] ?? 4) * shape.reduce((a, b) => a * b, 1), shape };
    });
    const a = e.args;
    const arena = a?.mem_arena_held === undefined ? undefined : { held: Number(a.mem_arena_held), inUse: Number(a.mem_bytes_in_use), peak: Number(a.mem_in_use_peak) };
    out.push({ name, op: a?.op_name ?? '?', outputs, ...(arena ? { arena } : {}) });
  }
  return out;
}

async function main(): Promise<void> {
  const shape = shapeFromArgs(argv);
  const B = Number(arg('B', '4'));
  const T = Number(arg('T', '256'));
  const name = arg('case', 'nf4+ckpt');
  const root = mkdtempSync('/tmp/tsft-liveness-');
  try {
    const dir = arg('model-dir', '') || join(root, 'model');
    if (!arg('model-dir', '')) await writeRandomCheckpoint(dir, shape, 'float32', 1, llamaConfigJson(shape));
    const opts: Parameters<typeof AutoModelForCausalLM.fromPretrained>[1] = {};
    if (name.startsWith('nf4')) opts.quantizationConfig = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true });
    const model = await AutoModelForCausalLM.fromPretrained(dir, opts);
    if (name.endsWith('+ckpt')) model.gradientCheckpointingEnable();
    const peft = getPeftModel(model, new LoraConfig({ r: 16, loraAlpha: 32, targetModules: 'all-linear', taskType: 'CAUSAL_LM' }));
    const optimized = join(root, 'optimized.onnx');
    const prog = await StepProgram.compile(peft, { B, T, objective: causalLmObjective, withGrad: true, training: true }, { profileFilePrefix: join(root, 'profile'), optimizedModelFilePath: optimized, worker: false });
    await prog.run(randomBatch(model.config, B, T), peft.trainableValues(prog.step.layout));
    await prog.release();
    const profile = readdirSync(root).find((f) => f.startsWith('profile') && f.endsWith('.json'));
    if (!profile) throw new Error(`no profile written under ${root}`);
    const order = profiledOrder(join(root, profile));
    report(decodeModel(readFileSync(optimized)).graph, order, Number(arg('top', '25')));
    arenaReport(order);
  } finally {
    if (argv.includes('--keep')) console.log(`kept the profile and the optimised model in ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
}

function report(graph: ReturnType<typeof decodeModel>['graph'], order: ProfiledNode[], top: number): void {
  const nodes = new Map(graph.node.map((n) => [n.name, n]));
  const external = new Set([...graph.input.map((v) => v.name), ...graph.initializer.map((t) => t.name)]);
  const kept = new Set(graph.output.map((v) => v.name));
  const step = new Map<string, number>(); // tensor → index of its last consumer in `order`
  order.forEach((p, i) => nodes.get(p.name)?.input.forEach((t) => t && step.set(t, i)));
  // Buffers: a tensor names the buffer it lives in (an alias op's output lives in its input's buffer).
  const bufferOf = new Map<string, string>();
  const buffers = new Map<string, { bytes: number; users: number; op: string; shape: number[] }>();
  let live = 0;
  let peak = { bytes: 0, at: -1, alive: [] as { op: string; shape: number[]; bytes: number }[] };
  const curve: number[] = [];
  const release = (t: string): void => {
    const b = bufferOf.get(t);
    if (b === undefined || kept.has(t)) return;
    const buf = buffers.get(b)!;
    if (--buf.users === 0) {
      live -= buf.bytes;
      buffers.delete(b);
    }
  };
  order.forEach((p, i) => {
    const node = nodes.get(p.name);
    if (!node) return;
    node.output.forEach((t, k) => {
      if (!t) return;
      const src = node.input[0];
      if (ALIAS_OPS.has(node.opType) && src && external.has(src)) {
        external.add(t); // a view of a graph input or initializer: no buffer of its own
      } else if (ALIAS_OPS.has(node.opType) && src && bufferOf.has(src) && buffers.has(bufferOf.get(src)!)) {
        bufferOf.set(t, bufferOf.get(src)!);
        buffers.get(bufferOf.get(src)!)!.users++;
      } else {
        const o = p.outputs[k] ?? { bytes: 0, shape: [] };
        bufferOf.set(t, t);
        buffers.set(t, { bytes: o.bytes, users: 1, op: node.opType, shape: o.shape });
        live += o.bytes;
      }
      if (!step.has(t) && !kept.has(t)) release(t); // never read
    });
    if (live > peak.bytes) peak = { bytes: live, at: i, alive: [...buffers.values()].map((b) => ({ op: b.op, shape: b.shape, bytes: b.bytes })) };
    curve.push(live);
    for (const t of new Set(node.input)) if (t && !external.has(t) && step.get(t) === i) release(t);
  });
  console.log(`nodes run: ${order.length}; peak of live intermediate tensors ${(peak.bytes / MB).toFixed(0)} MB at node ${peak.at} (${order[peak.at]?.name}, ${order[peak.at]?.op})`);
  const decile = Math.max(1, Math.floor(curve.length / 40));
  console.log(`live MB every ${decile} nodes: ${curve.filter((_, i) => i % decile === 0).map((x) => (x / MB).toFixed(0)).join(' ')}`);
  const groups = new Map<string, { n: number; bytes: number }>();
  for (const a of peak.alive) {
    const key = `${a.op} [${a.shape.join(', ')}]`;
    const g = groups.get(key) ?? { n: 0, bytes: 0 };
    g.n++;
    g.bytes += a.bytes;
    groups.set(key, g);
  }
  const largest = order.flatMap((p) => p.outputs.map((o) => ({ op: p.op, name: p.name, ...o }))).sort((a, b) => b.bytes - a.bytes).slice(0, 8);
  console.log(`largest tensors made: ${largest.map((t) => `${t.op} [${t.shape.join(', ')}] ${(t.bytes / MB).toFixed(0)} MB (${t.name})`).join('; ')}`);
  console.log(`alive at the peak (producer op [shape] × count = MB):`);
  for (const [k, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) console.log(`  ${k} × ${g.n} = ${(g.bytes / MB).toFixed(1)}`);
}

/**
 * ORT's own arena counters over the step (the profiler records them after every node): each extension
 * (a new region: the node that needed it and its size), the peak of bytes in use (which, unlike the replay,
 * counts kernel scratch such as MatMulBnb4's dequantised weight, and chunk rounding) and what is held.
 */
function arenaReport(order: ProfiledNode[]): void {
  const runs = order.filter((p) => p.arena);
  if (runs.length === 0) return console.log('arena: the profile has no arena counters');
  let held = 0;
  let peak = { bytes: 0, at: '' };
  const extensions: string[] = [];
  for (const p of runs) {
    const a = p.arena!;
    if (a.held > held) extensions.push(`${((a.held - held) / MB).toFixed(0)} MB at ${p.name} (${p.op}, in use ${(a.inUse / MB).toFixed(0)})`);
    held = a.held;
    if (a.peak > peak.bytes) peak = { bytes: a.peak, at: `${p.name} (${p.op})` };
  }
  console.log(`arena: held ${(held / MB).toFixed(0)} MB after the step; peak in use ${(peak.bytes / MB).toFixed(0)} MB, first reached at ${peak.at}`);
  console.log(`arena extensions (${extensions.length}):`);
  for (const e of extensions) console.log(`  +${e}`);
}

await main();
