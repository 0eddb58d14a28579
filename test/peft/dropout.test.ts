import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { Graph, toModelProto } from '../../src/graph/index.js';
import { encodeModel } from '../../src/onnx/encode.js';
import { dropout, dropoutMaskReference, dropoutSalt } from '../../src/peft/dropout.js';

async function runMask(seed: bigint, salt: number, N: number, K: number, p: number): Promise<Float32Array> {
  const g = new Graph('drop');
  const x = g.input('x', 'float32', [N, K]);
  const s = g.input('step_seed', 'int64', []);
  g.output(dropout(x, p, s, salt), 'y');
  const sess = await ort.InferenceSession.create(encodeModel(toModelProto(g).model));
  const out = await sess.run({
    x: new ort.Tensor('float32', new Float32Array(N * K).fill(1), [N, K]),
    step_seed: new ort.Tensor('int64', BigInt64Array.of(seed), []),
  });
  return out.y!.data as Float32Array;
}

describe('in-graph LoRA dropout', () => {
  it('equals the JS reference bit for bit, for positive, large and negative seeds', async () => {
    const salt = dropoutSalt('model.layers.0.self_attn.q_proj');
    for (const seed of [0n, 7n, 123456789012345n, -5n]) {
      const N = 6;
      const K = 37;
      const p = 0.3;
      const y = await runMask(seed, salt, N, K, p);
      const ref = dropoutMaskReference(seed, salt, N, K, p);
      const scale = Math.fround(1 / (1 - p));
      for (let i = 0; i < N * K; i++) expect(y[i]).toBe(ref[i] ? scale : 0);
    }
  });

  it('keeps 1 − p of the elements; masks of different seeds, modules, rows and columns are independent', () => {
    const N = 512;
    const K = 256;
    const mean = (m: Uint8Array): number => m.reduce((s, v) => s + v, 0) / m.length;
    for (const p of [0.05, 0.1, 0.5]) expect(Math.abs(mean(dropoutMaskReference(3n, dropoutSalt('m'), N, K, p)) - (1 - p))).toBeLessThan(0.003);
    // two independent masks with p = 0.1 agree on 0.9² + 0.1² = 0.82 of the elements
    const agree = (x: Uint8Array, y: Uint8Array): number => x.reduce((s, v, i) => s + (v === y[i] ? 1 : 0), 0) / x.length;
    const q = 'model.layers.0.self_attn.q_proj';
    const a = dropoutMaskReference(1n, dropoutSalt(q), N, K, 0.1);
    const others = [
      dropoutMaskReference(2n, dropoutSalt(q), N, K, 0.1), // next step
      dropoutMaskReference(1n + 2n ** 32n, dropoutSalt(q), N, K, 0.1), // high word only
      dropoutMaskReference(1n, dropoutSalt('model.layers.0.self_attn.k_proj'), N, K, 0.1), // sibling module
      dropoutMaskReference(1n, dropoutSalt('model.layers.1.self_attn.q_proj'), N, K, 0.1), // next layer
    ];
    for (const o of others) expect(Math.abs(agree(a, o) - 0.82)).toBeLessThan(0.005);
    let sameCol = 0;
    let sameRow = 0;
    let quad = 0; // 2×2 blocks: with independent elements, P(xor of the four = 0) = ½ + ½(1 − 2p)⁴
    for (let i = 0; i + 1 < N; i++) {
      for (let j = 0; j + 1 < K; j++) {
        const v = a[i * K + j]!;
        sameCol += v === a[i * K + j + 1] ? 1 : 0;
        sameRow += v === a[(i + 1) * K + j] ? 1 : 0;
        quad += (v ^ a[i * K + j + 1]! ^ a[(i + 1) * K + j]! ^ a[(i + 1) * K + j + 1]!) === 0 ? 1 : 0;
      }
    }
    const cells = (N - 1) * (K - 1);
    expect(Math.abs(sameCol / cells - 0.82)).toBeLessThan(0.005);
    expect(Math.abs(sameRow / cells - 0.82)).toBeLessThan(0.005);
    expect(Math.abs(quad / cells - (0.5 + 0.5 * 0.8 ** 4))).toBeLessThan(0.005);
  });
});
