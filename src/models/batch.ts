// Turning user inputs (number[][], typed arrays, Tensors) into the int64 [B, T] feeds a step graph takes,
// with HF defaults: attention_mask all ones, position ids 0..T−1 per row, labels = none.

import { TsFinetuneError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { shiftLabels } from '../nn/loss.js';
import type { BatchFeeds } from './program.js';

export type IdsInput = Tensor | readonly (readonly number[])[] | readonly number[];

export interface IdBatch {
  data: BigInt64Array;
  B: number;
  T: number;
}

export function toIdBatch(x: IdsInput, what = 'inputIds'): IdBatch {
  if (x instanceof Tensor) {
    if (x.dims.length !== 2) throw new TsFinetuneError('SHAPE_MISMATCH', `${what} must be [B, T], got [${x.dims.join(', ')}]`);
    const [B, T] = x.dims as [number, number];
    const data = x.dtype === 'int64' ? (x.data as BigInt64Array) : BigInt64Array.from(x.toFloat32(), (v) => BigInt(v));
    return { data, B, T };
  }
  const rows = (Array.isArray(x[0]) ? x : [x]) as readonly (readonly number[])[];
  const B = rows.length;
  const T = rows[0]?.length ?? 0;
  const data = new BigInt64Array(B * T);
  rows.forEach((r, b) => {
    if (r.length !== T) throw new TsFinetuneError('SHAPE_MISMATCH', `${what}: row ${b} has ${r.length} tokens, row 0 has ${T} (pad first)`);
    for (let t = 0; t < T; t++) data[b * T + t] = BigInt(r[t]!);
  });
  return { data, B, T };
}

export function defaultPositions(B: number, T: number): BigInt64Array {
  const p = new BigInt64Array(B * T);
  for (let i = 0; i < B * T; i++) p[i] = BigInt(i % T);
  return p;
}

export function makeFeeds(opts: { inputIds: IdsInput; attentionMask?: IdsInput; labels?: IdsInput; positionIds?: IdsInput }): {
  feeds: BatchFeeds;
  B: number;
  T: number;
} {
  const ids = toIdBatch(opts.inputIds);
  const { B, T } = ids;
  const check = (x: IdsInput | undefined, what: string): BigInt64Array | undefined => {
    if (x === undefined) return undefined;
    const b = toIdBatch(x, what);
    if (b.B !== B || b.T !== T) throw new TsFinetuneError('SHAPE_MISMATCH', `${what} is [${b.B}, ${b.T}], inputIds is [${B}, ${T}]`);
    return b.data;
  };
  const attentionMask = check(opts.attentionMask, 'attentionMask') ?? new BigInt64Array(B * T).fill(1n);
  const positionIds = check(opts.positionIds, 'positionIds') ?? defaultPositions(B, T);
  const labels = check(opts.labels, 'labels');
  const targets = labels ? shiftLabels(Array.from(labels, Number), B, T) : new BigInt64Array(B * T).fill(-100n);
  return { feeds: { inputIds: ids.data, attentionMask, positionIds, targets }, B, T };
}
