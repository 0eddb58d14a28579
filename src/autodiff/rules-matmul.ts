// Gradient rule of MatMul (numpy matmul: 1-D operands promoted, batch axes broadcast).
//   forward:   y[…, M, N] = a[…, M, K] · b[…, K, N]
//   backward:  da = dy · bᵀ   [… , M, K]   then Σ over a's broadcast batch axes
//              db = aᵀ · dy   [… , K, N]   then Σ over b's broadcast batch axes
// The common case of a weight shared across the batch (a [B, T, K] · W [K, N]) computes dW as ONE GEMM
// over all B·T rows (aᵀ[K, B·T] · dy[B·T, N]) instead of B GEMMs and a ReduceSum.
// ORT fuses most Transposes feeding a MatMul into com.microsoft.FusedMatMul (no copy at run time).
// Not here: MatMulBnb4 (rules-nn.ts), Gemm (not emitted by the builder).

import { op, shapes, type Value } from '../graph/index.js';
import type { OpName, RuleEntry } from './types.js';
import { unbroadcast } from './unbroadcast.js';

/** Swap the last two axes. */
function mT(v: Value): Value {
  const p = v.shape.map((_, i) => i);
  p[v.rank - 1] = v.rank - 2;
  p[v.rank - 2] = v.rank - 1;
  return op.Transpose(v, p);
}

/** Whether `v` is Transpose(W, [1, 0]) of a 2-D W (how src/nn writes x·Wᵀ). */
function isTransposeOf2d(v: Value): boolean {
  const p = v.producer;
  const perm = p?.attrs['perm'];
  return p?.opType === 'Transpose' && p.domain === '' && v.rank === 2 && perm?.kind === 'ints' && perm.value[0] === 1 && perm.value[1] === 0;
}

/** dy = Mul(z, s) with z of dy's shape and s [.., M, 1] broadcast along the last axis, when N > K pays. */
function rowScaled(dy: Value): { z: Value; s: Value } | undefined {
  const p = dy.producer;
  if (p?.opType !== 'Mul' || p.domain !== '' || dy.rank < 2) return undefined;
  const [z, s] = p.inputs;
  if (!z || !s || z.rank !== dy.rank || z.shape.some((d, i) => d !== dy.shape[i])) return undefined;
  if (s.rank !== dy.rank || s.shape[s.rank - 1] !== 1 || s.shape.some((d, i) => i < s.rank - 1 && d !== dy.shape[i])) return undefined;
  return { z, s };
}

export const matmulRules = {
  MatMul: (c) => {
    const a = c.node.in(0);
    const b = c.node.in(1);
    const K = a.shape[a.rank - 1]!;
    const aShape = a.rank === 1 ? [1, K] : a.shape; // 1-D a is a row [1, K]
    const bShape = b.rank === 1 ? [K, 1] : b.shape; // 1-D b is a column [K, 1]
    const dy = op.Reshape(c.gy, shapes.matmulShape(aShape, bShape)); // […, M, N]
    let da: Value | null = null;
    let db: Value | null = null;
    if (c.needs(0)) {
      const bv = op.Reshape(c.x(1), bShape);
      const scaled = c.needs(1) || bShape[1]! <= K ? undefined : rowScaled(dy);
      // dy = z ⊙ s with s [.., M, 1] (a per-row scale, e.g. cross-entropy's): (z ⊙ s)·bᵀ = (z·bᵀ) ⊙ s, and
      // the [.., M, K] product is the smaller tensor to scale when N > K (the lm_head: V ≫ C). The Mul
      // that made dy is then dead and never exported (graph/to-proto.ts).
      const prod = scaled ? op.Mul(op.MatMul(scaled.z, mT(bv)), scaled.s) : op.MatMul(dy, mT(bv));
      da = op.Reshape(unbroadcast(c.g, prod, aShape), a.shape); // […, M, K]
    }
    if (c.needs(1)) {
      if (b.rank === 2 && a.rank > 2) {
        const N = bShape[1]!;
        const rows = op.Reshape(c.x(0), [-1, K]); // [B·T, K]
        const dy2 = op.Reshape(dy, [-1, N]); // [B·T, N]
        if (isTransposeOf2d(b) && N < K) {
          // b = Wᵀ with W [N, K] (a linear layer's weight): compute dW = dyᵀ·x [N, K] and hand back its
          // transpose, which the Transpose rule turns back into dW with no node (graph/ops-shape.ts).
          // For a thin W (LoRA's A, N = R < K) this orientation is the faster GEMM (docs/performance.md).
          db = op.Transpose(op.MatMul(mT(dy2), rows), [1, 0]); // [K, N]
        } else {
          db = op.MatMul(mT(rows), dy2); // [K, N]
        }
      } else {
        const av = op.Reshape(c.x(0), aShape);
        db = op.Reshape(unbroadcast(c.g, op.MatMul(mT(av), dy), bShape), b.shape); // […, K, N]
      }
    }
    return [da, db];
  },
} satisfies Partial<Record<OpName, RuleEntry>>;
