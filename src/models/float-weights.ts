// The model's floating-point parameters (everything but 4-bit linears): a Map of HF name → float32 tensor
// to its readers, whose entries may be *stored* in 16 bits. transformers loads a 4-bit model's other
// weights (embeddings, norms, lm_head, biases) in float16 unless told otherwise (Bnb4BitHfQuantizer.
// update_torch_dtype: "Overriding torch_dtype=None with torch_dtype=torch.float16 due to requirements of
// bitsandbytes"); we store them the same way, so the 4-bit model holds 2 bytes, not 4, per such weight.
// Reading an entry as a Map (`get`, iteration) gives a fresh float32 copy of a 16-bit one (exact: every
// 16-bit value is a float32); `set` stores float32 (a write, e.g. a merge or a trained value, upcasts that
// entry, as peft's prepare_model_for_kbit_training upcasts what it trains). Graph builders read `stored()`
// and cast in the graph, so no float32 copy of a 16-bit weight is ever held on the host.
// Not here: loading (weights.ts), the graph side (build-context.ts).

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { owning, type LendableArray } from './lent-weights.js';

export type HalfDType = 'float16' | 'bfloat16';
export type StoredFloat = Tensor<'float32'> | Tensor<'float16'> | Tensor<'bfloat16'>;

function isHalf(t: StoredFloat): t is Tensor<'float16'> | Tensor<'bfloat16'> {
  return t.dtype === 'float16' || t.dtype === 'bfloat16';
}

function asFloat32(t: StoredFloat): Tensor<'float32'> {
  return isHalf(t) ? new Tensor('float32', t.dims, t.toFloat32()) : t;
}

export class FloatWeights implements Map<string, Tensor<'float32'>> {
  /** Insertion order is the Map's order (torch's state_dict order at load). */
  private readonly storage = new Map<string, StoredFloat>();
  /** Entries whose arrays a running step has borrowed (lent-weights.ts), and a crash that lost them. */
  private readonly lentOut = new Set<string>();
  private lostWith: Error | undefined;

  constructor(entries?: Iterable<readonly [string, StoredFloat]>) {
    if (entries) for (const [k, t] of entries) this.setStored(k, t);
  }

  /** A plain Map of float32 tensors as the model's weights (no copy: the same tensors). */
  static from(m: ReadonlyMap<string, StoredFloat>): FloatWeights {
    return m instanceof FloatWeights ? m : new FloatWeights(m);
  }

  /** The entries, refused while a running step has some of them or after they were lost with its worker. */
  private get store(): Map<string, StoredFloat> {
    if (this.lostWith) {
      throw new TsFinetuneError('RUNTIME_ERROR', `16-bit weights were lost with the session worker that crashed while a step ran (${this.lostWith.message}): load the model again`);
    }
    if (this.lentOut.size > 0) {
      throw new TsFinetuneError('RUNTIME_ERROR', `Weights (${[...this.lentOut].slice(0, 3).join(', ')}…) are in use by a running training step: await the step first`);
    }
    return this.storage;
  }

  /** The tensor as stored (float32, float16 or bfloat16): what graphs and stateDict use. */
  stored(name: string): StoredFloat | undefined {
    return this.store.get(name);
  }

  /**
   * An entry as an array a step graph can take as a lent input (lent-weights.ts): float16 ones, and float32
   * ones when `float32` (a session that does not pre-pack them); bfloat16 cannot cross into ORT.
   */
  lendable(name: string, float32: boolean): LendableArray | undefined {
    const t = this.storage.get(name);
    if (!t || !(t.dtype === 'float16' || (float32 && t.dtype === 'float32'))) return undefined;
    const { dims, dtype } = t;
    const stored = (a: Uint16Array | Float32Array): StoredFloat => (dtype === 'float16' ? new Tensor('float16', dims, a as Uint16Array) : new Tensor('float32', dims, a as Float32Array));
    return {
      dtype,
      dims,
      take: () => {
        if (this.lostWith) void this.store; // throws, naming the crash
        if (this.lentOut.has(name)) throw new TsFinetuneError('RUNTIME_ERROR', `'${name}' is already lent to a running step`);
        const a = owning(dtype, this.storage.get(name)!.data as Uint16Array | Float32Array);
        this.storage.set(name, stored(a));
        this.lentOut.add(name);
        return a;
      },
      give: (a) => {
        this.storage.set(name, stored(a as Uint16Array | Float32Array));
        this.lentOut.delete(name);
      },
      lose: (why) => {
        this.lostWith = why;
        this.lentOut.clear();
      },
    };
  }

  /** Store `t` as it is (16-bit stays 16-bit). */
  setStored(name: string, t: StoredFloat): this {
    if (t.dtype !== 'float32' && t.dtype !== 'float16' && t.dtype !== 'bfloat16') {
      throw new TsFinetuneError('UNSUPPORTED_DTYPE', `Parameter '${name}' must be float32, float16 or bfloat16, got ${String((t as Tensor).dtype)}`, { tensor: name });
    }
    this.store.set(name, t);
    return this;
  }

  /** Stored entries in order (no conversion). */
  storedEntries(): IterableIterator<[string, StoredFloat]> {
    return this.store.entries();
  }

  /** Bytes held on the host by the stored tensors. */
  get byteLength(): number {
    let n = 0;
    for (const t of this.store.values()) n += t.byteLength;
    return n;
  }

  // ---- Map<string, Tensor<'float32'>> ---------------------------------------------------------------

  get size(): number {
    return this.storage.size;
  }

  get(name: string): Tensor<'float32'> | undefined {
    const t = this.store.get(name);
    return t === undefined ? undefined : asFloat32(t);
  }

  has(name: string): boolean {
    return this.storage.has(name);
  }

  set(name: string, t: Tensor<'float32'>): this {
    return this.setStored(name, t);
  }

  delete(name: string): boolean {
    return this.store.delete(name);
  }

  clear(): void {
    this.store.clear();
  }

  forEach(fn: (value: Tensor<'float32'>, key: string, map: Map<string, Tensor<'float32'>>) => void, thisArg?: unknown): void {
    for (const [k, t] of this.store) fn.call(thisArg, asFloat32(t), k, this);
  }

  keys(): MapIterator<string> {
    return this.storage.keys();
  }

  // Converted one entry at a time, as the caller advances: iterating holds at most one float32 copy.
  *values(): MapIterator<Tensor<'float32'>> {
    for (const t of this.store.values()) yield asFloat32(t);
  }

  *entries(): MapIterator<[string, Tensor<'float32'>]> {
    for (const [k, t] of this.store) yield [k, asFloat32(t)];
  }

  [Symbol.iterator](): MapIterator<[string, Tensor<'float32'>]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return 'FloatWeights';
  }
}
