// How split names and data files are found in a file listing, checked against datasets' documented examples
// (hub-docs "File names and splits") and its data_files.py rules; plus the glob semantics.

import { describe, expect, it } from 'vitest';
import { builderForFile, globToRegExp, inferBuilder, inferSplitPatterns, matchFiles, sanitizeDataFiles } from '../../src/data/data-files.js';

function splitsOf(files: string[]): Record<string, string[]> {
  const pats = inferSplitPatterns(files);
  return Object.fromEntries(Object.entries(pats).map(([s, ps]) => [s, [...new Set(ps.flatMap((p) => matchFiles(files, p)))].sort()]));
}

describe('split detection (datasets default patterns)', () => {
  it('sharded data/{split}-NNNNN-of-NNNNN files, known splits first then the rest sorted', () => {
    expect(splitsOf(['README.md', 'data/train-00000-of-00002.parquet', 'data/train-00001-of-00002.parquet', 'data/zeta-00000-of-00001.parquet', 'data/test-00000-of-00001.parquet', 'data/alpha-00000-of-00001.parquet'])).toEqual({
      train: ['data/train-00000-of-00002.parquet', 'data/train-00001-of-00002.parquet'],
      test: ['data/test-00000-of-00001.parquet'],
      alpha: ['data/alpha-00000-of-00001.parquet'],
      zeta: ['data/zeta-00000-of-00001.parquet'],
    });
  });

  it('split names in file names, delimited by non-word characters', () => {
    expect(splitsOf(['train.csv', 'test.csv', 'validation.csv'])).toEqual({ train: ['train.csv'], validation: ['validation.csv'], test: ['test.csv'] });
    expect(splitsOf(['my_train_file.csv', 'train1.csv', 'test-file.csv', 'dev.jsonl'])).toEqual({
      train: ['my_train_file.csv', 'train1.csv'], validation: ['dev.jsonl'], test: ['test-file.csv'],
    });
    // "testfile" is not delimited: everything falls back to train.
    expect(splitsOf(['testfile.csv', 'other.csv'])).toEqual({ train: ['other.csv', 'testfile.csv'] });
    expect(splitsOf(['data/train.jsonl', 'data/eval.jsonl'])).toEqual({ train: ['data/train.jsonl'], test: ['data/eval.jsonl'] });
  });

  it('split names in directory names win over file names', () => {
    expect(splitsOf(['data/train/shard_0.csv', 'data/train/shard_1.csv', 'data/test/shard_0.csv', 'random/test.csv'])).toEqual({
      train: ['data/train/shard_0.csv', 'data/train/shard_1.csv'], test: ['data/test/shard_0.csv'],
    });
    expect(splitsOf(['train_data/a.parquet', 'valid/a.parquet'])).toEqual({ train: ['train_data/a.parquet'], validation: ['valid/a.parquet'] });
  });

  it('ignores README.md, dataset json files, hidden and __special__ paths', () => {
    expect(splitsOf(['README.md', 'dataset_info.json', '.gitattributes', '__pycache__/x.csv', 'data.csv'])).toEqual({ train: ['data.csv'] });
  });
});

describe('globs', () => {
  it('* stays in a segment, ** crosses them (also zero dirs), [..] classes, ?', () => {
    expect(globToRegExp('data/*.parquet').test('data/a.parquet')).toBe(true);
    expect(globToRegExp('data/*.parquet').test('data/x/a.parquet')).toBe(false);
    expect(globToRegExp('data/**/*.parquet').test('data/a.parquet')).toBe(true);
    expect(globToRegExp('data/**/*.parquet').test('data/x/y/a.parquet')).toBe(true);
    expect(globToRegExp('**').test('a/b/c')).toBe(true);
    expect(globToRegExp('train-[0-9][0-9].json?').test('train-07.jsonl')).toBe(true);
    expect(globToRegExp('[!a]*').test('abc')).toBe(false);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
  });

  it('dataFiles forms become {split: patterns}', () => {
    expect(sanitizeDataFiles('x.csv')).toEqual({ train: ['x.csv'] });
    expect(sanitizeDataFiles(['a', 'b'])).toEqual({ train: ['a', 'b'] });
    expect(sanitizeDataFiles({ train: 'a', test: ['b', 'c'] })).toEqual({ train: ['a'], test: ['b', 'c'] });
  });

  it('builder from extensions (the most common one wins)', () => {
    expect(builderForFile('a/b.jsonl.gz')).toBe('json');
    expect(builderForFile('x.tsv')).toBe('csv');
    expect(builderForFile('x.txt')).toBe('text');
    expect(inferBuilder(['a.parquet', 'b.parquet', 'c.json'], 'here')).toBe('parquet');
    expect(() => inferBuilder(['a.xyz'], 'the repo')).toThrow(/No supported data files in the repo/);
  });
});
