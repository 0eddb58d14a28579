// Reverse-mode autodiff for graphs built with src/graph: backward(), the per-family rule tables, the
// registry for custom ops and model-local functions, the segment schedule (checkpointing), and a
// finite-difference gradient checker. See docs/autodiff.md.
export { backward, type BackwardOptions } from './backward.js';
export type { CheckpointPlan } from './checkpoint.js';
export { gradCheck, type GradCheckCase, type GradCheckInput, type GradCheckOptions, type GradCheckResult, type GraphRunner } from './grad-check.js';
export { registerFunctionGradient, functionGradient } from './function-gradients.js';
export { matMulBnb4Gradient, type Bnb4Dequant, type Bnb4Meta } from './rules-nn.js';
export { RULES, ruleFor, type RuleTable } from './rules.js';
export { after } from './schedule.js';
export { trainingSessionOptions, TRAINING_DISABLED_OPTIMIZERS } from './session-options.js';
export { unbroadcast, zeros } from './unbroadcast.js';
export type { GradContext, GradRule, RuleEntry, ScatterGrad, OpName } from './types.js';
