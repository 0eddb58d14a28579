// Turning SFT rows into token ids and labels, as TRL's SFTTrainer prepares its dataset
// (trl sft_trainer.py `_prepare_dataset`, data_utils.py): the accepted row shapes are
//   - language modelling: `text` (or `datasetTextField`, or `formattingFunc(row)`), EOS appended if missing;
//   - conversational: `messages` [{role, content}], rendered with the chat template;
//   - ShareGPT: `conversations` [{from, value}], converted to messages;
//   - prompt/completion (plain or conversational), with completion-only loss on by default.
// Assistant-only loss trains only tokens inside assistant turns (the tokenizer's masks, which include the
// end-of-turn token), and warns when the end-of-turn token is never trained (the model would not stop).
// Labels are −100 where the loss ignores a token; sequences are truncated to maxLength.

import { TsFinetuneError } from '../core/errors.js';
import type { ChatMessage, PreTrainedTokenizer } from '../tokenizers/index.js';
import type { TokenizedExample } from './collator.js';
import type { Row } from './rows.js';

export interface SftDataOptions {
  datasetTextField: string;
  formattingFunc?: ((row: Row) => string) | undefined;
  maxLength: number | null;
  completionOnlyLoss: boolean | null;
  assistantOnlyLoss: boolean;
  /** Extra variables for the chat template (e.g. enable_thinking). */
  templateKwargs?: Record<string, unknown>;
  /** Appended to plain text and plain completions when missing (SFTConfig.eosToken); default the tokenizer's. */
  eosToken?: string | null;
}

const SHAREGPT_ROLES: Record<string, ChatMessage['role']> = { human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant', system: 'system', tool: 'tool' };

export const ACCEPTED_SHAPES =
  "{text} (or the datasetTextField / a formattingFunc), {messages: [{role, content}]}, {conversations: [{from, value}]} (ShareGPT), {prompt, completion}";

function toMessages(list: unknown, row: number, field: string): ChatMessage[] {
  if (!Array.isArray(list)) throw new TsFinetuneError('DATASET_ERROR', `Row ${row}: '${field}' must be a list of messages`, { row, field });
  return list.map((m: unknown, i) => {
    const o = m as Record<string, unknown>;
    if (field === 'conversations') {
      const role = SHAREGPT_ROLES[String(o.from)];
      if (!role) throw new TsFinetuneError('DATASET_ERROR', `Row ${row}: conversations[${i}].from '${String(o.from)}' is not one of ${Object.keys(SHAREGPT_ROLES).join(', ')}`, { row });
      return { role, content: String(o.value ?? '') };
    }
    return o as unknown as ChatMessage;
  });
}

export interface TokenizeReport {
  examples: TokenizedExample[];
  truncated: number;
  /** Conversational rows whose end-of-turn token was not inside any trained span. */
  untrainedEndOfTurn: number;
}

export function tokenizeSftRows(rows: readonly Row[], columns: readonly string[], tok: PreTrainedTokenizer, o: SftDataOptions): TokenizeReport {
  const out: TokenizedExample[] = [];
  let truncated = 0;
  let untrainedEndOfTurn = 0;
  const eos = o.eosToken ?? tok.eosToken;
  const kwargs = o.templateKwargs ?? {};
  const special = new Set(tok.allSpecialIds);
  rows.forEach((row, r) => {
    let ids: number[];
    let labels: number[];
    if (o.formattingFunc || typeof row[o.datasetTextField] === 'string') {
      let text = o.formattingFunc ? o.formattingFunc(row) : (row[o.datasetTextField] as string);
      if (typeof text !== 'string') throw new TsFinetuneError('DATASET_ERROR', `Row ${r}: formattingFunc must return a string`, { row: r });
      if (eos !== null && !text.endsWith(eos)) text += eos;
      ids = tok.encode(text);
      labels = [...ids];
    } else if (row.messages !== undefined || row.conversations !== undefined) {
      const field = row.messages !== undefined ? 'messages' : 'conversations';
      const messages = toMessages(row[field], r, field);
      const enc = tok.applyChatTemplate(messages, {
        tokenize: true,
        returnDict: true,
        returnAssistantTokensMask: o.assistantOnlyLoss,
        templateKwargs: kwargs,
      }) as { inputIds: number[]; assistantMasks?: number[] };
      ids = enc.inputIds;
      if (o.assistantOnlyLoss) {
        const mask = enc.assistantMasks ?? [];
        labels = ids.map((id, t) => (mask[t] ? id : -100));
        if (!ids.some((id, t) => mask[t] && special.has(id))) untrainedEndOfTurn++;
      } else labels = [...ids];
    } else if (row.prompt !== undefined && row.completion !== undefined) {
      let completion = row.completion as string | ChatMessage[];
      // A configured eosToken replaces the tokenizer's on plain completions (TRL's add_eos).
      const ownEos = typeof completion === 'string' && eos !== null && eos !== tok.eosToken;
      if (ownEos && !(completion as string).endsWith(eos)) completion = (completion as string) + eos;
      const enc = tok.encodePromptCompletion(row.prompt as string | ChatMessage[], completion, {
        chatTemplateOptions: { templateKwargs: kwargs },
        addEos: !ownEos,
      });
      ids = enc.inputIds;
      const completionOnly = o.completionOnlyLoss ?? true;
      labels = ids.map((id, t) => (!completionOnly || enc.completionMask[t] ? id : -100));
    } else {
      throw new TsFinetuneError(
        'DATASET_ERROR',
        `Row ${r} has none of the SFT row shapes. Columns: [${columns.join(', ')}]; datasetTextField is '${o.datasetTextField}'. ` +
          `Accepted: ${ACCEPTED_SHAPES}.`,
        { row: r, columns, datasetTextField: o.datasetTextField },
      );
    }
    if (o.maxLength !== null && ids.length > o.maxLength) {
      ids = ids.slice(0, o.maxLength);
      labels = labels.slice(0, o.maxLength);
      truncated++;
    }
    out.push({ inputIds: ids, labels, sourceRows: [r] });
  });
  return { examples: out, truncated, untrainedEndOfTurn };
}
