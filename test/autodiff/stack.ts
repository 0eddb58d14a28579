// A transformer-shaped stack for the schedule tests and bench/checkpoint-memory.ts: L pre-norm blocks of
// causal multi-head attention + SiLU MLP with residuals, each block a marked segment, loss = mean(h²).
//   n = rmsnorm(h);  q,k,v = n·Wq, n·Wk, n·Wv   [B, T, C] → [B, H, T, D]
//   h += softmax(q·kᵀ/√D + causal)·v ·Wo           scores [B, H, T, T]: the activation checkpointing frees
//   n = rmsnorm(h);  h += silu(n·W1)·W2             [B, T, F]
// Trainable: every weight ('full'), or LoRA factors A [C, R], B [R, C] on q, v, o and W2 over frozen weights
// ('lora'); the norm scales always.
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import { Graph, op, type Value } from '../../src/graph/index.js';
import { backward, type CheckpointPlan } from '../../src/autodiff/index.js';

export interface StackOptions {
  layers: number;
  B: number;
  T: number;
  C: number;
  H: number;
  F: number;
  /** 0: train every weight; R > 0: LoRA rank R on q, v, o, W2, base weights frozen. */
  lora: number;
  /**
   * 'plain': ORT's own order; 'chain': weight-gradient chaining only; 'recompute': recompute without
   * chaining; 'checkpoint': chaining + recompute (the default plan).
   */
  schedule: 'plain' | 'chain' | 'recompute' | 'checkpoint';
  seed?: number;
}

export interface Stack {
  g: Graph;
  feeds: Record<string, Tensor>;
  gradNames: string[];
}

export function buildStack(o: StackOptions): Stack {
  const { B, T, C, H, F } = o;
  const D = C / H;
  const rng = new Rng(o.seed ?? 5);
  const g = new Graph('stack');
  const feeds: Record<string, Tensor> = {};
  const trainable: Value[] = [];
  const param = (name: string, shape: number[], scale: number, train: boolean): Value => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = rng.uniform(-scale, scale);
    feeds[name] = new Tensor('float32', shape, data);
    const v = g.input(name, 'float32', shape);
    if (train) trainable.push(v);
    return v;
  };
  const causal = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) causal[i * T + j] = -1e9;
  const mask = g.constant(new Tensor('float32', [T, T], causal)); // [T, T]
  const full = o.lora === 0;
  const linear = (x: Value, path: string, cin: number, cout: number, adapt: boolean): Value => {
    const w = param(`${path}.weight`, [cin, cout], 1 / Math.sqrt(cin), full);
    let y = op.MatMul(x, w); // [B, T, cout]
    if (!full && adapt) {
      const a = param(`${path}.lora_A`, [cin, o.lora], 1 / Math.sqrt(cin), true);
      const b = param(`${path}.lora_B`, [o.lora, cout], 0.1, true);
      y = op.Add(y, op.MatMul(op.MatMul(x, a), b));
    }
    return y;
  };
  const norm = (x: Value, path: string): Value => {
    const s = param(`${path}.weight`, [C], 0, true);
    (feeds[`${path}.weight`]!.data as Float32Array).fill(1);
    return op.SimplifiedLayerNormalization(x, s, 1e-5)[0];
  };
  const heads = (x: Value): Value => op.Transpose(op.Reshape(x, [B, T, H, D]), [0, 2, 1, 3]); // [B, H, T, D]

  let h = param('embeds', [B, T, C], 1, false);
  for (let l = 0; l < o.layers; l++) {
    const p = `layers.${l}`;
    h = g.markSegment(p, () =>
      g.scope(p, () => {
        const n1 = norm(h, `${p}.input_layernorm`);
        const q = heads(linear(n1, `${p}.q_proj`, C, C, true));
        const k = heads(linear(n1, `${p}.k_proj`, C, C, false));
        const v = heads(linear(n1, `${p}.v_proj`, C, C, true));
        const scores = op.Add(op.Mul(op.MatMul(q, op.Transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(D)), mask); // [B, H, T, T]
        const ctx = op.MatMul(op.Softmax(scores, -1), v); // [B, H, T, D]
        const merged = op.Reshape(op.Transpose(ctx, [0, 2, 1, 3]), [B, T, C]);
        const h1 = op.Add(h, linear(merged, `${p}.o_proj`, C, C, true));
        const u = linear(norm(h1, `${p}.post_attention_layernorm`), `${p}.mlp.up_proj`, C, F, false); // [B, T, F]
        return op.Add(h1, linear(op.Mul(u, op.Sigmoid(u)), `${p}.mlp.down_proj`, F, C, true));
      }),
    );
  }
  const loss = op.ReduceMean(op.Mul(h, h), undefined, false);
  g.output(loss, 'loss');
  const plans: Record<StackOptions['schedule'], CheckpointPlan | undefined> = {
    plain: undefined,
    chain: { recompute: 'none' },
    recompute: { recompute: 'all', chainParameterGradients: false },
    checkpoint: { recompute: 'all' },
  };
  const plan = plans[o.schedule];
  const grads = backward(g, loss, trainable, plan ? { checkpoint: plan } : {});
  const gradNames = trainable.map((w) => g.output(grads.get(w)!, `grad.${w.name}`).name);
  return { g, feeds, gradNames };
}
