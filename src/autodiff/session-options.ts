// The session options a training graph needs, in src/runtime's SessionOptions terms (autodiff cannot
// import the runtime: layer order). Why each one (DESIGN.md, measured on onnxruntime-node 1.30):
// - CommonSubexpressionElimination off: it merges checkpointing's recomputed nodes back into the forward.
// - ConstantFolding off: it folds the ordering edges of schedule.ts (Shape of a statically shaped value) and
//   would expand 4-bit weights held as initializers back to fp32 at load.
// - enableMemPattern false: cut peak RSS from ~3.1 GB to ~2.1 GB on a LoRA step at the same speed.
// - the CPU arena stays on: without it a step was ~5× slower.

export const TRAINING_DISABLED_OPTIMIZERS = ['CommonSubexpressionElimination', 'ConstantFolding'] as const;

/** Spread into createSession's options for any graph made by backward(). */
export const trainingSessionOptions = {
  disableOptimizers: TRAINING_DISABLED_OPTIMIZERS,
  enableMemPattern: false,
  enableCpuMemArena: true,
} as const;
