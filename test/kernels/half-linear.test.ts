// kernels/half-linear through the real runtime (CPU EP): y = x · float32(W)ᵀ for a 16-bit W and its gradient
// dx = dy · float32(W), against float64 sums over the 16-bit values read back on the host, for float16 and
// bfloat16, whole and in row chunks (forward chunks only when tokens < K), and W gets no gradient.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/index.js';
import { Graph, op } from '../../src/graph/index.js';
import { backward } from '../../src/autodiff/index.js';
import { halfLinear } from '../../kernels/half-linear.js';
import { runOnce } from '../autodiff/helpers.js';

const run = runOnce;

function random(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

function maxRelErr(got: Float32Array, want: Float64Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i]! - want[i]!));
    den = Math.max(den, Math.abs(want[i]!));
  }
  return num / den;
}

describe('kernels/half-linear', () => {
  const N = 10;
  const K = 8;
  for (const dtype of ['float16', 'bfloat16'] as const) {
    for (const [rows, chunkBytes, what] of [
      [3, 1 << 20, 'one cast'],
      [3, 3 * 4 * K, 'forward and backward in 4 row chunks (3 tokens < K)'],
      [12, 3 * 4 * K, 'forward whole (12 tokens ≥ K), backward in 4 row chunks'],
    ] as const) {
      it(`${dtype}, ${what}: y = x·Wᵀ and dx = dy·W`, async () => {
        const rng = new Rng(11);
        const w16 = new Tensor('float32', [N, K], random(rng, N * K)).to(dtype);
        const w = w16.toFloat32(); // the values the kernel must use
        const x = random(rng, 2 * rows * K);
        const r = random(rng, 2 * rows * N);
        const g = new Graph('half');
        const xv = g.input('x', 'float32', [2, rows, K]);
        const wv = g.initializer('w', w16);
        const y = halfLinear(g, xv, wv, { chunkBytes });
        const loss = op.ReduceSum(op.Mul(y, g.constant(new Tensor('float32', [2, rows, N], r))), undefined, false);
        const dx = backward(g, loss, [xv]).get(xv)!;
        g.output(y, 'y');
        g.output(dx, 'dx');
        const out = await run(g, { x: new Tensor('float32', [2, rows, K], x) });
        const wantY = new Float64Array(2 * rows * N);
        const wantDx = new Float64Array(2 * rows * K);
        for (let t = 0; t < 2 * rows; t++) {
          for (let n = 0; n < N; n++) {
            for (let k = 0; k < K; k++) {
              wantY[t * N + n]! += x[t * K + k]! * w[n * K + k]!;
              wantDx[t * K + k]! += r[t * N + n]! * w[n * K + k]!;
            }
          }
        }
        expect(out.y!.dims).toEqual([2, rows, N]);
        expect(maxRelErr(out.y!.data as Float32Array, wantY)).toBeLessThan(1e-6);
        expect(maxRelErr(out.dx!.data as Float32Array, wantDx)).toBeLessThan(1e-6);
      });
    }
  }

  it('refuses a float32 weight (that one is an ordinary MatMul)', () => {
    const g = new Graph('bad');
    const x = g.input('x', 'float32', [2, K]);
    expect(() => halfLinear(g, x, g.initializer('w', new Tensor('float32', [N, K], new Float32Array(N * K))))).toThrow(/not float16 or bfloat16/);
  });
});
