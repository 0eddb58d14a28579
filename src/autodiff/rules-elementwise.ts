// Gradient rules of the elementwise ops (numpy broadcasting, ONNX opset 21). Each entry reads as
// forward on the first comment line, backward on the code line(s); `unb` sums a gradient back to the
// shape of a broadcast operand. Composite ops (SiLU = x·σ(x), GELU via Erf, RMSNorm from primitives)
// need no rule of their own: they are built from these (tinygrad's approach).
// Non-smooth points pick one side, as PyTorch does: Relu'(0) = 0, |x|'(0) = 0 (Sign), Max/Min ties send
// the whole gradient to the first operand (PyTorch splits it evenly; finite differences cannot tell).
// Clip's bounds are build-time constants here: they get no gradient.
// Not here: comparisons and logic (rules-cast.ts, declared non-differentiable), reductions (rules-reduce.ts).

import { op, type Value } from '../graph/index.js';
import type { GradContext, GradRule, OpName, RuleEntry } from './types.js';
import { unbroadcast } from './unbroadcast.js';

/** dy summed to the shape of input i, or null when input i needs no gradient. */
function unb(c: GradContext, i: number, grad: () => Value): Value | null {
  return c.needs(i) ? unbroadcast(c.g, grad(), c.node.in(i).shape) : null;
}

const unary = (f: (c: GradContext) => Value): GradRule => (c) => [f(c)];

/** Which input of Mul(a, b) is x when the other is Sigmoid(x) of the same shape (SiLU), if any. */
function siluInput(a: Value, b: Value): 0 | 1 | undefined {
  const sig = (v: Value, x: Value): boolean => {
    const p = v.producer;
    return p?.opType === 'Sigmoid' && p.domain === '' && p.inputs[0] === x && v.shape.length === x.shape.length && v.shape.every((d, i) => d === x.shape[i]);
  };
  if (sig(b, a)) return 0;
  if (sig(a, b)) return 1;
  return undefined;
}

export const elementwiseRules = {
  // y = a + b                   da = Σ dy,  db = Σ dy   (Σ over broadcast axes)
  Add: (c) => [unb(c, 0, () => c.gy), unb(c, 1, () => c.gy)],
  // y = a − b                   da = Σ dy,  db = −Σ dy
  Sub: (c) => [unb(c, 0, () => c.gy), unb(c, 1, () => op.Neg(c.gy))],
  // y = a · b                   da = Σ dy·b,  db = Σ dy·a
  Mul: (c) => {
    const silu = siluInput(c.node.in(0), c.node.in(1));
    if (silu !== undefined && c.needs(silu)) {
      // SiLU, y = x·σ(x): the two paths into x folded into one, dx = dy·(s + y − y·s) with s = σ(x): four
      // passes over [.., F] instead of six (dy·s, dy·x, then the Sigmoid rule's three and an Add). The
      // Sigmoid gets no gradient from this node; other consumers of it still add theirs through its rule.
      const s = c.x(1 - silu);
      const y = c.y(0);
      const dx = op.Mul(c.gy, op.Add(op.Sub(y, op.Mul(y, s)), s));
      return silu === 0 ? [dx, null] : [null, dx];
    }
    return [unb(c, 0, () => op.Mul(c.gy, c.x(1))), unb(c, 1, () => op.Mul(c.gy, c.x(0)))];
  },
  // y = a / b                   da = Σ dy/b,  db = −Σ dy·y/b
  Div: (c) => [unb(c, 0, () => op.Div(c.gy, c.x(1))), unb(c, 1, () => op.Neg(op.Div(op.Mul(c.gy, c.y(0)), c.x(1))))],
  // y = a^b                     da = Σ dy·b·a^(b−1),  db = Σ dy·y·ln a   (db only for a > 0)
  Pow: (c) => [
    unb(c, 0, () => op.Mul(c.gy, op.Mul(c.x(1), op.Pow(c.x(0), op.Sub(c.x(1), 1))))),
    unb(c, 1, () => op.Mul(c.gy, op.Mul(c.y(0), op.Log(c.x(0))))),
  ],
  // y = max(a, b)               da = Σ dy·[a ≥ b],  db = Σ dy·[a < b]
  Max: (c) => {
    const aWins = op.GreaterOrEqual(c.x(0), c.x(1));
    return [unb(c, 0, () => op.Where(aWins, c.gy, 0)), unb(c, 1, () => op.Where(aWins, 0, c.gy))];
  },
  // y = min(a, b)               da = Σ dy·[a ≤ b],  db = Σ dy·[a > b]
  Min: (c) => {
    const aWins = op.LessOrEqual(c.x(0), c.x(1));
    return [unb(c, 0, () => op.Where(aWins, c.gy, 0)), unb(c, 1, () => op.Where(aWins, 0, c.gy))];
  },
  // y = cond ? a : b            da = Σ dy·cond,  db = Σ dy·¬cond   (cond is boolean: no gradient)
  Where: (c) => [null, unb(c, 1, () => op.Where(c.x(0), c.gy, 0)), unb(c, 2, () => op.Where(c.x(0), 0, c.gy))],
  // y = −x                      dx = −dy
  Neg: unary((c) => op.Neg(c.gy)),
  // y = eˣ                      dx = dy·y
  Exp: unary((c) => op.Mul(c.gy, c.y(0))),
  // y = ln x                    dx = dy/x
  Log: unary((c) => op.Div(c.gy, c.x(0))),
  // y = √x                      dx = dy·½/y
  Sqrt: unary((c) => op.Div(op.Mul(c.gy, 0.5), c.y(0))),
  // y = 1/x                     dx = −dy·y²
  Reciprocal: unary((c) => op.Neg(op.Mul(c.gy, op.Mul(c.y(0), c.y(0))))),
  // y = σ(x)                    dx = dy·y·(1 − y)
  Sigmoid: unary((c) => op.Mul(c.gy, op.Mul(c.y(0), op.Sub(1, c.y(0))))),
  // y = tanh x                  dx = dy·(1 − y²)
  Tanh: unary((c) => op.Mul(c.gy, op.Sub(1, op.Mul(c.y(0), c.y(0))))),
  // y = max(x, 0)               dx = dy·[y > 0]
  Relu: unary((c) => op.Where(op.Greater(c.y(0), 0), c.gy, 0)),
  // y = |x|                     dx = dy·sign(x)
  Abs: unary((c) => op.Mul(c.gy, op.Sign(c.x(0)))),
  // y = sin x                   dx = dy·cos x
  Sin: unary((c) => op.Mul(c.gy, op.Cos(c.x(0)))),
  // y = cos x                   dx = −dy·sin x
  Cos: unary((c) => op.Neg(op.Mul(c.gy, op.Sin(c.x(0))))),
  // y = erf x                   dx = dy·(2/√π)·e^(−x²)
  Erf: unary((c) => op.Mul(c.gy, op.Mul(op.Exp(op.Neg(op.Mul(c.x(0), c.x(0)))), 2 / Math.sqrt(Math.PI)))),
  // y = ln(1 + eˣ)              dx = dy·σ(x)
  Softplus: unary((c) => op.Mul(c.gy, op.Sigmoid(c.x(0)))),
  // y = x                       dx = dy
  Identity: unary((c) => c.gy),
  // y = clip(x, lo, hi)         dx = dy·[lo ≤ x ≤ hi]   (bounds: constants, no gradient)
  Clip: (c) => {
    const x = c.x(0);
    const lo = c.node.inputs[1];
    const hi = c.node.inputs[2];
    let inside: Value | undefined = lo ? op.GreaterOrEqual(x, c.x(1)) : undefined;
    if (hi) {
      const le = op.LessOrEqual(x, c.x(2));
      inside = inside ? op.And(inside, le) : le;
    }
    return [inside ? op.Where(inside, c.gy, 0) : c.gy, null, null];
  },
} satisfies Partial<Record<OpName, RuleEntry>>;
