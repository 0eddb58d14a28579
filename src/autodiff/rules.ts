// The rule table: one entry per op of the builder's `op` namespace, assembled from the family tables.
// Its type, `{ [K in OpName]: RuleEntry }`, makes an op added to `op` without a rule (or an explicit
// 'nondiff') a compile error; at run time a node with no rule fails with MISSING_GRADIENT_RULE naming the
// op and the node. Custom-domain ops and model-local functions resolve through the registry first.

import type { Node } from '../graph/index.js';
import { functionGradient } from './function-gradients.js';
import { castRules } from './rules-cast.js';
import { elementwiseRules } from './rules-elementwise.js';
import { indexRules } from './rules-index.js';
import { matmulRules } from './rules-matmul.js';
import { nnRules } from './rules-nn.js';
import { reduceRules } from './rules-reduce.js';
import { shapeRules } from './rules-shape.js';
import type { GradRule, OpName, RuleEntry } from './types.js';

/** One entry per op of `op`: a rule, 'nondiff' or 'registry'. */
export type RuleTable = { readonly [K in OpName]: RuleEntry };

export const RULES: RuleTable = {
  ...elementwiseRules,
  ...reduceRules,
  ...shapeRules,
  ...indexRules,
  ...matmulRules,
  ...nnRules,
  ...castRules,
};

/** Table ops the builder emits in the com.microsoft domain (all others are default-domain ONNX ops). */
const MS_DOMAIN_OPS: ReadonlySet<string> = new Set(['RotaryEmbedding', 'MatMulBnb4']);

/** The rule for a node: the registry (custom domains), then the table; undefined when there is none. */
export function ruleFor(node: Node): GradRule | 'nondiff' | undefined {
  let entry: RuleEntry | undefined;
  if (node.domain !== '' && node.domain !== 'ai.onnx') {
    const registered = functionGradient(node.domain, node.opType);
    if (registered !== undefined) return registered;
    if (node.domain === 'com.microsoft' && MS_DOMAIN_OPS.has(node.opType)) entry = RULES[node.opType as OpName];
  } else if (Object.hasOwn(RULES, node.opType) && !MS_DOMAIN_OPS.has(node.opType)) {
    entry = RULES[node.opType as OpName];
  }
  return entry === 'registry' ? undefined : entry;
}
