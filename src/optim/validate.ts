// Checks shared by the optimizers: their options (HF / torch ranges), the arguments of every step, and the
// tensors of a state dict, each failing with a message that names the option or state key.
// Not here: the update math (kernels/), paging (paged.ts).

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import type { DType } from '../core/dtype.js';
import type { OptimizerOptions } from './optimizer.js';

function bad(message: string, details: Record<string, unknown> = {}): TsFinetuneError {
  return new TsFinetuneError('INVALID_ARGUMENT', message, details);
}

/** torch's own checks (0 ≤ β < 1, eps ≥ 0, wd ≥ 0) plus the flat-vector ones. */
export function validateOptions(name: string, size: number, o: OptimizerOptions): void {
  if (!Number.isSafeInteger(size) || size <= 0) throw bad(`${name}: size must be a positive integer, got ${size}`, { size });
  const unit = (key: 'beta1' | 'beta2'): void => {
    const v = o[key];
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw bad(`${name}: ${key} must be in [0, 1), got ${v}`, { [key]: v });
  };
  unit('beta1');
  unit('beta2');
  if (typeof o.eps !== 'number' || !(o.eps >= 0) || !Number.isFinite(o.eps)) throw bad(`${name}: eps must be a finite number >= 0, got ${o.eps}`, { eps: o.eps });
  if (typeof o.weightDecay !== 'number' || !(o.weightDecay >= 0) || !Number.isFinite(o.weightDecay)) {
    throw bad(`${name}: weightDecay must be a finite number >= 0, got ${o.weightDecay}`, { weightDecay: o.weightDecay });
  }
  if (o.decayMask !== undefined) {
    if (!(o.decayMask instanceof Float32Array) || o.decayMask.length !== size) {
      throw bad(`${name}: decayMask must be a Float32Array of ${size} elements (one per parameter), got ${describe(o.decayMask)}`);
    }
  }
  if (o.paramRanges !== undefined) validateRanges(name, size, o.paramRanges);
}

function describe(x: unknown): string {
  if (ArrayBuffer.isView(x)) return `${x.constructor.name}(${(x as Float32Array).length})`;
  return typeof x;
}

function validateRanges(name: string, size: number, ranges: readonly (readonly [number, number])[]): void {
  let prev = 0;
  ranges.forEach(([a, b], i) => {
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || a < prev || b <= a || b > size) {
      throw bad(`${name}: paramRanges[${i}] = [${a}, ${b}] must be ascending, disjoint, non-empty and inside [0, ${size})`, { index: i, range: [a, b] });
    }
    prev = b;
  });
}

/** The arguments of `step`: two vectors of the optimizer's size and a finite lr ≥ 0. */
export function validateStep(name: string, size: number, params: Float32Array, grads: Float32Array, lr: number): void {
  for (const [what, v] of [['params', params], ['grads', grads]] as const) {
    if (!(v instanceof Float32Array) || v.length !== size) throw bad(`${name}.step: ${what} must be a Float32Array of ${size} elements, got ${describe(v)}`);
  }
  if (params.buffer === grads.buffer && params.byteOffset === grads.byteOffset) throw bad(`${name}.step: params and grads are the same array`);
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) throw bad(`${name}.step: lr must be a finite number >= 0, got ${lr}`, { lr });
}

/** State dict entry `key` with the expected dtype and dims, or a CHECKPOINT_ERROR naming it. */
export function stateTensor<D extends DType>(name: string, state: ReadonlyMap<string, Tensor>, key: string, dtype: D, dims: readonly number[]): Tensor<D> {
  const t = state.get(key);
  if (t === undefined) {
    throw new TsFinetuneError('CHECKPOINT_ERROR', `${name}.loadStateDict: missing '${key}' (has ${[...state.keys()].join(', ') || 'nothing'})`, { key });
  }
  const same = t.dims.length === dims.length && t.dims.every((d, i) => d === dims[i]);
  if (t.dtype !== dtype || !same) {
    throw new TsFinetuneError(
      'CHECKPOINT_ERROR',
      `${name}.loadStateDict: '${key}' is ${t.dtype}[${t.dims.join(', ')}], expected ${dtype}[${dims.join(', ')}] (saved by another optimizer or model?)`,
      { key, dtype: t.dtype, dims: [...t.dims] },
    );
  }
  return t as Tensor<D>;
}

/** The step count as torch stores it, accepted as int64 (ours) or float32 (torch's `state['step']`). */
export function readStep(name: string, state: ReadonlyMap<string, Tensor>): number {
  const t = state.get('step');
  if (t === undefined || t.size !== 1) throw new TsFinetuneError('CHECKPOINT_ERROR', `${name}.loadStateDict: missing scalar 'step'`, { key: 'step' });
  const v = t.dtype === 'int64' ? Number((t.data as BigInt64Array)[0]!) : t.dtype === 'float32' || t.dtype === 'float64' ? Number(t.data[0]) : NaN;
  if (!Number.isSafeInteger(v) || v < 0) throw new TsFinetuneError('CHECKPOINT_ERROR', `${name}.loadStateDict: 'step' must be an integer >= 0, got ${v}`, { key: 'step' });
  return v;
}

export function stepTensor(step: number): Tensor<'int64'> {
  return Tensor.int64([step], []);
}
