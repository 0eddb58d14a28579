// y = x · float32(W)ᵀ for a frozen 16-bit weight W [N, K] (float16 / bfloat16: a 4-bit model's lm_head, or a
// tied embedding used as the head; transformers stores them in 16 bits, src/models/float-weights.ts), as
// ONNX model-local functions (domain 'ts_finetune') with their own gradient:
//   forward   y[…, N]  = x[…, K] · Cast(W)ᵀ       in row chunks of W when that is cheaper (below)
//   backward  dx[…, K] = Σ_c dy[…, c] · Cast(W[c])  chunk by chunk, each chunk cast again
// The compute is float32 (DESIGN.md: no 16-bit CPU kernels); W stays 16-bit in memory. Two things keep the
// float32 copy of W from becoming resident:
// - it is never an activation: autodiff's MatMul rule would keep the forward's Cast(W) alive until the
//   backward (one float32 copy of the whole weight); this rule casts again instead;
// - its casts are anchored on the data (x in the forward, dy in the backward) through a zero-copy Reshape
//   alias, so ORT cannot run a cast of an initializer early and hold its result (same trick as
//   src/autodiff/schedule.ts `after`, whose float form would copy a 16-bit weight).
// Chunking: a whole-W cast is a float32 buffer of N·K; row chunks cost one chunk, but their outputs are
// concatenated (an extra buffer of the output's size). So the forward chunks when the output is smaller
// than W (tokens < K: generation, short forwards), and the backward always does (its partial sums are
// [tokens, K]). Not here: 4-bit weights (nf4-dequant.ts), deciding what is stored 16-bit (src/models).

import { TsFinetuneError } from '../src/core/index.js';
import { defineFunction, KERNEL_DOMAIN, op, type DefinedFunction, type Graph, type Value } from '../src/graph/index.js';
import { registerFunctionGradient } from '../src/autodiff/index.js';
import { aliasAfter, sumInOrder } from './ordering.js';

export type HalfDType = 'float16' | 'bfloat16';

/** Largest float32 chunk of W cast at once (4 MiB: 1024 rows of a 1024-wide head; smaller chunks measured no slower). */
export const DEFAULT_CHUNK_BYTES = 4 * 2 ** 20;

export interface HalfLinearOptions {
  /** Float32 bytes of W cast at once (default DEFAULT_CHUNK_BYTES); tests make it small to force chunks. */
  chunkBytes?: number;
}

/** Row ranges [start, end) of W, each at most `chunkBytes` as float32. */
function rowChunks(N: number, K: number, chunkBytes: number): [number, number][] {
  const rows = Math.max(1, Math.floor(chunkBytes / (4 * K)));
  const out: [number, number][] = [];
  for (let s = 0; s < N; s += rows) out.push([s, Math.min(N, s + rows)]);
  return out;
}

function castRows(w: Value, [s, e]: [number, number], N: number): Value {
  const rows = s === 0 && e === N ? w : op.Slice(w, [s], [e], [0]); // [e - s, K] 16-bit
  return op.Cast(rows, 'float32');
}

const fns = new Map<string, DefinedFunction>();

function shapeKey(xShape: readonly number[], N: number, K: number, dtype: HalfDType, chunkBytes: number): string {
  return `${dtype}_${xShape.join('x')}_${N}x${K}_c${chunkBytes}`;
}

/** The backward function (dy [..., N], W [N, K]) → dx [..., K]. */
function backwardFunction(yShape: readonly number[], N: number, K: number, dtype: HalfDType, chunkBytes: number): DefinedFunction {
  const name = `HalfLinearDx_${shapeKey(yShape, N, K, dtype, chunkBytes)}`;
  let f = fns.get(name);
  if (f) return f;
  const last = yShape.length - 1;
  f = defineFunction(
    {
      name,
      inputs: [
        { name: 'dy', dtype: 'float32', shape: [...yShape] },
        { name: 'w', dtype, shape: [N, K] },
      ],
      docString: `dx = dy · float32(W) for a ${dtype} W [${N}, ${K}], cast chunk by chunk (kernels/half-linear.ts)`,
    },
    (g, [dy, w]) => {
      // Chunk k's cast waits for the sum of chunks < k (ordering.ts): one [..., K] partial alive at a time.
      const cs = rowChunks(N, K, chunkBytes);
      const dx = sumInOrder(g, w!, dy!, cs.length, (k, wa) => {
        const c = cs[k]!;
        const dyc = c[0] === 0 && c[1] === N ? dy! : op.Slice(dy!, [c[0]], [c[1]], [last]); // [..., rows]
        return op.MatMul(dyc, castRows(wa, c, N)); // [..., K]
      });
      return [dx];
    },
  );
  fns.set(name, f);
  return f;
}

/** The forward function (x [..., K], W [N, K]) → y [..., N]; registers its gradient on first use. */
function forwardFunction(xShape: readonly number[], N: number, K: number, dtype: HalfDType, chunkBytes: number): DefinedFunction {
  const name = `HalfLinear_${shapeKey(xShape, N, K, dtype, chunkBytes)}`;
  let f = fns.get(name);
  if (f) return f;
  const tokens = xShape.slice(0, -1).reduce((a, b) => a * b, 1);
  const chunks = tokens < K ? rowChunks(N, K, chunkBytes) : [[0, N] as [number, number]];
  f = defineFunction(
    {
      name,
      inputs: [
        { name: 'x', dtype: 'float32', shape: [...xShape] },
        { name: 'w', dtype, shape: [N, K] },
      ],
      docString: `y = x · float32(W)ᵀ for a frozen ${dtype} W [${N}, ${K}] in ${chunks.length} chunk(s) (kernels/half-linear.ts)`,
    },
    (g, [x, w]) => {
      const wa = aliasAfter(g, w!, x!);
      // ORT fuses MatMul(x, Transpose(·)) into FusedMatMul(transB): no transposed copy.
      const parts = chunks.map((c) => op.MatMul(x!, op.Transpose(castRows(wa, c, N), [1, 0]))); // [..., rows]
      return [parts.length === 1 ? parts[0]! : op.Concat(parts, xShape.length - 1)];
    },
  );
  fns.set(name, f);
  const yShape = [...xShape.slice(0, -1), N];
  registerFunctionGradient(KERNEL_DOMAIN, name, (c) => {
    if (!c.needs(0)) return [null, null];
    return [backwardFunction(yShape, N, K, dtype, chunkBytes).call(c.g, [c.gy, c.x(1)])[0]!, null];
  });
  return f;
}

/**
 * y = x · float32(w)ᵀ with w a frozen 16-bit weight [N, K] (an initializer): w gets no gradient.
 * @example
 * const logits = halfLinear(g, hidden, g.initializers.get('lm_head.weight')!.value); // [B, T, V]
 */
export function halfLinear(g: Graph, x: Value, w: Value, opts: HalfLinearOptions = {}): Value {
  if (w.dtype !== 'float16' && w.dtype !== 'bfloat16') throw new TsFinetuneError('GRAPH_ERROR', `halfLinear: weight ${w.name} is ${w.dtype}, not float16 or bfloat16`);
  if (x.dtype !== 'float32') throw new TsFinetuneError('GRAPH_ERROR', `halfLinear: input ${x.name} is ${x.dtype}, not float32`);
  const [N, K] = w.shape as [number, number];
  if (w.rank !== 2 || x.shape[x.rank - 1] !== K) {
    throw new TsFinetuneError('SHAPE_MISMATCH', `halfLinear: x [${x.shape.join(', ')}] · W[${w.shape.join(', ')}]ᵀ: the last dims differ`);
  }
  return forwardFunction(x.shape, N, K, w.dtype, opts.chunkBytes ?? DEFAULT_CHUNK_BYTES).call(g, [x, w])[0]!;
}
