// AutoModelForCausalLM.fromPretrained on every fixture checkpoint (test/fixtures/models, written by torch):
// the config it parses, stateDict() = the checkpoint's HF names in torch's state_dict order with the file's
// values, numParameters, config.useCache, the bf16 notice, `forward` with labels = the golden mean loss, and
// loading a Hub id from a pre-filled HF cache with HF_HUB_OFFLINE=1. (Logits against the golden values,
// right-padded batch included, are in forward-golden.test.ts.)
import { createHash } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isTsFinetuneError, type Tensor } from '../../src/core/index.js';
import { CheckpointReader, readSafetensors } from '../../src/io/index.js';
import { AutoModelForCausalLM, type CausalLM } from '../../src/models/index.js';

const FIX = 'test/fixtures/models';
const MODELS = ['llama-mha', 'llama-gqa', 'llama-tied', 'llama3-rope', 'qwen2', 'qwen3', 'mistral', 'llama-bf16', 'llama-sharded'];

/** ORT on this thread without graph optimisations: the tiny graphs compile in a fraction of the default's time. */
const FAST = { worker: false, graphOptimizationLevel: 'disabled' } as const;

const opened: CausalLM[] = [];
async function load(idOrDir: string, opts: Parameters<typeof AutoModelForCausalLM.fromPretrained>[1] = {}, fast = true): Promise<CausalLM> {
  const m = await AutoModelForCausalLM.fromPretrained(idOrDir, opts);
  if (fast) m.sessionOptions = FAST;
  opened.push(m);
  return m;
}
afterAll(async () => {
  for (const m of opened) await m.release();
});

/** Every tensor of a checkpoint folder as stored (dtype and bits as torch wrote them). */
async function fileTensors(dir: string): Promise<Map<string, Tensor>> {
  const r = await CheckpointReader.open(dir);
  try {
    return await r.readAll();
  } finally {
    await r.close();
  }
}

/** The exact float32 value of each stored element (bf16 → f32 is exact: bits << 16). */
function exactF32(t: Tensor): Float32Array {
  if (t.dtype === 'float32') return t.data as Float32Array;
  if (t.dtype !== 'bfloat16') throw new Error(`fixture dtype ${t.dtype}`);
  const src = t.data as Uint16Array;
  const u = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) u[i] = src[i]! << 16;
  return new Float32Array(u.buffer);
}

// Per fixture, what its config must parse to (test/fixtures/README.md's table).
const EXPECT: Record<string, { modelType: string; H: number; K: number; tied: boolean; bias: boolean; qkNorm: boolean; rope?: string }> = {
  'llama-mha': { modelType: 'llama', H: 4, K: 4, tied: false, bias: false, qkNorm: false },
  'llama-gqa': { modelType: 'llama', H: 4, K: 2, tied: false, bias: false, qkNorm: false },
  'llama-tied': { modelType: 'llama', H: 4, K: 2, tied: true, bias: false, qkNorm: false },
  'llama3-rope': { modelType: 'llama', H: 4, K: 2, tied: false, bias: false, qkNorm: false, rope: 'llama3' },
  qwen2: { modelType: 'qwen2', H: 4, K: 2, tied: false, bias: true, qkNorm: false },
  qwen3: { modelType: 'qwen3', H: 8, K: 4, tied: false, bias: false, qkNorm: true },
  mistral: { modelType: 'mistral', H: 4, K: 2, tied: false, bias: false, qkNorm: false },
  'llama-bf16': { modelType: 'llama', H: 4, K: 2, tied: false, bias: false, qkNorm: false },
  'llama-sharded': { modelType: 'llama', H: 4, K: 2, tied: false, bias: false, qkNorm: false },
};

describe('bf16 checkpoint on the CPU', () => {
  // First in the file: the notice is printed once per process.
  it('prints one notice, however often it is loaded, and computes in fp32 from the exact bf16 values', async () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const models: CausalLM[] = [];
    let calls: string[] = [];
    try {
      models.push(await load(`${FIX}/llama-bf16`));
      models.push(await load(`${FIX}/llama-bf16`, { dtype: 'bfloat16', device: 'cpu' }));
      await load(`${FIX}/llama-gqa`, { dtype: 'bfloat16' });
      calls = write.mock.calls.map((c) => String(c[0])); // before mockRestore, which clears them
    } finally {
      write.mockRestore();
    }
    const notices = calls.filter((s) => s.includes('float32 on the CPU'));
    expect(notices).toEqual(['ts-finetune: computing in float32 on the CPU (bfloat16 has no CPU kernels)\n']);
    const file = await fileTensors(`${FIX}/llama-bf16`);
    for (const m of models) {
      for (const [k, t] of m.stateDict()) {
        expect(t.dtype, k).toBe('float32');
        expect(file.get(k)!.dtype).toBe('bfloat16');
        expect(t.data, k).toEqual(exactF32(file.get(k)!));
      }
    }
  });

  it('an fp32 checkpoint loads without a notice', async () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let calls: string[] = [];
    try {
      await load(`${FIX}/llama-mha`, { dtype: 'float32' });
      calls = write.mock.calls.map((c) => String(c[0]));
    } finally {
      write.mockRestore();
    }
    expect(calls.filter((c) => c.includes('float32 on the CPU'))).toEqual([]);
  });
});

describe('fromPretrained(local folder): every fixture', () => {
  for (const name of MODELS) {
    it(name, async () => {
      const dir = `${FIX}/${name}`;
      const model = await load(dir);
      const e = EXPECT[name]!;
      const c = model.config;
      expect([c.modelType, c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.hiddenSize, c.intermediateSize, c.numHiddenLayers, c.vocabSize]).toEqual([
        e.modelType, e.H, e.K, 16, 64, 96, 2, 128,
      ]);
      expect([c.tieWordEmbeddings, c.attentionBias, c.qkNorm, c.ropeScaling?.ropeType]).toEqual([e.tied, e.bias, e.qkNorm, e.rope]);
      expect(c.rmsNormEps).toBe(e.modelType.startsWith('qwen') ? 1e-6 : 1e-5);

      // stateDict(): exactly the checkpoint's names (HF module paths) with its values
      const file = await fileTensors(dir);
      const sd = model.stateDict();
      expect([...sd.keys()].sort()).toEqual([...file.keys()].sort());
      for (const [k, t] of sd) {
        expect(t.dims, k).toEqual(file.get(k)!.dims);
        expect(t.data, k).toEqual(exactF32(file.get(k)!));
      }
      // numParameters: every element (for tied models lm_head is the embedding, counted once, as torch)
      const elements = [...file.values()].reduce((s, t) => s + t.size, 0);
      expect(model.numParameters()).toBe(elements);
      expect(model.numParameters({ onlyTrainable: true })).toBe(elements);

      // forward with labels: transformers' mean causal-LM loss over the 11 label tokens of the fixed batch
      const gold = await readSafetensors(`test/fixtures/golden/forward-${name}.safetensors`);
      const meta = JSON.parse(readFileSync(`test/fixtures/golden/forward-${name}.json`, 'utf8')) as { loss: number; num_label_tokens: number };
      expect(meta.num_label_tokens).toBe(11);
      const out = await model.forward({ inputIds: gold.get('input_ids')!, attentionMask: gold.get('attention_mask')!, labels: gold.get('labels')! });
      expect(out.loss).toBeDefined();
      expect(Math.abs(out.loss! - meta.loss)).toBeLessThan(1e-4);
      expect(out.logits.dims).toEqual([2, 8, 128]);
    });
  }

  it('sharded: numParameters = total_size / 4 of the index; no labels → no loss', async () => {
    const model = await load(`${FIX}/llama-sharded`);
    const index = JSON.parse(readFileSync(`${FIX}/llama-sharded/model.safetensors.index.json`, 'utf8')) as { metadata: { total_size: number } };
    expect(model.numParameters()).toBe(index.metadata.total_size / 4);
    const out = await model.forward({ inputIds: [[1, 17, 42, 99, 5, 63, 120, 7]] });
    expect(out.loss).toBeUndefined();
  });

  it('llama-mha: an unpadded batch with labels = input ids gives the golden loss_full (default session options)', async () => {
    const model = await load(`${FIX}/llama-mha`, {}, false);
    const gold = await readSafetensors('test/fixtures/golden/forward-llama-mha.safetensors');
    const meta = JSON.parse(readFileSync('test/fixtures/golden/forward-llama-mha.json', 'utf8')) as { loss_full: number };
    const ids = gold.get('input_ids_full')!;
    const out = await model.forward({ inputIds: ids, labels: ids });
    expect(Math.abs(out.loss! - meta.loss_full)).toBeLessThan(1e-4);
  });
});

describe('stateDict order, config.useCache', () => {
  it("iterates names in torch's state_dict order (walkthrough: for (const name of model.stateDict().keys()))", async () => {
    const names: string[] = [];
    for (const name of (await load(`${FIX}/qwen2`)).stateDict().keys()) names.push(name);
    const layer = (i: number, qwen2: boolean): string[] => {
      const p = `model.layers.${i}`;
      const proj = (n: string, bias: boolean): string[] => [`${p}.self_attn.${n}.weight`, ...(bias ? [`${p}.self_attn.${n}.bias`] : [])];
      return [
        ...proj('q_proj', qwen2),
        ...proj('k_proj', qwen2),
        ...proj('v_proj', qwen2),
        ...proj('o_proj', false),
        `${p}.mlp.gate_proj.weight`,
        `${p}.mlp.up_proj.weight`,
        `${p}.mlp.down_proj.weight`,
        `${p}.input_layernorm.weight`,
        `${p}.post_attention_layernorm.weight`,
      ];
    };
    expect(names).toEqual(['model.embed_tokens.weight', ...layer(0, true), ...layer(1, true), 'model.norm.weight', 'lm_head.weight']);
    const q3 = [...(await load(`${FIX}/qwen3`)).stateDict().keys()].filter((n) => n.startsWith('model.layers.0.self_attn.'));
    expect(q3.map((n) => n.slice('model.layers.0.self_attn.'.length))).toEqual([
      'q_proj.weight', 'k_proj.weight', 'v_proj.weight', 'o_proj.weight', 'q_norm.weight', 'k_norm.weight',
    ]);
    const tied = [...(await load(`${FIX}/llama-tied`)).stateDict().keys()];
    expect(tied.at(-1)).toBe('model.norm.weight'); // as save_pretrained writes a tied model: no lm_head.weight
  });

  it('config.useCache is read from config.json, settable, and saved back', async () => {
    const model = await load(`${FIX}/llama-gqa`);
    expect(model.config.useCache).toBe(true);
    model.config.useCache = false;
    const out = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-usecache-'));
    try {
      await model.savePretrained(out);
      const saved = JSON.parse(await fsp.readFile(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
      expect(saved.use_cache).toBe(false);
      expect((await load(out)).config.useCache).toBe(false);
    } finally {
      await fsp.rm(out, { recursive: true, force: true });
    }
  });
});

describe('fromPretrained(Hub id) from a pre-filled HF cache, offline', () => {
  const SHA = '0123456789abcdef0123456789abcdef01234567';
  const ENV = ['HF_HUB_OFFLINE', 'HF_HUB_CACHE', 'HF_HOME', 'HF_ENDPOINT'];
  let saved: Record<string, string | undefined> = {};
  let cache = '';
  beforeEach(async () => {
    saved = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));
    cache = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-hfcache-'));
    // huggingface_hub's layout: blobs named by ETag (sha256 of LFS files, git sha1 else), refs/main = the
    // commit, snapshots/<commit>/<file> = relative symlinks into blobs/.
    const repo = path.join(cache, 'models--org--tiny-sharded');
    await fsp.mkdir(path.join(repo, 'blobs'), { recursive: true });
    await fsp.mkdir(path.join(repo, 'refs'), { recursive: true });
    await fsp.mkdir(path.join(repo, 'snapshots', SHA), { recursive: true });
    await fsp.writeFile(path.join(repo, 'refs', 'main'), SHA);
    for (const f of await fsp.readdir(`${FIX}/llama-sharded`)) {
      const data = await fsp.readFile(path.join(FIX, 'llama-sharded', f));
      const etag = f.endsWith('.safetensors')
        ? createHash('sha256').update(data).digest('hex')
        : createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
      await fsp.writeFile(path.join(repo, 'blobs', etag), data);
      await fsp.symlink(path.join('..', '..', 'blobs', etag), path.join(repo, 'snapshots', SHA, f));
    }
    process.env.HF_HUB_OFFLINE = '1';
    process.env.HF_HUB_CACHE = cache;
    process.env.HF_ENDPOINT = 'http://127.0.0.1:9'; // never contacted: offline
  });
  afterEach(async () => {
    for (const k of ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await fsp.rm(cache, { recursive: true, force: true });
  });

  it('loads org/tiny-sharded from HF_HUB_CACHE (by main and by commit sha, and with cacheDir) as the local folder', async () => {
    const local = await load(`${FIX}/llama-sharded`);
    const viaMain = await load('org/tiny-sharded');
    const viaSha = await load('org/tiny-sharded', { revision: SHA });
    delete process.env.HF_HUB_CACHE;
    process.env.HF_HOME = path.join(cache, 'elsewhere'); // not the cache: cacheDir must be used
    const viaOpt = await load('org/tiny-sharded', { cacheDir: cache });
    for (const m of [viaMain, viaSha, viaOpt]) {
      expect(m.nameOrPath).toBe('org/tiny-sharded');
      const sd = m.stateDict();
      expect([...sd.keys()]).toEqual([...local.stateDict().keys()]);
      for (const [k, t] of local.stateDict()) expect(sd.get(k)!.data, k).toEqual(t.data);
    }
    const gold = await readSafetensors('test/fixtures/golden/forward-llama-sharded.safetensors');
    const meta = JSON.parse(readFileSync('test/fixtures/golden/forward-llama-sharded.json', 'utf8')) as { loss: number };
    const out = await viaMain.forward({ inputIds: gold.get('input_ids')!, attentionMask: gold.get('attention_mask')!, labels: gold.get('labels')! });
    expect(Math.abs(out.loss! - meta.loss)).toBeLessThan(1e-4);
  });

  it('a repo the cache lacks is HUB_OFFLINE naming the repo and the cache', async () => {
    const err = await AutoModelForCausalLM.fromPretrained('org/not-cached').catch((e: unknown) => e);
    expect(isTsFinetuneError(err, 'HUB_OFFLINE')).toBe(true);
    expect((err as Error).message).toContain("'org/not-cached'");
    expect((err as Error).message).toContain(cache);
  });
});
