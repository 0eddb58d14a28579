// Dtype-changing ops. Cast between float types passes the gradient back through the inverse cast
// (y = cast(x) → dx = cast(dy, x.dtype)); a cast to or from an integer/bool type carries none.
// The comparison and logic ops (boolean outputs), Sign and Floor (zero derivative almost everywhere) are
// declared non-differentiable here, explicitly: backward stops at them instead of failing.

import { isFloatDType } from '../core/dtype.js';
import { op } from '../graph/index.js';
import type { OpName, RuleEntry } from './types.js';

export const castRules = {
  // y = cast(x, to)                dx = cast(dy, x.dtype)   (float ↔ float only)
  Cast: (c) => {
    const x = c.node.in(0);
    return [isFloatDType(x.dtype) ? op.Cast(c.gy, x.dtype) : null];
  },
  Equal: 'nondiff',
  Less: 'nondiff',
  Greater: 'nondiff',
  LessOrEqual: 'nondiff',
  GreaterOrEqual: 'nondiff',
  And: 'nondiff',
  Or: 'nondiff',
  Not: 'nondiff',
  Sign: 'nondiff',
  Floor: 'nondiff',
} satisfies Partial<Record<OpName, RuleEntry>>;
