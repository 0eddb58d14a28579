// Scaled-dot-product attention of one block of stacked query rows, as an ONNX function with its own
// backward:
//   forward  (q [B, K, M, D], k [B, K, E, D], v [B, K, E, D], bias [B, 1, 1, R, E]) → (ctx [B, K, M, D], P [B, K, M, E])
//            S = q·kᵀ·scale, viewed [B, K, G, R, E] (M = G·R: the G query heads of a KV head stacked as rows)
//            P = softmax(S + bias) over E;  ctx = P·v
//   backward dP = dctx·vᵀ;  dS = P ⊙ (dP − rowsum(dctx ⊙ ctx));  dq = dS·k·scale;  dk = dSᵀ·q·scale;  dv = Pᵀ·dctx
// Why: the plain graph's Softmax rule forms rowsum(dP ⊙ P) from a third [M, E] product and applies the
// score scale to the [M, E] gradient. rowsum(dP ⊙ P) = rowsum(dctx ⊙ ctx) (FlashAttention's D: ctx = P·v),
// read from [M, D] tensors, and the scale moves to the [M, D] / [E, D] results, so the backward makes two
// [M, E] temporaries (dP, then dS in place of it) instead of four, in two passes fewer.
// P is the function's second output so the backward reads the forward's probabilities (or, under gradient
// checkpointing, the recomputed call's) instead of recomputing them. Not here: the blocks and masks
// (src/nn/attention.ts).

import { TsFinetuneError } from '../src/core/index.js';
import { defineFunction, KERNEL_DOMAIN, op, type DefinedFunction, type Graph, type Value } from '../src/graph/index.js';
import { registerFunctionGradient, type GradContext } from '../src/autodiff/index.js';

interface Shapes {
  B: number;
  K: number;
  G: number;
  R: number; // query rows per head in the block
  E: number; // keys
  D: number;
  scale: number;
}

const fns = new Map<string, DefinedFunction>();

function key(s: Shapes): string {
  return `${s.B}x${s.K}x${s.G}x${s.R}_E${s.E}_D${s.D}_s${s.scale.toPrecision(9)}`;
}

const qkvInputs = (s: Shapes): { name: string; dtype: 'float32'; shape: number[] }[] => [
  { name: 'q', dtype: 'float32', shape: [s.B, s.K, s.G * s.R, s.D] },
  { name: 'k', dtype: 'float32', shape: [s.B, s.K, s.E, s.D] },
  { name: 'v', dtype: 'float32', shape: [s.B, s.K, s.E, s.D] },
];

function backwardFunction(s: Shapes): DefinedFunction {
  const name = `AttentionBlockGrad_${key(s)}`;
  let f = fns.get(name);
  if (f) return f;
  const M = s.G * s.R;
  f = defineFunction(
    {
      name,
      inputs: [
        ...qkvInputs(s),
        { name: 'p', dtype: 'float32', shape: [s.B, s.K, M, s.E] },
        { name: 'ctx', dtype: 'float32', shape: [s.B, s.K, M, s.D] },
        { name: 'dctx', dtype: 'float32', shape: [s.B, s.K, M, s.D] },
      ],
      docString: `backward of AttentionBlock_${key(s)} (kernels/attention-block.ts)`,
    },
    (_g, [q, k, v, p, ctx, dctx]) => {
      const dp = op.MatMul(dctx!, op.Transpose(v!, [0, 1, 3, 2])); // [B, K, M, E]
      const rowDot = op.ReduceSum(op.Mul(dctx!, ctx!), [-1]); // [B, K, M, 1]
      const ds = op.Mul(op.Sub(dp, rowDot), p!); // [B, K, M, E]
      const dq = op.Mul(op.MatMul(ds, k!), s.scale); // [B, K, M, D]
      const dk = op.Mul(op.MatMul(op.Transpose(ds, [0, 1, 3, 2]), q!), s.scale); // [B, K, E, D]: Σ over the G heads inside the GEMM
      const dv = op.MatMul(op.Transpose(p!, [0, 1, 3, 2]), dctx!); // [B, K, E, D]
      return [dq, dk, dv];
    },
  );
  fns.set(name, f);
  return f;
}

function forwardFunction(s: Shapes): DefinedFunction {
  const name = `AttentionBlock_${key(s)}`;
  let f = fns.get(name);
  if (f) return f;
  const M = s.G * s.R;
  f = defineFunction(
    {
      name,
      inputs: [...qkvInputs(s), { name: 'bias', dtype: 'float32', shape: [s.B, 1, 1, s.R, s.E] }],
      docString: `attention of ${M} stacked query rows over ${s.E} keys (kernels/attention-block.ts)`,
    },
    (_g, [q, k, v, bias]) => {
      const scores = op.Mul(op.MatMul(q!, op.Transpose(k!, [0, 1, 3, 2])), s.scale); // [B, K, M, E]
      const masked = op.Add(op.Reshape(scores, [s.B, s.K, s.G, s.R, s.E]), bias!); // [B, K, G, R, E]
      const p = op.Reshape(op.Softmax(masked, -1), [s.B, s.K, M, s.E]);
      return [op.MatMul(p, v!), p];
    },
  );
  registerFunctionGradient(KERNEL_DOMAIN, name, (c) => {
    const dctx = attentionGradGuard('AttentionBlock', c, 1);
    if (dctx === null) return [null, null, null, null];
    const [dq, dk, dv] = backwardFunction(s).call(c.g, [c.x(0), c.x(1), c.x(2), c.y(1), c.y(0), dctx]);
    return [c.needs(0) ? dq! : null, c.needs(1) ? dk! : null, c.needs(2) ? dv! : null, null];
  });
  fns.set(name, f);
  return f;
}

/** The dims of an attention call's operands, checked: q [B, K, G·R, D], k and v [B, K, E, D], bias [B, 1, 1, R, E]. */
export function attentionDims(what: string, q: Value, k: Value, v: Value, bias: Value, G: number, tile = 0): { B: number; K: number; R: number; E: number; D: number } {
  const [B, K, M, D] = q.shape as [number, number, number, number];
  const E = k.shape[2]!;
  const R = M / G;
  const ok =
    q.rank === 4 && k.rank === 4 && v.rank === 4 && bias.rank === 5 && Number.isInteger(R) && (tile === 0 || (E % tile === 0 && E > 0)) &&
    [k, v].every((t) => t.shape[0] === B && t.shape[1] === K && t.shape[2] === E && t.shape[3] === D) &&
    bias.shape[0] === B && bias.shape[1] === 1 && bias.shape[2] === 1 && bias.shape[3] === R && bias.shape[4] === E;
  if (!ok) {
    const tiles = tile === 0 ? '' : ` and E a multiple of ${tile}`;
    throw new TsFinetuneError('SHAPE_MISMATCH', `${what}: q [${q.shape.join(', ')}], k [${k.shape.join(', ')}], v [${v.shape.join(', ')}], bias [${bias.shape.join(', ')}] do not fit [B, K, G·R, D], [B, K, E, D], [B, K, E, D], [B, 1, 1, R, E] with G ${G}${tiles}`);
  }
  if ([q, k, v, bias].some((t) => t.dtype !== 'float32')) throw new TsFinetuneError('GRAPH_ERROR', `${what}: q, k, v and bias must be float32`);
  return { B, K, R, E, D };
}

/**
 * The gradient rule's common part for an attention call (q, k, v, bias) → (ctx, probabilities…): refuses a
 * bias gradient and gradients arriving at the probabilities; null when nothing needs a gradient.
 */
export function attentionGradGuard(what: string, c: GradContext, probabilityOutputs: number): Value | null {
  if (c.needs(3)) throw new TsFinetuneError('GRAPH_ERROR', `${what}: the attention bias does not take a gradient`);
  for (let j = 1; j <= probabilityOutputs; j++) if (c.dy(j) !== null) throw new TsFinetuneError('GRAPH_ERROR', `${what}: its probability outputs are for the backward only`);
  const dctx = c.dy(0);
  return dctx === null || ![0, 1, 2].some((i) => c.needs(i)) ? null : dctx;
}

/**
 * Attention of stacked query rows `q` [B, K, G·R, D] over keys `k` and values `v` [B, K, E, D] with the
 * additive mask `bias` [B, 1, 1, R, E]: returns the context [B, K, G·R, D].
 * @example
 * const ctx = attentionBlock(g, qf, k, vt, bias, 2, 1 / Math.sqrt(D));
 */
export function attentionBlock(g: Graph, q: Value, k: Value, v: Value, bias: Value, G: number, scale: number): Value {
  const { B, K, R, E, D } = attentionDims('attentionBlock', q, k, v, bias, G);
  return forwardFunction({ B, K, G, R, E, D, scale }).call(g, [q, k, v, bias])[0]!;
}
