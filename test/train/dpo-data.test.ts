// Preference rows → token ids (TRL's rules), truncation, bad rows, and the concatenated batch layout.
import { describe, expect, it } from 'vitest';
import { TsFinetuneError } from '../../src/core/index.js';
import { collatePreferences } from '../../src/train/dpo-batch.js';
import { extractPrompt, preferenceWarnings, tokenizePreferenceRows, truncatePreference, type PreferenceDataOptions } from '../../src/train/preference-data.js';
import { charTokenizer } from './dpo-helpers.js';

const tok = charTokenizer();
const ids = (s: string): number[] => tok.encode(s, { addSpecialTokens: false });
const NO_LIMIT: PreferenceDataOptions = { maxLength: null, maxPromptLength: null, maxCompletionLength: null, truncationMode: 'keep_end' };

function err(f: () => unknown): TsFinetuneError {
  try {
    f();
  } catch (e) {
    if (e instanceof TsFinetuneError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

describe('preference rows', () => {
  it('plain text: prompt with BOS, completions after it with EOS appended (once)', () => {
    const rep = tokenizePreferenceRows([{ prompt: 'Q: 2+2?', chosen: ' 4', rejected: ' 5</s>' }], ['prompt', 'chosen', 'rejected'], tok, NO_LIMIT);
    const e = rep.examples[0]!;
    expect(e.promptIds).toEqual([1, ...ids('Q: 2+2?')]);
    expect(e.chosenIds).toEqual([...ids(' 4'), 2]);
    expect(e.rejectedIds).toEqual([...ids(' 5'), 2]); // EOS already there: not doubled
  });

  it('conversational: prompt = chat template with the generation prompt; the completion is the rest', () => {
    const prompt = [{ role: 'user' as const, content: 'hi' }];
    const rep = tokenizePreferenceRows(
      [{ prompt, chosen: [{ role: 'assistant', content: 'hello' }], rejected: [{ role: 'assistant', content: 'go away' }] }],
      ['prompt', 'chosen', 'rejected'],
      tok,
      NO_LIMIT,
    );
    const e = rep.examples[0]!;
    expect(tok.decode(e.promptIds)).toBe('<s>Q: hi\nA: ');
    expect(tok.decode(e.chosenIds)).toBe('hello</s>');
    expect(tok.decode(e.rejectedIds)).toBe('go away</s>');
  });

  it('implicit prompt: the longest common prefix of chosen and rejected (messages, or text)', () => {
    const u = { role: 'user', content: 'hi' };
    const a = { role: 'assistant', content: 'hello' };
    const b = { role: 'assistant', content: 'bye' };
    expect(extractPrompt([u, a], [u, b])).toEqual({ prompt: [u], chosen: [a], rejected: [b] });
    expect(extractPrompt('The sky is blue', 'The sky is green')).toEqual({ prompt: 'The sky is', chosen: ' blue', rejected: ' green' });
    const rep = tokenizePreferenceRows([{ chosen: [u, a], rejected: [u, b] }], ['chosen', 'rejected'], tok, NO_LIMIT);
    expect(tok.decode(rep.examples[0]!.promptIds)).toBe('<s>Q: hi\nA: ');
  });

  it('rows missing chosen or rejected fail naming the row and the field; mixed forms fail', () => {
    const e = err(() => tokenizePreferenceRows([{ prompt: 'a', chosen: 'b', rejected: 'c' }, { prompt: 'a', chosen: 'b' }], ['prompt', 'chosen'], tok, NO_LIMIT));
    expect(e.code).toBe('DATASET_ERROR');
    expect(e.message).toContain('Row 1');
    expect(e.message).toContain("'rejected'");
    expect(e.details).toMatchObject({ row: 1, field: 'rejected' });
    expect(err(() => tokenizePreferenceRows([{ prompt: 'a', chosen: [{ role: 'assistant', content: 'b' }], rejected: 'c' }], [], tok, NO_LIMIT)).message).toContain('Row 0');
  });

  it('identical chosen and rejected are reported (the trainer warns)', () => {
    const rep = tokenizePreferenceRows(
      [
        { prompt: 'a', chosen: 'x', rejected: 'y' },
        { prompt: 'a', chosen: 'same', rejected: 'same' },
      ],
      [],
      tok,
      NO_LIMIT,
    );
    expect(rep.identical).toEqual([1]);
    expect(preferenceWarnings(rep, 2, 'trainDataset', null).join('\n')).toMatch(/1 rows have identical chosen and rejected \(rows 1\)/);
  });

  it('pre-tokenized rows (prompt_ids / chosen_ids / rejected_ids) pass through, with ref columns', () => {
    const rep = tokenizePreferenceRows([{ prompt_ids: [1, 5], chosen_ids: [6, 2], rejected_ids: [7, 2], ref_chosen_logps: -3, ref_rejected_logps: -4 }], [], null, NO_LIMIT);
    expect(rep.examples[0]).toEqual({ promptIds: [1, 5], chosenIds: [6, 2], rejectedIds: [7, 2], refChosenLogps: -3, refRejectedLogps: -4, row: 0 });
  });
});

describe('truncation (TRL tokenize_row)', () => {
  const e = { promptIds: [1, 2, 3, 4, 5, 6], chosenIds: [7, 8, 9], rejectedIds: [10, 11, 12, 13, 14] };
  it('prompt first, keeping its end (keep_end) or its start (keep_start), then the completions', () => {
    const o = { maxLength: 8, maxPromptLength: 4, maxCompletionLength: null, truncationMode: 'keep_end' as const };
    expect(truncatePreference(e, o)).toEqual({ promptIds: [3, 4, 5, 6], chosenIds: [7, 8, 9], rejectedIds: [10, 11, 12, 13], truncated: true });
    expect(truncatePreference(e, { ...o, truncationMode: 'keep_start' })!.promptIds).toEqual([1, 2, 3, 4]);
    expect(truncatePreference(e, { ...o, maxLength: 20 })).toEqual({ ...e, truncated: false }); // fits: untouched
    expect(truncatePreference(e, { ...o, maxLength: 20, maxCompletionLength: 2 })).toMatchObject({ chosenIds: [7, 8], rejectedIds: [10, 11], truncated: true });
  });

  it('a prompt that alone fills maxLength is dropped and counted', () => {
    expect(truncatePreference(e, { maxLength: 6, maxPromptLength: null, maxCompletionLength: null, truncationMode: 'keep_end' })).toBeUndefined();
    const rows = [
      { prompt: 'a long long prompt', chosen: 'x', rejected: 'y' },
      { prompt: 'ok', chosen: 'x', rejected: 'y' },
    ];
    const rep = tokenizePreferenceRows(rows, [], tok, { ...NO_LIMIT, maxLength: 10 });
    expect(rep.dropped).toEqual([0]);
    expect(rep.examples.map((x) => x.row)).toEqual([1]);
    expect(preferenceWarnings(rep, 2, 'trainDataset', 10)[0]).toMatch(/dropped 1 of 2 rows whose prompt alone fills maxLength \(10\)/);
  });
});

describe('concatenated batch', () => {
  const pairs = [
    { promptIds: [1, 5, 6], chosenIds: [7, 2], rejectedIds: [8, 9, 2] },
    { promptIds: [1, 4], chosenIds: [3, 2], rejectedIds: [2] },
  ];
  it('chosen rows then rejected rows, padding pairs fully masked, completion-only targets', () => {
    const pb = collatePreferences(pairs, { P: 3, padTokenId: 0, padToMultipleOf: 4 });
    const { B, T, feeds } = pb.batch;
    expect([B, T, pb.numPairs]).toEqual([6, 8, 2]);
    expect(Array.from(pb.pairMask.data)).toEqual([1, 1, 0]);
    const row = (b: number, a: BigInt64Array): number[] => Array.from(a.subarray(b * T, (b + 1) * T), Number);
    expect(row(0, feeds.inputIds)).toEqual([1, 5, 6, 7, 2, 0, 0, 0]);
    expect(row(3, feeds.inputIds)).toEqual([1, 5, 6, 8, 9, 2, 0, 0]); // rejected of pair 0 at row P + 0
    expect(row(0, feeds.targets)).toEqual([-100, -100, 7, 2, -100, -100, -100, -100]);
    expect(row(4, feeds.targets)).toEqual([-100, 2, -100, -100, -100, -100, -100, -100]);
    expect(row(2, feeds.attentionMask)).toEqual([1, 0, 0, 0, 0, 0, 0, 0]); // padding pair: one key only
    expect(row(5, feeds.targets).every((t) => t === -100)).toBe(true);
    expect(pb.chosenNllTokens).toBe(4);
  });

  it('nllOverPrompt: chosen targets cover the prompt, the response mask marks the completion', () => {
    const pb = collatePreferences(pairs, { P: 2, padTokenId: 0, nllOverPrompt: true });
    const T = pb.batch.T;
    expect(Array.from(pb.batch.feeds.targets.subarray(0, T), Number)).toEqual([5, 6, 7, 2, -100, -100]);
    expect(Array.from(pb.batch.feeds.targets.subarray(2 * T, 3 * T), Number)).toEqual([-100, -100, 8, 9, 2, -100]); // rejected: completion only
    expect(Array.from(pb.responseMask!.data.subarray(0, T))).toEqual([0, 0, 1, 1, 0, 0]);
    expect(pb.chosenNllTokens).toBe(4 + 3);
  });
});
