// Truncation and padding of already-encoded rows, with HF's rules for which of them apply
// (transformers `tokenization_utils_base.py`: `_get_padding_truncation_strategies`, `pad`, `truncate_sequences`).
// Not here: encoding text (tokenizer.ts) or labels (-100 padding belongs to the trainer's collator).

import { TsFinetuneError } from '../core/index.js';
import type { PaddingStrategy, Side, TruncationStrategy } from './types.js';

/** transformers' VERY_LARGE_INTEGER: configs use it (1e30) to mean "no limit". */
export const NO_MAX_LENGTH = 1e29;

export interface PadTruncRequest {
  padding?: PaddingStrategy;
  truncation?: TruncationStrategy;
  maxLength?: number;
  padToMultipleOf?: number;
}

export interface ResolvedStrategy {
  pad: 'none' | 'longest' | 'max_length';
  truncate: boolean;
  /** The length rows are cut/padded to; undefined means unlimited. */
  maxLength: number | undefined;
  padToMultipleOf: number | undefined;
}

export interface PadContext {
  modelMaxLength: number;
  paddingSide: Side;
  truncationSide: Side;
  padTokenId: number | null;
  /** Called with a human-readable message (HF logs a warning in the same places). */
  warn: (message: string) => void;
}

function checkLength(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v <= 0)) {
    throw new TsFinetuneError('INVALID_ARGUMENT', `${name} must be a positive integer, got ${String(v)}`, { [name]: v });
  }
}

/** Decide what to do, exactly as HF does, before touching any row. */
export function resolveStrategy(req: PadTruncRequest, ctx: PadContext): ResolvedStrategy {
  checkLength('maxLength', req.maxLength);
  checkLength('padToMultipleOf', req.padToMultipleOf);
  const p = req.padding;
  const pad: ResolvedStrategy['pad'] = p === true || p === 'longest' ? 'longest' : p === 'max_length' ? 'max_length' : 'none';
  if (p !== undefined && p !== false && p !== true && p !== 'longest' && p !== 'max_length' && p !== 'do_not_pad') {
    throw new TsFinetuneError('INVALID_ARGUMENT', `padding must be true, false, 'longest', 'max_length' or 'do_not_pad', got ${JSON.stringify(p)}`);
  }
  const t = req.truncation;
  if (t !== undefined && typeof t !== 'boolean' && t !== 'longest_first' && t !== 'only_first' && t !== 'do_not_truncate') {
    throw new TsFinetuneError('INVALID_ARGUMENT', `truncation must be a boolean, 'longest_first', 'only_first' or 'do_not_truncate', got ${JSON.stringify(t)}`);
  }
  let truncate = t === true || t === 'longest_first' || t === 'only_first';
  if (t === undefined && req.maxLength !== undefined && pad === 'none') {
    // HF: "Truncation was not explicitly activated but `max_length` is provided …" and truncates anyway.
    ctx.warn(
      'Truncation was not explicitly activated but maxLength is given: truncating to maxLength (longest_first), as transformers does. ' +
        'Pass truncation: true to silence this, or truncation: false to keep long rows.',
    );
    truncate = true;
  }
  let maxLength = req.maxLength;
  if (maxLength === undefined && (truncate || pad === 'max_length')) {
    if (ctx.modelMaxLength < NO_MAX_LENGTH) maxLength = ctx.modelMaxLength;
    else if (pad === 'max_length') {
      throw new TsFinetuneError(
        'INVALID_ARGUMENT',
        "padding: 'max_length' needs maxLength: this tokenizer's model_max_length is unset (no limit)",
        { modelMaxLength: ctx.modelMaxLength },
      );
    }
  }
  if (pad !== 'none' && ctx.padTokenId === null) {
    throw new TsFinetuneError(
      'TOKENIZER_ERROR',
      'Asking to pad but the tokenizer has no pad token. Set one first, e.g. tokenizer.padToken = tokenizer.eosToken',
    );
  }
  return { pad, truncate, maxLength, padToMultipleOf: req.padToMultipleOf };
}

/**
 * Truncate (in place) and pad every row of `rows` and of each aligned `extras` list (masks padded with 0).
 * Returns the attention masks. Rows longer than the limit with truncation off produce one warning naming how many.
 */
export function truncateAndPad(rows: number[][], extras: number[][][], s: ResolvedStrategy, ctx: PadContext): number[][] {
  if (s.truncate && s.maxLength !== undefined) {
    const max = s.maxLength;
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r]!;
      if (row.length <= max) continue;
      rows[r] = cut(row, max, ctx.truncationSide);
      for (const e of extras) e[r] = cut(e[r]!, max, ctx.truncationSide);
    }
  } else {
    const limit = s.maxLength ?? (ctx.modelMaxLength < NO_MAX_LENGTH ? ctx.modelMaxLength : undefined);
    if (limit !== undefined) {
      let n = 0;
      let longest = 0;
      for (const row of rows) {
        if (row.length > limit) n++;
        longest = Math.max(longest, row.length);
      }
      if (n > 0) {
        ctx.warn(
          `${n} of ${rows.length} row(s) are longer than the maximum sequence length (longest ${longest} > ${limit}) and were not truncated; ` +
            'running them through the model may fail. Pass truncation: true (and maxLength) to cut them.',
        );
      }
    }
  }

  const masks = rows.map((row) => new Array<number>(row.length).fill(1));
  if (s.pad === 'none') return masks;
  let target = s.pad === 'max_length' && s.maxLength !== undefined ? s.maxLength : 0;
  if (s.pad === 'longest') for (const row of rows) target = Math.max(target, row.length);
  if (s.padToMultipleOf !== undefined) target = Math.ceil(target / s.padToMultipleOf) * s.padToMultipleOf;
  const padId = ctx.padTokenId!;
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    const n = target - row.length;
    if (n <= 0) continue;
    rows[r] = padRow(row, n, padId, ctx.paddingSide);
    masks[r] = padRow(masks[r]!, n, 0, ctx.paddingSide);
    for (const e of extras) e[r] = padRow(e[r]!, n, 0, ctx.paddingSide);
  }
  return masks;
}

function cut(row: number[], max: number, side: Side): number[] {
  return side === 'right' ? row.slice(0, max) : row.slice(row.length - max);
}

function padRow(row: number[], n: number, value: number, side: Side): number[] {
  const fill = new Array<number>(n).fill(value);
  return side === 'right' ? row.concat(fill) : fill.concat(row);
}

export function checkSide(name: string, v: unknown): Side {
  if (v !== 'left' && v !== 'right') {
    throw new TsFinetuneError('INVALID_ARGUMENT', `${name} must be 'left' or 'right', got ${JSON.stringify(v)}`, { [name]: v });
  }
  return v;
}
