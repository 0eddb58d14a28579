// Frozen weights a step graph takes as graph inputs fed from the host's own arrays, instead of as
// initializers of which ORT keeps a second copy. Why: a 4-bit model's packed weights are read by the
// in-graph dequantisation, never pre-packed, so as initializers ORT only maps them from a temporary file
// and, once a step has touched them, holds them as a second resident copy next to the host's (288 MB of
// file pages on the 348.7M QLoRA step, bench/lora-memory.ts --detail; ~3.5 GB for a 7B model).
// As inputs ORT reads the host's arrays in place; a session worker borrows their buffers for each run and
// hands them back (Session.runLending: no copy either way). While a step runs the owner's arrays are
// detached, so their owners (QuantizedLinear, FloatWeights) refuse reads until they are back.
// Float32 weights only where ORT does not pre-pack them (checkpointed steps): there, too, ORT read its own
// mapped copy (4.4 GB of file pages for fp32 LoRA on a 1.17B model). Only on the CPU (program.ts
// runsOnCpu): a GPU session would copy such inputs to the device on every run.
// Not here: which weights are lendable (their owners call `input`), the run (src/models/program.ts).

import { TsFinetuneError } from '../core/errors.js';
import { allocArray, type DType, type TypedArray } from '../core/dtype.js';
import { Tensor } from '../core/tensor.js';
import type { Graph, Value } from '../graph/index.js';

/** How a lent weight's owner hands out and takes back its array. */
export interface LendableArray {
  dtype: DType;
  dims: readonly number[];
  /** The current array (owning its whole buffer); the owner counts it as out until `give`. */
  take(): TypedArray;
  /** The array back after a run, its bytes unchanged. */
  give(a: TypedArray): void;
  /** The run's worker died with the array: the owner can no longer serve the weight. */
  lose(why: Error): void;
}

/** The lent inputs of one step graph, by input name. */
export class LentWeights {
  /**
   * Whether float32 weights are lent too: only where the session does not pre-pack them (a checkpointed
   * step, program.ts stepSessionOptions); else ORT's packed copy is what it reads, and lending saves nothing.
   */
  constructor(readonly float32 = false) {}

  private readonly byName = new Map<string, LendableArray>();
  /** The arrays of the run in flight, by name (empty when none is). */
  private readonly out = new Map<string, TypedArray>();

  get names(): string[] {
    return [...this.byName.keys()];
  }

  get size(): number {
    return this.byName.size;
  }

  /** The graph input for `name` (made once: a second pass over the same weights reuses it). */
  input(g: Graph, name: string, w: LendableArray): Value {
    const have = g.inputs.find((v) => v.name === name);
    if (have) return have;
    this.byName.set(name, w);
    return g.input(name, w.dtype, [...w.dims]);
  }

  /** Feeds for one run: the owners' arrays, counted out until `returned` or `settle`. */
  feeds(): Record<string, Tensor> {
    if (this.out.size > 0) throw new TsFinetuneError('RUNTIME_ERROR', 'This step program is already running: await its run before starting another');
    const feeds: Record<string, Tensor> = {};
    try {
      for (const [name, w] of this.byName) {
        const a = w.take();
        this.out.set(name, a);
        feeds[name] = new Tensor(w.dtype, w.dims, a);
      }
    } catch (e) {
      // An owner refused (its weight was lost): hand back what the others gave; nothing was sent.
      for (const [name, a] of this.out) this.byName.get(name)!.give(a);
      this.out.clear();
      throw e;
    }
    return feeds;
  }

  returned(back: Record<string, Tensor>): void {
    for (const [name, w] of this.byName) {
      const t = back[name];
      if (t) w.give(t.data);
    }
    this.out.clear();
  }

  /**
   * After a run that failed without handing the arrays back. An array still attached never left (the run
   * was refused before it was sent: a bad feed) and goes back as it is; a detached one was lost with the
   * worker that died holding it.
   */
  settle(why: Error): void {
    for (const [name, a] of this.out) {
      const w = this.byName.get(name)!;
      if (a.length > 0) w.give(a);
      else w.lose(why);
    }
    this.out.clear();
  }
}

const lending = new WeakMap<Graph, LentWeights>();

/** Make graph `g` take lendable frozen weights as inputs (before its blocks are built). */
export function lendWeights(g: Graph, opts: { float32?: boolean } = {}): LentWeights {
  const l = new LentWeights(opts.float32 ?? false);
  lending.set(g, l);
  return l;
}

/** The lending of `g`, if its builder asked for one. */
export function lentWeightsOf(g: Graph): LentWeights | undefined {
  return lending.get(g);
}

/** `a` itself when it owns its whole (non-shared) buffer, else a copy that does: lent buffers move whole. */
export function owning<T extends TypedArray>(dtype: DType, a: T): T {
  if (!(a.buffer instanceof SharedArrayBuffer) && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) return a;
  const copy = allocArray(dtype, a.length) as T;
  copy.set(a as never);
  return copy;
}
