// Size arithmetic for splits, exactly as datasets does it: `train_test_split` (arrow_dataset.py, which
// follows sklearn's _validate_shuffle_split: float testSize → ceil(testSize·n), float trainSize →
// floor(trainSize·n), integers are counts), `shard` boundaries, and split strings such as
// "train[:10%]+validation" (datasets' arrow_reader.py ReadInstruction, percent boundaries rounded to
// the closest row, ties to even as Python's round()).
// Not here: the shuffling itself (Rng from src/core) or the Dataset API.

import { TsFinetuneError } from '../core/index.js';

export interface SplitSizes {
  nTrain: number;
  nTest: number;
}

const isCount = (x: number): boolean => Number.isInteger(x);

/**
 * Train/test sizes for `n` rows. JS has one number type, so an integral value is a count and a
 * fractional one a fraction (datasets decides by Python int vs float; `1.0` means one row here).
 */
export function trainTestSizes(n: number, testSize?: number | null, trainSize?: number | null): SplitSizes {
  const bad = (msg: string, details: Record<string, unknown>): never => {
    throw new TsFinetuneError('INVALID_ARGUMENT', msg, { numRows: n, ...details });
  };
  if (testSize == null && trainSize == null) testSize = 0.25;
  for (const [name, v] of [['testSize', testSize], ['trainSize', trainSize]] as const) {
    if (v == null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) bad(`${name} must be a number, got ${String(v)}`, { [name]: v });
    if (isCount(v as number)) {
      if ((v as number) <= 0 || (v as number) >= n) {
        bad(`${name}=${v} should be either positive and smaller than the number of samples ${n} or a float in the (0, 1) range`, { [name]: v });
      }
    } else if ((v as number) <= 0 || (v as number) >= 1) {
      bad(`${name}=${v} should be either positive and smaller than the number of samples ${n} or a float in the (0, 1) range`, { [name]: v });
    }
  }
  if (testSize != null && trainSize != null && !isCount(testSize) && !isCount(trainSize) && testSize + trainSize > 1) {
    bad(`The sum of testSize and trainSize = ${testSize + trainSize}, should be in the (0, 1) range. Reduce testSize and/or trainSize.`, { testSize, trainSize });
  }
  let nTest = testSize == null ? undefined : isCount(testSize) ? testSize : Math.ceil(testSize * n);
  let nTrain = trainSize == null ? undefined : isCount(trainSize) ? trainSize : Math.floor(trainSize * n);
  if (nTrain === undefined) nTrain = n - nTest!;
  if (nTest === undefined) nTest = n - nTrain;
  if (nTrain + nTest > n) {
    bad(`The sum of trainSize and testSize = ${nTrain + nTest}, should be smaller than the number of samples ${n}. Reduce testSize and/or trainSize.`, { testSize, trainSize });
  }
  if (nTrain === 0) {
    bad(`With n_samples=${n}, testSize=${testSize} and trainSize=${trainSize}, the resulting train set will be empty. Adjust any of the aforementioned parameters.`, { testSize, trainSize });
  }
  return { nTrain, nTest };
}

/** [start, end) of contiguous shard `index` of `numShards` over n rows (datasets' `shard(contiguous=True)`). */
export function shardRange(n: number, numShards: number, index: number): [number, number] {
  if (!Number.isInteger(numShards) || numShards < 1) throw new TsFinetuneError('INVALID_ARGUMENT', `numShards must be a positive integer, got ${numShards}`);
  if (!Number.isInteger(index) || index < 0 || index >= numShards) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `index should be in [0, ${numShards - 1}], got ${index}`);
  }
  const div = Math.floor(n / numShards), mod = n % numShards;
  const start = div * index + Math.min(index, mod);
  return [start, start + div + (index < mod ? 1 : 0)];
}

/** Python's round(): half to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export interface SplitPart {
  split: string;
  from?: { value: number; percent: boolean };
  to?: { value: number; percent: boolean };
}

const PART = /^(\w+(?:\.\w+)*)(?:\[\s*(-?\d+%?)?\s*:\s*(-?\d+%?)?\s*\]|\[\s*(-?\d+%?)\s*\])?$/;

/** Parse "train", "train[:100]", "train[10%:20%]", "train+test". */
export function parseSplit(spec: string): SplitPart[] {
  return spec.split('+').map((raw) => {
    const s = raw.trim();
    const m = PART.exec(s);
    if (!m) {
      throw new TsFinetuneError('INVALID_ARGUMENT', `Bad split '${spec}': expected a name like 'train', optionally sliced as 'train[:10%]' or 'train[100:200]', joined with '+'`);
    }
    const bound = (b: string | undefined): SplitPart['from'] =>
      b === undefined ? undefined : { value: parseInt(b, 10), percent: b.endsWith('%') };
    if (m[4] !== undefined) {
      // "train[5]" is not a slice in datasets either; treat as an error with a hint.
      throw new TsFinetuneError('INVALID_ARGUMENT', `Bad split '${spec}': use a slice such as '${m[1]}[${m[4]}:]'`);
    }
    const part: SplitPart = { split: m[1]! };
    const from = bound(m[2]), to = bound(m[3]);
    if (from) part.from = from;
    if (to) part.to = to;
    return part;
  });
}

/** Row range of a parsed part over n rows (negative and percent bounds as datasets resolves them). */
export function partRange(part: SplitPart, n: number): [number, number] {
  const abs = (b: SplitPart['from'], dflt: number): number => {
    if (!b) return dflt;
    let v = b.percent ? roundHalfEven((b.value * n) / 100) : b.value;
    if (v < 0) v += n;
    return Math.max(0, Math.min(n, v));
  };
  const a = abs(part.from, 0), b = abs(part.to, n);
  return [a, Math.max(a, b)];
}
