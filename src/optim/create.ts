// createOptimizer: the four optimizers HF's `optim` names that ts-finetune implements, by name.
//   adamw_torch        torch.optim.AdamW, one page over the whole vector          (adamw.ts)
//   paged_adamw_32bit  the same update, state streamed in pages                   (adamw.ts)
//   adamw_8bit         bitsandbytes 8-bit blockwise AdamW                          (adamw-8bit.ts)
//   paged_adamw_8bit   the same, state streamed in pages                           (adamw-8bit.ts)
// Not here: TrainingArguments' defaults (src/train), the update math (kernels/).

import { TsFinetuneError, closestName } from '../core/errors.js';
import { AdamW } from './adamw.js';
import { Adamw8bit } from './adamw-8bit.js';
import type { Optimizer, OptimizerName, OptimizerOptions } from './optimizer.js';

export const OPTIMIZER_NAMES: readonly OptimizerName[] = ['adamw_torch', 'adamw_8bit', 'paged_adamw_32bit', 'paged_adamw_8bit'];

/**
 * An optimizer over a flat float32 parameter vector of `size` elements. Its session is open when the
 * promise resolves: a device whose execution provider cannot load fails here (EP_UNAVAILABLE).
 *
 * @example
 * const opt = await createOptimizer('adamw_torch', params.length, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
 * await opt.step(params, grads, 5e-5);   // params updated in place
 * const state = opt.stateDict();         // Map<string, Tensor>, for optimizer.safetensors
 * await opt.release();
 */
export async function createOptimizer(name: OptimizerName, size: number, opts: OptimizerOptions): Promise<Optimizer> {
  switch (name) {
    case 'adamw_torch':
    case 'paged_adamw_32bit':
      return AdamW.create(name, size, opts);
    case 'adamw_8bit':
    case 'paged_adamw_8bit':
      return Adamw8bit.create(name, size, opts);
    default: {
      const near = closestName(String(name), OPTIMIZER_NAMES);
      throw new TsFinetuneError(
        'INVALID_ARGUMENT',
        `Unknown optimizer '${String(name)}'${near ? ` (did you mean '${near}'?)` : ''}; expected one of ${OPTIMIZER_NAMES.join(', ')}`,
        { name, suggestion: near },
      );
    }
  }
}
