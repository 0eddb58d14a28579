// One greedy chat sample, for the before/after lines of the training commands.
import type { PreTrainedTokenizer } from '../tokenizers/index.js';

interface Generates {
  generate(ids: number[][], opts: { maxNewTokens: number; doSample: boolean; eosTokenId?: number | number[]; padTokenId?: number }): Promise<number[][]>;
}

export async function sampleChat(model: unknown, tok: PreTrainedTokenizer, prompt: string, maxNewTokens: number): Promise<string> {
  const ids = tok.applyChatTemplate([{ role: 'user', content: prompt }], { tokenize: true, addGenerationPrompt: true }) as number[];
  const g = model as Generates;
  const opts: Parameters<Generates['generate']>[1] = { maxNewTokens, doSample: false };
  if (tok.eosTokenId !== null) opts.eosTokenId = tok.eosTokenId;
  if (tok.padTokenId !== null) opts.padTokenId = tok.padTokenId;
  const out = await g.generate([ids], opts);
  const fresh = out[0]!.slice(ids.length);
  const text = tok.decode(fresh, { skipSpecialTokens: false });
  return JSON.stringify(text);
}
