// The LoRA layer as a graph fragment: PEFT's `lora.Linear.forward` wrapped around a base linear (dense or
// 4-bit), implementing src/nn's LinearAdapter so the decoder builds unchanged.
//   LoRA:  y = base(x) + (dropout(x)·Aᵀ)·Bᵀ · s                  A [R, in], B [out, R], s = α/R (rsLoRA α/√R)
//   DoRA:  y = base(x) + (m/n − 1)·(x·Wᵀ) + (m/n)·s·(x·Aᵀ)·Bᵀ     n = ||W + s·B@A|| per output row, detached
// With dropout active, DoRA's x·Wᵀ term is recomputed from the dropped-out x, as peft does.
// Follows peft `tuners/lora/layer.py` (Linear.forward), `tuners/lora/dora.py` (DoraLinearLayer.forward),
// `tuners/lora/bnb.py` (4-bit base: the weight norm uses the dequantised weight).
// Modules that read the same input (q/k/v, gate/up) share ONE GEMM for their A factors when neither has
// dropout active: x·[A_q; A_k; A_v]ᵀ [..., 3R], split per module (shared-input.ts). Same values, fewer and
// wider thin GEMMs forward and backward (the backward's dx sums the three inside one GEMM).
// Not here: which modules get one (target-modules.ts), parameter storage and init (peft-model.ts, lora-math.ts).

import { TsFinetuneError } from '../core/errors.js';
import { op, type Value } from '../graph/index.js';
import type { BuildContext, LinearAdapter, LinearWeight } from '../nn/context.js';
import { dropoutSalt, dropoutScale, dropoutUnscaled } from './dropout.js';
import { sharedLoraDown } from './shared-input.js';
import { stopGradient } from './stop-gradient.js';

/** PEFT's save keys of a module's adapter tensors (no adapter name). */
export function loraKeys(module: string): { A: string; B: string; magnitude: string; bias: string } {
  const p = `base_model.model.${module}`;
  return { A: `${p}.lora_A.weight`, B: `${p}.lora_B.weight`, magnitude: `${p}.lora_magnitude_vector`, bias: `${p}.base_layer.bias` };
}

export interface LoraModuleSpec {
  module: string; // e.g. 'model.layers.0.self_attn.q_proj'
  inFeatures: number;
  outFeatures: number;
  r: number; // R
  alpha: number;
  scaling: number; // s
  dora: boolean;
  dropout: number;
}

export interface LoraValues {
  A: Value; // [R, in]
  B: Value; // [out, R]
  magnitude?: Value; // [out] (DoRA)
}

export interface LoraRunOptions {
  training: boolean;
  /** The step's seed input ([] int64); required when dropout is active. */
  stepSeed?: Value;
}

export class LoraLinearAdapter implements LinearAdapter {
  constructor(
    readonly spec: LoraModuleSpec,
    private readonly values: LoraValues,
    private readonly run: LoraRunOptions,
  ) {}

  /** The A factor [R, in] when this module's x·Aᵀ may be shared with its siblings (no active dropout). */
  shareableA(): Value | undefined {
    return this.run.training && this.spec.dropout > 0 ? undefined : this.values.A;
  }

  apply(ctx: BuildContext, modulePath: string, x: Value, base: Value, weight: LinearWeight): Value {
    const { spec } = this;
    const { A, B } = this.values;
    const dropActive = this.run.training && spec.dropout > 0;
    let xd = x;
    if (dropActive) {
      if (!this.run.stepSeed) {
        throw new TsFinetuneError('GRAPH_ERROR', `LoRA dropout on ${modulePath} needs the step_seed input (LogitsOptions.stepSeed) when training`);
      }
      xd = dropoutUnscaled(x, spec.dropout, this.run.stepSeed, dropoutSalt(modulePath)); // [..., in], kept values not yet × 1/(1−p)
    }
    const dropScale = dropActive ? dropoutScale(spec.dropout) : 1;
    const ax = (dropActive ? undefined : sharedLoraDown(ctx, modulePath, x)) ?? op.MatMul(xd, op.Transpose(A, [1, 0])); // [..., R]
    // Scale the thin [R, out] factor rather than the [..., out] result (or the [..., in] input, for the
    // dropout rescale): same value, far fewer multiplies.
    // (Transposed last, so ORT folds it into the GEMM as transB.)
    const lora = op.MatMul(ax, op.Transpose(op.Mul(B, spec.scaling * dropScale), [1, 0])); // [..., out]
    if (!spec.dora) return op.Add(base, lora);

    const m = this.values.magnitude;
    if (!m) throw new TsFinetuneError('GRAPH_ERROR', `DoRA module ${modulePath} has no magnitude vector`);
    const g = ctx.g;
    const W = weight.kind === 'dense' ? weight.weight : weight.dequantize(g); // [out, in]
    const merged = op.Add(W, op.Mul(op.MatMul(B, A), spec.scaling)); // [out, in]
    const norm = stopGradient(op.Sqrt(op.ReduceSumSquare(merged, [1], false))); // [out]
    const mn = op.Div(m, norm); // [out]
    let xw: Value; // x·Wᵀ without the bias, [..., out]
    if (dropActive) {
      const xdw =
        weight.kind === 'dense'
          ? op.MatMul(xd, op.Transpose(weight.weight, [1, 0]))
          : op.MatMulBnb4(xd, weight.packed, weight.absmax, {
              K: weight.inFeatures,
              N: weight.outFeatures,
              blockSize: weight.blockSize,
              quantType: weight.quantType,
            });
      xw = op.Mul(xdw, dropScale);
    } else {
      const biasName = `${modulePath}.bias`;
      xw = ctx.hasParam(biasName) ? op.Sub(base, ctx.param(biasName)) : base;
    }
    return op.Add(op.Add(base, op.Mul(op.Sub(mn, 1), xw)), op.Mul(mn, lora));
  }
}
