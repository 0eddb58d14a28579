// A checkpoint folder as one set of tensors: `model.safetensors`, or shards listed by
// `model.safetensors.index.json` (`{"metadata": {...}, "weight_map": {name: shard file}}`), behind the same
// keys() / info() / read() API as a single file, plus iteration shard by shard or tensor by tensor so a
// model can be loaded while holding one shard (or one tensor) of it in memory at a time.
// Not here: name mapping onto our graphs (src/models), writing sharded checkpoints.
// Follows transformers `modeling_utils.py` (`load_sharded_checkpoint`, SAFE_WEIGHTS_INDEX_NAME).

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Tensor, TsFinetuneError } from '../core/index.js';
import { SafetensorsFile } from './safetensors-file.js';
import type { SafetensorsTensorInfo } from './safetensors-format.js';
import { pathExists } from '../core/fs-atomic.js';

export interface CheckpointOpenOptions {
  /** Base file name; its index is `<filename>.index.json`. Default `model.safetensors`
   *  (use `adapter_model.safetensors` for a PEFT adapter). */
  filename?: string;
}

export interface CheckpointShard {
  /** Shard file name, relative to the checkpoint folder. */
  file: string;
  /** Tensor names this checkpoint takes from the shard, in file order. */
  keys: string[];
}


function indexError(file: string, what: string, details: Record<string, unknown> = {}): TsFinetuneError {
  return new TsFinetuneError('CORRUPT_FILE', `Bad checkpoint index ${file}: ${what}`, { file, ...details });
}

async function readIndex(indexPath: string, dir: string): Promise<{ metadata: Record<string, unknown>; weightMap: Map<string, string> }> {
  let json: unknown;
  try {
    json = JSON.parse(await fsp.readFile(indexPath, 'utf8'));
  } catch (e) {
    throw indexError(indexPath, `not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null) throw indexError(indexPath, 'not a JSON object');
  const wm = (json as Record<string, unknown>)['weight_map'];
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) throw indexError(indexPath, "missing 'weight_map' object");
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard === '') throw indexError(indexPath, `weight_map['${name}'] is not a file name`, { tensor: name });
    const resolved = path.resolve(dir, shard);
    if (path.relative(dir, resolved).startsWith('..') || path.isAbsolute(shard)) {
      throw indexError(indexPath, `weight_map['${name}'] = '${shard}' points outside the checkpoint folder`, { tensor: name, shard });
    }
    weightMap.set(name, shard);
  }
  const md = (json as Record<string, unknown>)['metadata'];
  return { metadata: typeof md === 'object' && md !== null ? (md as Record<string, unknown>) : {}, weightMap };
}

export class CheckpointReader {
  readonly dir: string;
  /** The index's `metadata` (e.g. `total_size`) for a sharded checkpoint, else the file's `__metadata__`. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** The index file when sharded, else undefined. */
  readonly indexFile: string | undefined;
  private readonly files: Map<string, SafetensorsFile>;
  private readonly where: Map<string, string>;

  private constructor(
    dir: string,
    indexFile: string | undefined,
    metadata: Record<string, unknown>,
    files: Map<string, SafetensorsFile>,
    where: Map<string, string>,
  ) {
    this.dir = dir;
    this.indexFile = indexFile;
    this.metadata = Object.freeze({ ...metadata });
    this.files = files;
    this.where = where;
  }

  /**
   * Open a checkpoint folder. Every shard's header is read and checked against the index now, so a missing
   * shard or a tensor the index promises but the shard lacks fails here, not halfway through a load.
   */
  static async open(dir: string, opts: CheckpointOpenOptions = {}): Promise<CheckpointReader> {
    const filename = opts.filename ?? 'model.safetensors';
    const root = path.resolve(dir);
    const indexPath = path.join(root, `${filename}.index.json`);
    const single = path.join(root, filename);
    if (await pathExists(indexPath)) {
      const { metadata, weightMap } = await readIndex(indexPath, root);
      const files = new Map<string, SafetensorsFile>();
      try {
        for (const shard of new Set(weightMap.values())) {
          const shardPath = path.join(root, shard);
          if (!(await pathExists(shardPath))) {
            throw new TsFinetuneError('FILE_NOT_FOUND', `Checkpoint shard ${shardPath} is listed in ${indexPath} but does not exist`, {
              file: shardPath,
              index: indexPath,
            });
          }
          files.set(shard, await SafetensorsFile.open(shardPath));
        }
        for (const [name, shard] of weightMap) {
          if (!files.get(shard)!.has(name)) {
            throw new TsFinetuneError('MISSING_TENSOR', `Tensor '${name}' is mapped to ${shard} by ${indexPath}, but that shard does not contain it`, {
              tensor: name,
              file: path.join(root, shard),
              index: indexPath,
            });
          }
        }
      } catch (e) {
        await Promise.all([...files.values()].map((f) => f.close()));
        throw e;
      }
      return new CheckpointReader(root, indexPath, metadata, files, weightMap);
    }
    if (await pathExists(single)) {
      const f = await SafetensorsFile.open(single);
      const where = new Map(f.keys().map((k) => [k, filename]));
      return new CheckpointReader(root, undefined, { ...f.metadata }, new Map([[filename, f]]), where);
    }
    throw new TsFinetuneError('FILE_NOT_FOUND', `No checkpoint in ${root}: neither ${filename} nor ${filename}.index.json exists`, {
      file: root,
      looked_for: [filename, `${filename}.index.json`],
    });
  }

  /** Tensor names, sorted. */
  keys(): string[] {
    return [...this.where.keys()].sort();
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  /** Which file (relative to the folder) holds `name`. */
  shardOf(name: string): string {
    const shard = this.where.get(name);
    if (shard === undefined) {
      throw new TsFinetuneError('MISSING_TENSOR', `Tensor '${name}' is not in the checkpoint ${this.indexFile ?? path.join(this.dir, [...this.files.keys()][0] ?? '')}`, {
        tensor: name,
        dir: this.dir,
      });
    }
    return shard;
  }

  info(name: string): SafetensorsTensorInfo & { file: string } {
    const shard = this.shardOf(name);
    return { ...this.files.get(shard)!.info(name), file: path.join(this.dir, shard) };
  }

  read(name: string): Promise<Tensor> {
    return this.files.get(this.shardOf(name))!.read(name);
  }

  /** Shards in index order with the keys each provides (in file order), without reading tensor data. */
  shards(): CheckpointShard[] {
    const out: CheckpointShard[] = [];
    for (const [file, f] of this.files) {
      const keys = f.tensorsInFileOrder().filter((t) => this.where.get(t.name) === file).map((t) => t.name);
      out.push({ file, keys });
    }
    return out;
  }

  /** One shard at a time, fully read: peak memory is about the largest shard. */
  async *iterShards(): AsyncGenerator<{ file: string; tensors: Map<string, Tensor> }> {
    for (const s of this.shards()) {
      const f = this.files.get(s.file)!;
      const tensors = new Map<string, Tensor>();
      for (const k of s.keys) tensors.set(k, await f.read(k));
      yield { file: s.file, tensors };
    }
  }

  /** One tensor at a time, shard by shard in file order: peak memory is about the largest tensor. */
  async *iterTensors(): AsyncGenerator<[string, Tensor]> {
    for (const s of this.shards()) {
      const f = this.files.get(s.file)!;
      for (const k of s.keys) yield [k, await f.read(k)];
    }
  }

  /** Every tensor in memory at once (small models, tests). */
  async readAll(): Promise<Map<string, Tensor>> {
    const out = new Map<string, Tensor>();
    for (const k of this.keys()) out.set(k, await this.read(k));
    return out;
  }

  async close(): Promise<void> {
    await Promise.all([...this.files.values()].map((f) => f.close()));
  }
}
