// `ts-finetune orpo`: odds-ratio preference optimisation from the command line; the same command as
// `ts-finetune dpo` (src/cli/dpo.ts) with ORPOConfig and no reference model. With no arguments it trains the
// embedded tiny-chat model on the embedded preference set with LoRA.
import { preferenceCommand } from './dpo.js';

export async function orpoCommand(argv: string[]): Promise<number> {
  return preferenceCommand('orpo', argv);
}
