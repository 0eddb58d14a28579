// One graph per (model, batch shape, objective): forward → objective → (backward to the flat trainable
// vector). It is the training graph without the optimizer, used by `peft.lossAndGradients`, by the
// trainers (SFT / DPO / ORPO objectives plug in here) and, with `withGrad: false`, by evaluation and the
// DPO reference pass (`adaptersEnabled: false`: the same base, no second copy, as PEFT's disable_adapter).
// Memory: the backward waits for the loss and metrics (so nothing it does not need, like the forward's
// log-probabilities, outlives the forward), and with gradient checkpointing the causal-LM loss through a
// frozen head is computed in token chunks with their dh (kernels/lm-head-loss.ts).

import type { DType } from '../core/dtype.js';
import { Graph, op, type Value } from '../graph/index.js';
import { after, backward } from '../autodiff/index.js';
import { nnFormulation, setNnFormulation, type NnFormulation } from '../nn/formulation.js';
import { causalLmLoss, tokenScores, type LmLoss, type TokenScores } from '../nn/loss.js';
import { lmHeadLoss } from '../../kernels/lm-head-loss.js';
import type { CausalLMConfig } from './config.js';
import type { DecoderInputs } from './decoder.js';
import { ParamLayout, type ParamSpec } from './param-layout.js';
import { lendWeights, type LentWeights } from './lent-weights.js';

export interface LogitsOptions {
  /** Trainable parameters by HF / PEFT name, as graph values. */
  params: ReadonlyMap<string, Value>;
  adaptersEnabled: boolean;
  training: boolean;
  maxPosition: number;
  /** Wraps each decoder block (gradient checkpointing segments). */
  block?: <T>(layer: number, build: () => T) => T;
  /** Per-step seed input for dropout masks ([] int64), present when training. */
  stepSeed?: Value;
  /**
   * Replaces the LM head: receives the final hidden states [B, T, C], a function giving the logits of any
   * [..., C] slice of them (adapters included), and the head weight when it is frozen and not adapted (else
   * undefined); what it returns is what buildLogits returns. buildStepGraph uses it for the chunked loss.
   */
  head?: (hidden: Value, logitsOf: (h: Value) => Value, frozenWeight: Value | undefined) => Value;
}

/** Anything that can build logits with some of its parameters trainable: a base model or a PEFT model. */
export interface TrainableModel {
  readonly config: CausalLMConfig;
  trainableParams(): ParamSpec[];
  /** Current values of the trainable parameters, packed in `layout` order. */
  trainableValues(layout: ParamLayout): Float32Array;
  buildLogits(g: Graph, inputs: DecoderInputs, opts: LogitsOptions): Value;
  /** Whether gradient checkpointing was enabled on the model. */
  readonly gradientCheckpointing: boolean;
}

export interface ObjectiveContext {
  g: Graph;
  logits: Value; // [B, T, V]
  targets: Value; // [B, T] int64, already shifted (−100 = ignore)
  B: number;
  T: number;
  /** log p(target), validity and argmax-correctness per position (built once). */
  scores(): TokenScores;
  /** Declare an extra graph input the objective needs (e.g. reference log-probs). */
  input(name: string, dtype: DType, shape: readonly number[]): Value;
  /**
   * The same model's logits on the same batch with adapters disabled (PEFT's disable_adapter): the DPO
   * reference pass inside the same graph, sharing every frozen weight (no second copy of the base).
   * It depends on no trainable parameter, so no gradient flows through it.
   */
  referenceLogits(): Value;
}

export interface ObjectiveResult {
  loss: Value; // scalar: what backward differentiates
  metrics: Record<string, Value>;
}

export type Objective = (ctx: ObjectiveContext) => ObjectiveResult;

/**
 * Causal-LM objective (transformers' loss): Σ −log p over label tokens × `loss_scale` (an input: 1 / label
 * tokens of the whole accumulated batch, so accumulation equals one big batch; REFERENCE.md).
 */
export const causalLmObjective: Objective = (ctx) => causalLmResult(causalLmLoss(ctx.logits, ctx.targets), ctx.input('loss_scale', 'float32', []));

function causalLmResult(l: LmLoss, scale: Value): ObjectiveResult {
  return {
    loss: op.Mul(l.lossSum, scale),
    metrics: { loss_sum: l.lossSum, num_tokens: l.count, num_correct: l.correct },
  };
}

/**
 * Query rows per causal attention block in step graphs. At T 1024 four blocks keep 5/8 of the attention
 * probabilities and skip 3/8 of its GEMMs; checkpointed QLoRA's peak RSS (bench/lora-memory.ts, 2 × 1024)
 * was lowest at 256 rows (64: +205 MB, 128: +44, 512: +68). At T 256 (bench/lora-step.ts) two blocks of
 * 128 ran at the speed of one.
 */
export const STEP_ATTENTION_BLOCK = 256;

export interface StepGraphOptions {
  B: number;
  T: number;
  objective: Objective;
  withGrad: boolean;
  adaptersEnabled?: boolean;
  training?: boolean;
  packed?: boolean;
  /** Also output the logits [B, T, V] (never during training: B×T×V copies are slow, DESIGN.md). */
  withLogits?: boolean;
  /** Override the nn blocks' formulation (default: the fastest measured; bench/lora-step.ts A/B-tests these). */
  formulation?: Partial<NnFormulation>;
  /**
   * Take the frozen 4-bit weights as inputs the host lends for each run instead of as initializers ORT
   * keeps a second copy of (src/models/lent-weights.ts). StepProgram sets it for CPU sessions.
   */
  lendWeights?: boolean;
  /** With `lendWeights`, lend float32 weights too (for a session that does not pre-pack them). */
  lendFloat32?: boolean;
  /**
   * Hide the activations' static shapes from ORT's allocation planner (src/graph/opaque-shapes.ts), so the
   * arena reuses freed buffers for any shape. StepProgram sets it for checkpointed steps on the CPU.
   */
  opaqueShapes?: boolean;
}

export interface StepGraph {
  graph: Graph;
  layout: ParamLayout;
  /** Extra inputs declared by the objective, in order. */
  extraInputs: { name: string; dtype: DType; shape: number[] }[];
  metricNames: string[];
  /** The weights the host feeds for each run (with `lendWeights`; none for a model without 4-bit weights). */
  lent?: LentWeights;
}

export function buildStepGraph(model: TrainableModel, o: StepGraphOptions): StepGraph {
  const { B, T } = o;
  const g = new Graph('step');
  // Losses and gradients only: the attention can skip the causally masked key blocks (src/nn/attention.ts).
  // With logits out it stays one block, so a left-padded row's (meaningless) logits equal transformers'.
  setNnFormulation(g, { attentionBlock: o.withLogits ? 0 : STEP_ATTENTION_BLOCK, ...o.formulation });
  const layout = new ParamLayout(model.trainableParams());
  const params = layout.inputs(g);
  const lent = o.lendWeights ? lendWeights(g, { float32: o.lendFloat32 ?? false }) : undefined;
  const inputs: DecoderInputs = {
    inputIds: g.input('input_ids', 'int64', [B, T]),
    attentionMask: g.input('attention_mask', 'int64', [B, T]),
    positionIds: g.input('position_ids', 'int64', [B, T]),
  };
  if (o.packed) inputs.documentIds = g.input('document_ids', 'int64', [B, T]);
  const targets = g.input('targets', 'int64', [B, T]);
  const training = o.training ?? o.withGrad;
  const stepSeed = training ? g.input('step_seed', 'int64', []) : undefined;
  const logitOpts: LogitsOptions = { params, adaptersEnabled: o.adaptersEnabled ?? true, training, maxPosition: T };
  if (stepSeed) logitOpts.stepSeed = stepSeed;
  // Gradient checkpointing: each decoder block is a segment that backward recomputes right before its
  // own backward, instead of keeping its activations alive (src/autodiff/checkpoint.ts).
  const checkpointing = o.withGrad && model.gradientCheckpointing;
  if (checkpointing) logitOpts.block = (layer, build) => g.markSegment(`model.layers.${layer}`, build);
  // With checkpointing (or the 'chunked' formulation), the causal-LM loss through a frozen head runs in token
  // chunks that also compute their dh (kernels/lm-head-loss.ts): no [B, T, V] buffer outlives its chunk.
  // Without checkpointing the default stays the plain head: at B 4 × T 256 the chunks of 256 tokens were
  // 7% slower and one chunk the same speed (bench/lora-step.ts head-chunked / head-1024).
  let chunked: LmLoss | undefined;
  const f = nnFormulation(g);
  if (o.withGrad && (checkpointing || f.lmHeadLoss === 'chunked') && o.objective === causalLmObjective && !o.withLogits) {
    logitOpts.head = (hidden, logitsOf, w) => {
      if (!w) return logitsOf(hidden);
      const C = hidden.shape[2]!;
      chunked = lmHeadLoss(g, op.Reshape(hidden, [B * T, C]), w, op.Reshape(targets, [B * T]), { chunkBytes: f.lmHeadChunkBytes });
      return chunked.lossSum; // stands in for the logits, which no one reads on this path
    };
  }
  const logits = model.buildLogits(g, inputs, logitOpts);
  const extraInputs: StepGraph['extraInputs'] = [];
  let scores: TokenScores | undefined;
  let refLogits: Value | undefined;
  const input = (name: string, dtype: DType, shape: readonly number[]): Value => {
    extraInputs.push({ name, dtype, shape: [...shape] });
    return g.input(name, dtype, shape);
  };
  const res = chunked ? causalLmResult(chunked, input('loss_scale', 'float32', [])) : o.objective({
    g,
    logits,
    targets,
    B,
    T,
    scores: () => (scores ??= tokenScores(logits, targets)),
    referenceLogits: () =>
      (refLogits ??= g.scope('reference', () => {
        // No gradient flows through the reference pass, so it needs no checkpoint segments (and their
        // names would collide with the policy's).
        const { block: _noCheckpoint, head: _plainHead, ...refOpts } = logitOpts;
        return model.buildLogits(g, inputs, { ...refOpts, adaptersEnabled: false, training: false });
      })),
    input,
  });
  g.output(res.loss, 'loss');
  const metricNames = Object.keys(res.metrics);
  for (const k of metricNames) g.output(res.metrics[k]!, `metric.${k}`);
  if (o.withLogits) g.output(logits, 'logits');
  if (o.withGrad && layout.size > 0) {
    const wrt = layout.specs.map((s) => params.get(s.name)!);
    // The backward starts once the loss and every metric exist. Left free, ORT ran the metrics' reads of the
    // [B, T, V] log-probabilities (GatherElements, ReduceMax) after the whole backward, keeping them alive
    // throughout it (+125 MB per 1k tokens at V=32000: bench/lora-memory.ts).
    const seed = after(g, g.scalar(1, res.loss.dtype), [res.loss, ...Object.values(res.metrics)]);
    const grads = backward(g, res.loss, wrt, checkpointing ? { checkpoint: {}, seed } : { seed });
    const byName = new Map(layout.specs.map((s, i) => [s.name, grads.get(wrt[i]!)!]));
    g.output(layout.flatten(g, byName), 'grads');
  }
  const out: StepGraph = { graph: g, layout, extraInputs, metricNames };
  if (lent && lent.size > 0) out.lent = lent;
  return out;
}
