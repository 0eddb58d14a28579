// The gradient registry for ops outside the typed table: model-local ONNX functions (kernels/: fused
// losses, dequantisation …, called with op.Call) and custom-domain ops such as com.microsoft.MatMulBnb4,
// whose backward needs a kernels/ function that autodiff cannot import (layer order, DESIGN.md).
// Keyed by (domain, op type); a registration for the default ONNX domain is refused, because those rules
// live in the typed table (rules.ts) where a missing one is a type error.

import { TsFinetuneError } from '../core/errors.js';
import type { GradRule } from './types.js';

const registry = new Map<string, GradRule | 'nondiff'>();
const key = (domain: string, opType: string): string => `${domain}::${opType}`;

/**
 * Register the gradient of `domain.opType` (a model-local function or a custom op). Returns a function
 * that restores the previous registration (tests, scoped overrides). The rule sees the call node like any
 * other: ctx.x(i) are the call's inputs, ctx.dy(i) the gradients of its outputs.
 * @example
 * registerFunctionGradient(KERNEL_DOMAIN, 'fused_ce', (c) => [op.Mul(c.gy, …), null]);
 * registerFunctionGradient('com.microsoft', 'MatMulBnb4', matMulBnb4Gradient(nf4Dequant));
 */
export function registerFunctionGradient(domain: string, opType: string, rule: GradRule | 'nondiff'): () => void {
  if (domain === '' || domain === 'ai.onnx') {
    throw new TsFinetuneError(
      'INVALID_ARGUMENT',
      `registerFunctionGradient('${domain}', '${opType}'): ops of the default ONNX domain take their rules from the typed table in src/autodiff/rules.ts`,
    );
  }
  const k = key(domain, opType);
  const had = registry.has(k);
  const prev = registry.get(k);
  registry.set(k, rule);
  return () => {
    if (had && prev !== undefined) registry.set(k, prev);
    else registry.delete(k);
  };
}

/** The registered gradient of `domain.opType`, if any. */
export function functionGradient(domain: string, opType: string): GradRule | 'nondiff' | undefined {
  return registry.get(key(domain, opType));
}
