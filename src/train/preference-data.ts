// Preference rows (prompt / chosen / rejected) → token ids, as TRL's DPOTrainer / ORPOTrainer prepare them
// (trl `trainer/dpo_trainer.py` `_prepare_dataset`, `data_utils.py` `extract_prompt`):
//   - plain text: EOS appended to chosen / rejected if missing; prompt_ids = tok(prompt),
//     chosen_ids = tok(prompt + chosen)[len(prompt_ids):] (and the same for rejected);
//   - conversational: prompt_ids = chat(prompt, add_generation_prompt), chosen_ids = chat(prompt + chosen)[len(prompt_ids):];
//   - no `prompt` column: the implicit prompt is the longest common prefix of chosen and rejected (messages,
//     or characters for plain text, as `extract_prompt`);
//   - pre-tokenized rows (`prompt_ids`, `chosen_ids`, `rejected_ids`, TRL's tokenized columns) are taken as they are.
// Truncation: completions to maxCompletionLength; then, when prompt + the longer completion exceeds maxLength,
// the prompt to maxPromptLength (truncationMode keep_end / keep_start: which end of the prompt survives, TRL's
// tokenize_row); then completions to maxLength − prompt. A prompt that alone fills maxLength leaves no
// completion token: that row is dropped and counted.
// Not here: batching (dpo-batch.ts), the reference pass (dpo-reference.ts).

import { TsFinetuneError } from '../core/errors.js';
import type { ChatMessage, PreTrainedTokenizer } from '../tokenizers/index.js';
import type { TruncationMode } from './dpo-config.js';
import type { Row } from './rows.js';

export interface PreferenceExample {
  promptIds: number[];
  chosenIds: number[];
  rejectedIds: number[];
  /** Reference log-probs (summed over the completion), when precomputed or given as columns. */
  refChosenLogps?: number;
  refRejectedLogps?: number;
  /** Index of the dataset row it came from. */
  row: number;
}

export interface PreferenceDataOptions {
  maxLength: number | null;
  maxPromptLength: number | null;
  maxCompletionLength: number | null;
  truncationMode: TruncationMode;
  /** Extra chat-template variables (e.g. { enable_thinking: false }). */
  templateKwargs?: Record<string, unknown>;
}

export interface PreferenceReport {
  examples: PreferenceExample[];
  /** Rows dropped because the prompt alone fills maxLength. */
  dropped: number[];
  /** Rows whose chosen and rejected are identical (no preference signal). */
  identical: number[];
  /** Rows where prompt + completion was truncated. */
  truncated: number;
  /** Rows whose prompt did not tokenize to a prefix of prompt + completion (the mask is cut by length anyway). */
  prefixMismatch: number;
}

type Turns = ChatMessage[];
type Part = string | Turns;

const SHAPES = "{prompt, chosen, rejected} (plain strings or message lists), {chosen, rejected} (implicit prompt), or tokenized {prompt_ids, chosen_ids, rejected_ids}";

function isMessages(v: unknown): v is Turns {
  return Array.isArray(v) && v.every((m) => typeof m === 'object' && m !== null && typeof (m as { role?: unknown }).role === 'string');
}

function sameMessage(a: ChatMessage, b: ChatMessage): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * TRL's `extract_prompt`: the longest common prefix of chosen and rejected becomes the prompt (whole messages
 * for conversations; characters for text, minus a trailing space). As upstream, when one is a prefix of the
 * other the last shared element stays with the completions.
 */
export function extractPrompt(chosen: Part, rejected: Part): { prompt: Part; chosen: Part; rejected: Part } {
  const n = Math.min(chosen.length, rejected.length);
  let idx = 0;
  for (idx = 0; idx < n; idx++) {
    const differ = typeof chosen === 'string' ? chosen[idx] !== rejected[idx] : !sameMessage(chosen[idx]!, (rejected as Turns)[idx]!);
    if (differ) {
      if (typeof chosen === 'string' && idx > 0 && chosen[idx - 1] === ' ') idx--;
      break;
    }
  }
  if (idx === n) idx = Math.max(0, n - 1); // python's loop variable after a loop that never breaks
  return { prompt: chosen.slice(0, idx), chosen: chosen.slice(idx), rejected: rejected.slice(idx) };
}

function idsField(row: Row, name: string, r: number): number[] {
  const v = row[name];
  const arr = ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<number | bigint>, Number) : v;
  if (!Array.isArray(arr) || !arr.every((x) => Number.isInteger(Number(x)))) {
    throw new TsFinetuneError('DATASET_ERROR', `Row ${r}: '${name}' must be a list of token ids`, { row: r, field: name });
  }
  return arr.map(Number);
}

function startsWith(a: readonly number[], prefix: readonly number[]): boolean {
  if (prefix.length > a.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

/** Check one row and return its three parts (prompt possibly implicit). */
export function readPreferenceRow(row: Row, r: number, columns: readonly string[]): { prompt: Part; chosen: Part; rejected: Part } {
  for (const field of ['chosen', 'rejected'] as const) {
    if (row[field] === undefined || row[field] === null) {
      throw new TsFinetuneError(
        'DATASET_ERROR',
        `Row ${r} has no '${field}'. Columns: [${columns.join(', ')}]. Preference rows need ${SHAPES}.`,
        { row: r, field, columns },
      );
    }
  }
  const chosen = row.chosen;
  const rejected = row.rejected;
  const kind = (v: unknown): 'text' | 'messages' | 'other' => (typeof v === 'string' ? 'text' : isMessages(v) ? 'messages' : 'other');
  const kc = kind(chosen);
  const kr = kind(rejected);
  if (kc === 'other' || kr === 'other' || kc !== kr) {
    throw new TsFinetuneError('DATASET_ERROR', `Row ${r}: 'chosen' and 'rejected' must both be strings or both be message lists`, { row: r });
  }
  if (row.prompt === undefined || row.prompt === null) return extractPrompt(chosen as Part, rejected as Part);
  const kp = kind(row.prompt);
  if (kp !== kc) {
    throw new TsFinetuneError('DATASET_ERROR', `Row ${r}: 'prompt' is ${kp === 'text' ? 'a string' : 'not a string'} but 'chosen' is ${kc === 'text' ? 'a string' : 'a message list'}; use one form for all three`, { row: r });
  }
  return { prompt: row.prompt as Part, chosen: chosen as Part, rejected: rejected as Part };
}

interface Tokenized {
  promptIds: number[];
  chosenIds: number[];
  rejectedIds: number[];
  mismatch: boolean;
}

function tokenizeParts(tok: PreTrainedTokenizer, p: { prompt: Part; chosen: Part; rejected: Part }, kwargs: Record<string, unknown>): Tokenized {
  let promptIds: number[];
  let fullC: number[];
  let fullR: number[];
  if (typeof p.prompt === 'string') {
    const eos = tok.eosToken;
    const addEos = (s: string): string => (eos !== null && !s.endsWith(eos) ? s + eos : s);
    [promptIds, fullC, fullR] = tok.encodeMany([p.prompt, p.prompt + addEos(p.chosen as string), p.prompt + addEos(p.rejected as string)], true) as [
      number[],
      number[],
      number[],
    ];
  } else {
    const opts = { templateKwargs: kwargs };
    promptIds = tok.applyChatTemplate(p.prompt, { ...opts, addGenerationPrompt: true });
    fullC = tok.applyChatTemplate([...p.prompt, ...(p.chosen as Turns)], opts);
    fullR = tok.applyChatTemplate([...p.prompt, ...(p.rejected as Turns)], opts);
  }
  const mismatch = !startsWith(fullC, promptIds) || !startsWith(fullR, promptIds);
  return { promptIds, chosenIds: fullC.slice(promptIds.length), rejectedIds: fullR.slice(promptIds.length), mismatch };
}

/** Apply the length limits; undefined when no completion token fits (the row is dropped). */
export function truncatePreference(
  e: { promptIds: number[]; chosenIds: number[]; rejectedIds: number[] },
  o: Pick<PreferenceDataOptions, 'maxLength' | 'maxPromptLength' | 'maxCompletionLength' | 'truncationMode'>,
): { promptIds: number[]; chosenIds: number[]; rejectedIds: number[]; truncated: boolean } | undefined {
  let { promptIds, chosenIds, rejectedIds } = e;
  let truncated = false;
  if (o.maxCompletionLength !== null) {
    if (chosenIds.length > o.maxCompletionLength || rejectedIds.length > o.maxCompletionLength) truncated = true;
    chosenIds = chosenIds.slice(0, o.maxCompletionLength);
    rejectedIds = rejectedIds.slice(0, o.maxCompletionLength);
  }
  if (o.maxLength !== null) {
    const longer = Math.max(chosenIds.length, rejectedIds.length);
    if (promptIds.length + longer > o.maxLength) {
      truncated = true;
      if (o.maxPromptLength !== null && promptIds.length > o.maxPromptLength) {
        promptIds = o.truncationMode === 'keep_start' ? promptIds.slice(0, o.maxPromptLength) : promptIds.slice(promptIds.length - o.maxPromptLength);
      }
      const room = o.maxLength - promptIds.length;
      if (room <= 0) return undefined;
      chosenIds = chosenIds.slice(0, room);
      rejectedIds = rejectedIds.slice(0, room);
    }
  }
  return { promptIds, chosenIds, rejectedIds, truncated };
}

/** Tokenize and truncate preference rows (see the file comment for the rules). */
export function tokenizePreferenceRows(
  rows: readonly Row[],
  columns: readonly string[],
  tok: PreTrainedTokenizer | null | undefined,
  o: PreferenceDataOptions,
): PreferenceReport {
  const report: PreferenceReport = { examples: [], dropped: [], identical: [], truncated: 0, prefixMismatch: 0 };
  const kwargs = o.templateKwargs ?? {};
  rows.forEach((row, r) => {
    let t: Tokenized;
    if (row.chosen_ids !== undefined || row.rejected_ids !== undefined) {
      t = { promptIds: row.prompt_ids === undefined ? [] : idsField(row, 'prompt_ids', r), chosenIds: idsField(row, 'chosen_ids', r), rejectedIds: idsField(row, 'rejected_ids', r), mismatch: false };
      if (JSON.stringify(t.chosenIds) === JSON.stringify(t.rejectedIds)) report.identical.push(r);
    } else {
      const parts = readPreferenceRow(row, r, columns);
      if (JSON.stringify(parts.chosen) === JSON.stringify(parts.rejected)) report.identical.push(r);
      if (!tok) throw new TsFinetuneError('INVALID_ARGUMENT', `Row ${r} is text: pass a tokenizer (or tokenized prompt_ids / chosen_ids / rejected_ids columns)`, { row: r });
      t = tokenizeParts(tok, parts, kwargs);
    }
    if (t.mismatch) report.prefixMismatch++;
    if (t.chosenIds.length === 0 || t.rejectedIds.length === 0) {
      throw new TsFinetuneError('DATASET_ERROR', `Row ${r}: the ${t.chosenIds.length === 0 ? 'chosen' : 'rejected'} completion has no tokens`, { row: r });
    }
    const cut = truncatePreference(t, o);
    if (!cut) {
      report.dropped.push(r);
      return;
    }
    if (cut.truncated) report.truncated++;
    const ex: PreferenceExample = { promptIds: cut.promptIds, chosenIds: cut.chosenIds, rejectedIds: cut.rejectedIds, row: r };
    const rc = row.ref_chosen_logps;
    const rr = row.ref_rejected_logps;
    if (typeof rc === 'number' && typeof rr === 'number') {
      ex.refChosenLogps = rc;
      ex.refRejectedLogps = rr;
    }
    report.examples.push(ex);
  });
  return report;
}

/** The warnings TRL prints (and ours) for a tokenized split, one line each. */
export function preferenceWarnings(rep: PreferenceReport, total: number, what: string, maxLength: number | null): string[] {
  const out: string[] = [];
  const list = (rows: number[]): string => rows.slice(0, 10).join(', ') + (rows.length > 10 ? ', …' : '');
  if (rep.dropped.length) {
    out.push(`${what}: dropped ${rep.dropped.length} of ${total} rows whose prompt alone fills maxLength (${maxLength}) (rows ${list(rep.dropped)}); raise maxLength or set maxPromptLength.`);
  }
  if (rep.identical.length) {
    out.push(`${what}: ${rep.identical.length} rows have identical chosen and rejected (rows ${list(rep.identical)}); they carry no preference signal.`);
  }
  if (rep.prefixMismatch) {
    out.push(`${what}: in ${rep.prefixMismatch} rows the tokenized prompt is not a prefix of prompt + completion (tokenizer merges across the boundary); the completion is cut by the prompt's length, as TRL does.`);
  }
  return out;
}
