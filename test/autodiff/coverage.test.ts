// Every op of the builder has a gradient rule or is declared non-differentiable, and every rule is
// exercised by a finite-difference case (cases.ts; Call's registry path is checked in backward.test.ts).
import { describe, expect, it } from 'vitest';
import { Graph, op } from '../../src/graph/index.js';
import { RULES, type RuleTable } from '../../src/autodiff/index.js';
import { elementwiseCases, float32Cases, indexCases, matmulCases, nnCases, reduceCases, shapeCases } from './cases.js';

describe('rule coverage', () => {
  it('has exactly one table entry per op name', () => {
    expect(Object.keys(RULES).sort()).toEqual(Object.keys(op).sort());
  });

  it('is a type error to leave an op out of the table', () => {
    const { Erf: _dropped, ...rest } = RULES;
    // @ts-expect-error: a table without Erf is not a RuleTable (tsc checks this line)
    const incomplete: RuleTable = rest;
    expect(Object.keys(incomplete)).not.toContain('Erf');
  });

  it('checks every rule against finite differences', () => {
    const seen = new Set<string>();
    for (const c of [...elementwiseCases, ...reduceCases, ...shapeCases, ...indexCases, ...matmulCases, ...nnCases, ...float32Cases]) {
      const g = new Graph('cov');
      const xs = c.inputs.map((inp, k) => g.input(`x${k}`, inp.dtype ?? 'float64', inp.shape));
      c.build(g, xs);
      for (const n of g.nodes) seen.add(n.opType);
    }
    const rules = Object.entries(RULES).filter(([, e]) => typeof e === 'function').map(([k]) => k);
    expect(rules.filter((k) => !seen.has(k))).toEqual([]);
    const nondiff = Object.entries(RULES).filter(([, e]) => e === 'nondiff').map(([k]) => k);
    expect(nondiff.sort()).toEqual(['And', 'Equal', 'Floor', 'Greater', 'GreaterOrEqual', 'Less', 'LessOrEqual', 'Not', 'Or', 'Sign'].sort());
  });
});
