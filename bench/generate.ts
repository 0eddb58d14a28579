// Bench: generation speed, and the KV-cache update strategy src/models/kv-cache.ts chose.
//   npx tsx bench/generate.ts [--steps 48] [--slots 512] [--rounds 7]
// A. tokens/s of model.generate (greedy, compile excluded) on the tiny fixture (llama-gqa) and on a random
//    mid-size Llama (4 layers, C=256, H=4, K=2, D=64, F=688, V=8000).
// B. One decode step of the mid-size model over a cache of --slots slots, three ways:
//    host      — what generate does: cache fed as inputs in place (in-process session), only the new
//                token's K/V [B, K, 1, D] returned and written into the host cache;
//    worker    — the same graph in a worker-thread session (every step copies every layer's cache in);
//    scatter   — the cache updated in-graph by ScatterElements at a write index and the whole updated
//                cache [B, K, S, D] per layer returned (copied out) and fed back next step.
// Rounds are interleaved (host, worker, scatter, host, …) so machine noise hits all alike; medians reported.
import { Rng } from '../src/core/rng.js';
import { Tensor } from '../src/core/tensor.js';
import { Graph, op, toModelProto, type Value } from '../src/graph/index.js';
import type { KvPair } from '../src/nn/attention.js';
import { encodeModel } from '../src/onnx/encode.js';
import { createSession, type Session } from '../src/runtime/index.js';
import {
  AutoModelForCausalLM,
  CausalLM,
  HostKvCache,
  expectedParameters,
  kvProgram,
  parseConfig,
  pastKey,
  pastValue,
  type DecoderInputs,
  type GenerationModel,
  type KvCacheIO,
} from '../src/models/index.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const STEPS = arg('--steps', 48);
const SLOTS = arg('--slots', 512);
const ROUNDS = arg('--rounds', 7);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function randomLlama(): CausalLM {
  const raw = {
    model_type: 'llama', vocab_size: 8000, hidden_size: 256, intermediate_size: 688, num_hidden_layers: 4,
    num_attention_heads: 4, num_key_value_heads: 2, head_dim: 64, rms_norm_eps: 1e-5, eos_token_id: 2,
  };
  const cfg = parseConfig(raw);
  const rng = new Rng(0);
  const dense = new Map<string, Tensor<'float32'>>();
  for (const [name, shape] of expectedParameters(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    dense.set(name, new Tensor('float32', shape, name.endsWith('norm.weight') ? new Float32Array(n).fill(1) : Float32Array.from({ length: n }, () => rng.normal(0, 0.05))));
  }
  return new CausalLM(cfg, dense, new Map(), 'random-llama');
}

async function tokensPerSecond(label: string, model: CausalLM, B: number, newTokens: number): Promise<void> {
  const prompt = Array.from({ length: B }, (_, b) => Array.from({ length: 16 }, (_, t) => 3 + ((b * 7 + t * 13) % 100)));
  await model.generate(prompt, { maxNewTokens: newTokens, eosTokenId: null }); // compile
  const times: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    await model.generate(prompt, { maxNewTokens: newTokens, eosTokenId: null });
    times.push(performance.now() - t0);
  }
  const ms = median(times);
  console.log(`${label}: B=${B}, 16-token prompt, ${newTokens} new: ${ms.toFixed(1)} ms = ${((B * newTokens) / (ms / 1000)).toFixed(0)} tokens/s`);
}

/** The decode graph with the cache updated in-graph and returned whole (strategy "scatter"). */
async function scatterSession(model: GenerationModel, B: number, S: number): Promise<Session> {
  const cfg = model.config;
  const [K, D] = [cfg.numKeyValueHeads, cfg.headDim];
  const g = new Graph('decode-scatter');
  const past: KvPair[] = [];
  for (let i = 0; i < cfg.numHiddenLayers; i++) past.push({ key: g.input(pastKey(i), 'float32', [B, K, S, D]), value: g.input(pastValue(i), 'float32', [B, K, S, D]) });
  const writeIndex = g.input('write_index', 'int64', [B, K, 1, D]);
  const kvCache: KvCacheIO = { past, present: [], lastOnly: true };
  const inputs: DecoderInputs = {
    inputIds: g.input('input_ids', 'int64', [B, 1]),
    attentionMask: g.input('attention_mask', 'int64', [B, S + 1]),
    positionIds: g.input('position_ids', 'int64', [B, 1]),
    kvCache,
  };
  g.output(model.buildLogits(g, inputs, { params: new Map<string, Value>(), adaptersEnabled: true, training: false, maxPosition: S + 1 }), 'logits');
  kvCache.present.forEach((p, i) => {
    g.output(op.ScatterElements(past[i]!.key, writeIndex, p.key, 2), `cache.${i}.key`);
    g.output(op.ScatterElements(past[i]!.value, writeIndex, p.value, 2), `cache.${i}.value`);
  });
  const { model: proto, externalData } = toModelProto(g);
  return createSession(encodeModel(proto), {
    disableOptimizers: ['ConstantFolding'],
    sessionConfig: { 'session.intra_op.allow_spinning': '0' },
    externalData,
    worker: false,
    reuse: false,
  });
}

async function strategies(model: CausalLM, B: number, S: number): Promise<void> {
  const cfg = model.config;
  const [L, K, D] = [cfg.numHiddenLayers, cfg.numKeyValueHeads, cfg.headDim];
  const frozen = model.asFrozen();
  const host = await kvProgram({ ...frozen }, { B, T: 1, S });
  const worker = await kvProgram({ ...frozen, sessionOptions: { worker: true } }, { B, T: 1, S });
  const scatter = await scatterSession(frozen, B, S);
  const cacheMB = (2 * L * B * K * S * D * 4) / 2 ** 20;
  const ids = new Tensor('int64', [B, 1], new BigInt64Array(B).fill(5n));
  const runHostLike = async (prog: typeof host): Promise<number> => {
    const cache = new HostKvCache(L, B, K, S, D);
    const t0 = performance.now();
    for (let s = 0; s < STEPS; s++) {
      const pos = new Tensor('int64', [B, 1], new BigInt64Array(B).fill(BigInt(s)));
      const out = await prog.run({ ...cache.feeds, input_ids: ids, position_ids: pos });
      out.present.forEach((p, i) => cache.write(i, s, 1, p.key, p.value));
      cache.fill(s, 1);
    }
    return (performance.now() - t0) / STEPS;
  };
  const runScatter = async (): Promise<number> => {
    const feeds: Record<string, Tensor> = {};
    for (let i = 0; i < L; i++) {
      feeds[pastKey(i)] = Tensor.zeros('float32', [B, K, S, D]);
      feeds[pastValue(i)] = Tensor.zeros('float32', [B, K, S, D]);
    }
    const mask = new BigInt64Array(B * (S + 1));
    for (let b = 0; b < B; b++) mask[b * (S + 1) + S] = 1n;
    const t0 = performance.now();
    for (let s = 0; s < STEPS; s++) {
      const out = await scatter.run({
        ...feeds,
        input_ids: ids,
        position_ids: new Tensor('int64', [B, 1], new BigInt64Array(B).fill(BigInt(s))),
        attention_mask: new Tensor('int64', [B, S + 1], mask),
        write_index: new Tensor('int64', [B, K, 1, D], new BigInt64Array(B * K * D).fill(BigInt(s))),
      });
      for (let i = 0; i < L; i++) {
        feeds[pastKey(i)] = out[`cache.${i}.key`]!;
        feeds[pastValue(i)] = out[`cache.${i}.value`]!;
      }
      for (let b = 0; b < B; b++) mask[b * (S + 1) + s] = 1n;
    }
    return (performance.now() - t0) / STEPS;
  };
  const t = { host: [] as number[], worker: [] as number[], scatter: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    t.host.push(await runHostLike(host));
    t.worker.push(await runHostLike(worker));
    t.scatter.push(await runScatter());
  }
  console.log(`decode step, mid-size model, B=${B}, ${S} slots (cache ${cacheMB.toFixed(1)} MB), ${STEPS} steps × ${ROUNDS} rounds, median ms/step:`);
  for (const [k, v] of Object.entries(t)) console.log(`  ${k.padEnd(8)} ${median(v).toFixed(2)}`);
  await host.release();
  await worker.release();
  await scatter.release();
}

const tiny = await AutoModelForCausalLM.fromPretrained('test/fixtures/models/llama-gqa');
await tokensPerSecond('tiny llama-gqa', tiny, 1, 64);
await tokensPerSecond('tiny llama-gqa', tiny, 4, 64);
await tiny.release();
const mid = randomLlama();
await tokensPerSecond('mid llama (random)', mid, 1, 64);
await strategies(mid, 1, SLOTS);
await mid.release();
