// src/optim: the optimizers (AdamW, 8-bit AdamW, their paged forms) over the flat parameter vector, learning-
// rate schedules and gradient clipping. The update math lives in kernels/ as ONNX functions.
export type { Optimizer, OptimizerName, OptimizerOptions } from './optimizer.js';
export { createOptimizer, OPTIMIZER_NAMES } from './create.js';
export { AdamW, type AdamwName } from './adamw.js';
export { Adamw8bit, MIN_8BIT_SIZE, type Adamw8bitName } from './adamw-8bit.js';
export { DEFAULT_PAGE_SIZE, PAGE_ALIGN } from './paged.js';
export {
  SCHEDULER_TYPES,
  SCHEDULER_KWARGS,
  getScheduler,
  LrScheduler,
  type SchedulerType,
  type SchedulerOptions,
  type LrLambda,
  type LrSchedulerState,
} from './schedules.js';
export { clipGradNorm, clipCoefficient, globalL2Norm, CLIP_EPS, type ClipResult } from './grad-clip.js';
