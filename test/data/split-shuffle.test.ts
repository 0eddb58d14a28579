// shuffle and trainTestSplit: datasets' size rules (ceil for a float testSize, floor for a float trainSize,
// counts for integers), its validation errors, and determinism: the same seed gives the same order on every
// run and machine (golden orders below; they are ours — xoshiro128** — not numpy's).

import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/index.js';
import { Dataset } from '../../src/data/index.js';
import { parseSplit, partRange, roundHalfEven, trainTestSizes } from '../../src/data/split.js';

const ds = Dataset.fromList(Array.from({ length: 20 }, (_, n) => ({ n })));

describe('shuffle', () => {
  it('is a seeded permutation, identical across runs (golden) and independent of earlier calls', () => {
    expect(ds.shuffle({ seed: 777 }).column('n')).toEqual([15, 18, 8, 16, 19, 12, 17, 13, 7, 4, 3, 14, 10, 6, 11, 1, 0, 9, 2, 5]);
    Math.random();
    expect(ds.shuffle(777).column('n')).toEqual(ds.shuffle({ seed: 777 }).column('n'));
    expect(ds.shuffle({ seed: 778 }).column('n')).not.toEqual(ds.shuffle({ seed: 777 }).column('n'));
    expect([...ds.shuffle({ seed: 1 }).column('n')].sort((a, b) => a - b)).toEqual(ds.column('n'));
    const g = new Rng(5);
    const a = ds.shuffle({ generator: g }).column('n');
    const b = ds.shuffle({ generator: g }).column('n');
    expect(a).not.toEqual(b);
    expect(a).toEqual(ds.shuffle({ generator: new Rng(5) }).column('n'));
  });
});

describe('trainTestSplit', () => {
  it('test = first nTest of the seeded permutation, train = the next nTrain (golden)', () => {
    const { train, test } = ds.trainTestSplit({ testSize: 0.2, seed: 42 });
    expect(train.column('n')).toEqual([8, 11, 17, 10, 7, 3, 5, 6, 15, 12, 18, 19, 16, 14, 0, 4]);
    expect(test.column('n')).toEqual([1, 9, 2, 13]);
    const perm = Array.from(new Rng(42).permutation(20));
    expect(test.column('n')).toEqual(perm.slice(0, 4));
    expect(train.column('n')).toEqual(perm.slice(4));
  });

  it('splitting a shuffled, filtered dataset composes the mappings (indices composed in place, splits disjoint)', () => {
    const sh = ds.filter((r) => r.n !== 3).shuffle({ seed: 9 });
    const order = sh.column('n');
    const { train, test } = sh.trainTestSplit({ testSize: 5, seed: 4 });
    const perm = Array.from(new Rng(4).permutation(19));
    expect(test.column('n')).toEqual(perm.slice(0, 5).map((k) => order[k]));
    expect(train.column('n')).toEqual(perm.slice(5).map((k) => order[k]));
    expect(sh.column('n')).toEqual(order); // the source dataset is unchanged
    expect(train.shuffle({ seed: 1 }).column('n').sort((a, b) => a - b)).toEqual(train.column('n').sort((a, b) => a - b));
  });

  it('sizes follow datasets: ceil(testSize·n), floor(trainSize·n), integers are counts, default 0.25', () => {
    expect(trainTestSizes(10, 0.25)).toEqual({ nTrain: 7, nTest: 3 }); // ceil(2.5)
    expect(trainTestSizes(10, undefined, 0.75)).toEqual({ nTrain: 7, nTest: 3 }); // floor(7.5)
    expect(trainTestSizes(10)).toEqual({ nTrain: 7, nTest: 3 });
    expect(trainTestSizes(10, 3)).toEqual({ nTrain: 7, nTest: 3 });
    expect(trainTestSizes(10, 0.1, 0.5)).toEqual({ nTrain: 5, nTest: 1 });
    expect(trainTestSizes(10, 2, 3)).toEqual({ nTrain: 3, nTest: 2 });
    const s = ds.trainTestSplit({ testSize: 0.33, trainSize: 0.5, seed: 1 });
    expect([s.train.numRows, s.test.numRows]).toEqual([10, 7]);
  });

  it('without shuffle: train is the first nTrain rows, test the next nTest', () => {
    const { train, test } = ds.trainTestSplit({ testSize: 5, shuffle: false });
    expect(train.column('n')).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect(test.column('n')).toEqual([15, 16, 17, 18, 19]);
  });

  it('rejects sizes outside (0, 1), counts ≥ n, sums over n, and an empty train set', () => {
    expect(() => ds.trainTestSplit({ testSize: 1.5 })).toThrow(/testSize=1.5 should be either positive and smaller than the number of samples 20 or a float in the \(0, 1\) range/);
    expect(() => ds.trainTestSplit({ testSize: -0.1 })).toThrow(/testSize=-0.1/);
    expect(() => ds.trainTestSplit({ testSize: 0 })).toThrow(/testSize=0/);
    expect(() => ds.trainTestSplit({ testSize: 25 })).toThrow(/testSize=25 should be either positive and smaller than the number of samples 20/);
    expect(() => ds.trainTestSplit({ testSize: 0.6, trainSize: 0.6 })).toThrow(/sum of testSize and trainSize = 1.2/);
    expect(() => ds.trainTestSplit({ testSize: 12, trainSize: 10 })).toThrow(/sum of trainSize and testSize = 22, should be smaller than the number of samples 20/);
    expect(() => Dataset.fromList([{ a: 1 }, { a: 2 }]).trainTestSplit({ testSize: 0.99 })).toThrow(/train set will be empty/);
    try {
      ds.trainTestSplit({ testSize: 2 * 20 });
    } catch (e) {
      expect((e as { code: string }).code).toBe('INVALID_ARGUMENT');
    }
  });
});

describe('split strings', () => {
  it('parses names, slices, percents and joins; percent bounds round half to even', () => {
    expect(parseSplit('train')).toEqual([{ split: 'train' }]);
    expect(parseSplit('train[:10%]+test[5:]')).toEqual([
      { split: 'train', to: { value: 10, percent: true } },
      { split: 'test', from: { value: 5, percent: false } },
    ]);
    expect(partRange(parseSplit('train[:10%]')[0]!, 25)).toEqual([0, 2]); // 2.5 → 2 (half to even)
    expect(partRange(parseSplit('train[:30%]')[0]!, 25)).toEqual([0, 8]); // 7.5 → 8
    expect(partRange(parseSplit('train[-3:]')[0]!, 10)).toEqual([7, 10]);
    expect(roundHalfEven(3.5)).toBe(4);
    expect(() => parseSplit('train[[')).toThrow(/Bad split/);
  });
});
