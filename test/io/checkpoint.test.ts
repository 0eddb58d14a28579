import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/index.js';
import { CheckpointReader, saveSafetensors } from '../../src/io/index.js';

let root: string;
beforeAll(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'tsft-ckpt-'));
});
afterAll(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

const weights = {
  'model.embed_tokens.weight': Tensor.fromNumbers([1, 2, 3, 4, 5, 6], [3, 2], 'bfloat16'),
  'model.layers.0.self_attn.q_proj.weight': Tensor.fromNumbers([0.5, -0.5, 0.25, 4], [2, 2]),
  'model.norm.weight': Tensor.fromNumbers([1, 1], [2]),
  'lm_head.weight': Tensor.fromNumbers([9, 8, 7, 6, 5, 4], [3, 2], 'bfloat16'),
};

/** A two-shard checkpoint in HF layout; `mutate` edits the index before it is written. */
async function sharded(name: string, mutate?: (index: { metadata: Record<string, unknown>; weight_map: Record<string, string> }) => void): Promise<string> {
  const dir = path.join(root, name);
  const s1 = 'model-00001-of-00002.safetensors';
  const s2 = 'model-00002-of-00002.safetensors';
  await saveSafetensors(path.join(dir, s1), { 'model.embed_tokens.weight': weights['model.embed_tokens.weight'], 'model.layers.0.self_attn.q_proj.weight': weights['model.layers.0.self_attn.q_proj.weight'] }, { format: 'pt' });
  await saveSafetensors(path.join(dir, s2), { 'model.norm.weight': weights['model.norm.weight'], 'lm_head.weight': weights['lm_head.weight'] }, { format: 'pt' });
  const index = {
    metadata: { total_size: 44 },
    weight_map: {
      'model.embed_tokens.weight': s1,
      'model.layers.0.self_attn.q_proj.weight': s1,
      'model.norm.weight': s2,
      'lm_head.weight': s2,
    },
  };
  mutate?.(index);
  await fsp.writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 2));
  return dir;
}

const same = (a: Tensor, b: Tensor): boolean => a.dtype === b.dtype && Buffer.from(a.bytes()).equals(Buffer.from(b.bytes()));

describe('CheckpointReader', () => {
  it('reads a single-file checkpoint', async () => {
    const dir = path.join(root, 'single');
    await saveSafetensors(path.join(dir, 'model.safetensors'), weights, { format: 'pt' });
    const ck = await CheckpointReader.open(dir);
    expect(ck.indexFile).toBeUndefined();
    expect(ck.metadata).toEqual({ format: 'pt' });
    expect(ck.keys()).toEqual(Object.keys(weights).sort());
    expect(ck.info('lm_head.weight')).toMatchObject({ dtype: 'bfloat16', shape: [3, 2], file: path.join(dir, 'model.safetensors') });
    for (const [k, t] of Object.entries(weights)) expect(same(await ck.read(k), t)).toBe(true);
    await ck.close();
  });

  it('reads a sharded checkpoint through its index, shard by shard and tensor by tensor', async () => {
    const dir = await sharded('sharded');
    const ck = await CheckpointReader.open(dir);
    expect(ck.indexFile).toBe(path.join(dir, 'model.safetensors.index.json'));
    expect(ck.metadata).toEqual({ total_size: 44 });
    expect(ck.keys()).toEqual(Object.keys(weights).sort());
    expect(ck.shardOf('lm_head.weight')).toBe('model-00002-of-00002.safetensors');
    expect(same(await ck.read('model.norm.weight'), weights['model.norm.weight'])).toBe(true);

    const shards = [];
    for await (const s of ck.iterShards()) shards.push([s.file, [...s.tensors.keys()]]);
    // File order inside a shard: bf16 (2-byte) after f32 (4-byte), as the writer sorts by alignment.
    expect(shards).toEqual([
      ['model-00001-of-00002.safetensors', ['model.layers.0.self_attn.q_proj.weight', 'model.embed_tokens.weight']],
      ['model-00002-of-00002.safetensors', ['model.norm.weight', 'lm_head.weight']],
    ]);
    const seen = new Map<string, Tensor>();
    for await (const [k, t] of ck.iterTensors()) seen.set(k, t);
    expect([...seen.keys()].sort()).toEqual(Object.keys(weights).sort());
    for (const [k, t] of Object.entries(weights)) expect(same(seen.get(k)!, t)).toBe(true);
    const all = await ck.readAll();
    expect(all.size).toBe(4);
    await ck.close();
  });

  it('opens a PEFT adapter by filename', async () => {
    const dir = path.join(root, 'adapter');
    await saveSafetensors(path.join(dir, 'adapter_model.safetensors'), { 'base_model.model.x.lora_A.weight': Tensor.zeros('float32', [2, 4]) });
    const ck = await CheckpointReader.open(dir, { filename: 'adapter_model.safetensors' });
    expect(ck.keys()).toEqual(['base_model.model.x.lora_A.weight']);
    await ck.close();
  });
});

describe('CheckpointReader bad input', () => {
  it('a missing shard names the shard and the index', async () => {
    const dir = await sharded('missing-shard', (ix) => {
      ix.weight_map['lm_head.weight'] = 'model-00003-of-00002.safetensors';
    });
    await expect(CheckpointReader.open(dir)).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
      message: expect.stringMatching(/model-00003-of-00002\.safetensors is listed in .*model\.safetensors\.index\.json/),
    });
  });

  it('a key the index maps to a shard that lacks it', async () => {
    const dir = await sharded('missing-key', (ix) => {
      ix.weight_map['model.layers.1.mlp.up_proj.weight'] = 'model-00002-of-00002.safetensors';
    });
    await expect(CheckpointReader.open(dir)).rejects.toMatchObject({
      code: 'MISSING_TENSOR',
      message: expect.stringContaining("Tensor 'model.layers.1.mlp.up_proj.weight' is mapped to model-00002-of-00002.safetensors"),
      details: expect.objectContaining({ tensor: 'model.layers.1.mlp.up_proj.weight' }),
    });
  });

  it('an index that is not JSON, lacks weight_map, or points outside the folder', async () => {
    const dir = await sharded('bad-index');
    const ix = path.join(dir, 'model.safetensors.index.json');
    await fsp.writeFile(ix, '{"weight_map": ');
    await expect(CheckpointReader.open(dir)).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringContaining(`${ix}: not valid JSON`) });
    await fsp.writeFile(ix, '{"metadata": {}}');
    await expect(CheckpointReader.open(dir)).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringContaining("missing 'weight_map'") });
    await fsp.writeFile(ix, JSON.stringify({ weight_map: { a: '../elsewhere.safetensors' } }));
    await expect(CheckpointReader.open(dir)).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringContaining('outside the checkpoint folder') });
  });

  it('a corrupt shard is reported with its own path', async () => {
    const dir = await sharded('corrupt-shard');
    const shard = path.join(dir, 'model-00002-of-00002.safetensors');
    const bytes = await fsp.readFile(shard);
    await fsp.writeFile(shard, bytes.subarray(0, bytes.length - 3));
    await expect(CheckpointReader.open(dir)).rejects.toMatchObject({ code: 'CORRUPT_FILE', message: expect.stringContaining(shard) });
  });

  it('a folder with no checkpoint, and an unknown tensor name', async () => {
    const empty = path.join(root, 'empty');
    await fsp.mkdir(empty, { recursive: true });
    await expect(CheckpointReader.open(empty)).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
      message: expect.stringContaining('neither model.safetensors nor model.safetensors.index.json'),
    });
    const ck = await CheckpointReader.open(await sharded('unknown-name'));
    expect(() => ck.info('model.nope')).toThrow(/Tensor 'model\.nope' is not in the checkpoint/);
    await ck.close();
  });
});
