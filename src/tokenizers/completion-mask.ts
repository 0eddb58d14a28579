// Prompt/completion rows for completion-only loss: input ids of prompt+completion and a mask that is 0 on the
// prompt's tokens and 1 on the completion's, exactly as TRL's SFT tokenize step builds `completion_mask`:
//   plain text:      prompt_ids = tok(prompt), ids = tok(prompt + completion [+ EOS if missing])
//   conversational:  prompt_ids = chat(prompt, add_generation_prompt), ids = chat(prompt + completion)
// with a warning when prompt_ids is not a prefix of ids (TRL warns the same and masks by length anyway).
// Not here: labels (-100 where the mask is 0) and packing, which belong to the trainer.
// Follows trl `trainer/sft_trainer.py` (`tokenize` in `_prepare_dataset`, `add_eos`).

import { TsFinetuneError } from '../core/index.js';
import type { PreTrainedTokenizer } from './tokenizer.js';
import type { ChatMessage, PromptCompletionEncoding, PromptCompletionOptions } from './types.js';

function sameStart(a: readonly number[], prefix: readonly number[]): boolean {
  if (prefix.length > a.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

export function encodePromptCompletion(
  tok: PreTrainedTokenizer,
  prompt: string | ChatMessage[],
  completion: string | ChatMessage[],
  options: PromptCompletionOptions,
): PromptCompletionEncoding {
  let promptIds: number[];
  let ids: number[];
  if (typeof prompt === 'string' && typeof completion === 'string') {
    let full = prompt + completion;
    const eos = tok.eosToken;
    if ((options.addEos ?? true) && eos !== null && !completion.endsWith(eos)) full += eos;
    [promptIds, ids] = tok.encodeMany([prompt, full], true) as [number[], number[]];
  } else if (Array.isArray(prompt) && Array.isArray(completion)) {
    const opts = { ...(options.chatTemplateOptions ?? {}), tokenize: true, returnDict: false, returnAssistantTokensMask: false, continueFinalMessage: false };
    promptIds = tok.applyChatTemplate(prompt, { ...opts, addGenerationPrompt: true });
    ids = tok.applyChatTemplate([...prompt, ...completion], { ...opts, addGenerationPrompt: false });
  } else {
    throw new TsFinetuneError(
      'INVALID_ARGUMENT',
      `prompt and completion must both be strings or both be message lists, got ${Array.isArray(prompt) ? 'messages' : typeof prompt} and ${Array.isArray(completion) ? 'messages' : typeof completion}`,
    );
  }
  if (!sameStart(ids, promptIds)) {
    tok.onWarning(
      'Mismatch between tokenized prompt and the start of tokenized prompt+completion. This may be due to unexpected ' +
        'tokenizer behavior, whitespace issues, or special token handling. The completion mask is cut by the prompt length, as TRL does.',
    );
  }
  const n = Math.min(promptIds.length, ids.length);
  const completionMask = ids.map((_, i) => (i < n ? 0 : 1));
  return { inputIds: ids, attentionMask: new Array<number>(ids.length).fill(1), completionMask };
}
