// ts-finetune: the public API. Everything users import comes from here (see ../shared/API.md).
export * from './core/index.js';
export * from './runtime/index.js';
export { encodeModel, decodeModel, externalizeInitializers, internalizeInitializers, type ExternalDataFile, type ModelProto } from './onnx/index.js';
export * from './io/index.js';
export * from './quant/index.js';
export * from './tokenizers/index.js';
export {
  AutoModelForCausalLM,
  CausalLM,
  SUPPORTED_MODEL_TYPES,
  StepProgram,
  ParamLayout,
  causalLmObjective,
  type FromPretrainedOptions,
  type ModelDType,
  type CausalLMConfig,
  type ForwardInputs,
  type ForwardOutput,
  type TrainableModel,
  type Objective,
  type ObjectiveContext,
  type ObjectiveResult,
} from './models/index.js';
export * from './train/index.js';
export * from './peft/index.js';
export { generate, type GenerateOptions, type GenerationModel, type SamplingOptions } from './models/index.js';
export { createOptimizer, type Optimizer, type OptimizerName, type OptimizerOptions } from './optim/index.js';
export * from './data/index.js';
export { hfHubDownload } from './data/index.js'; // the data module's wrapper (progress line) over io's alias of the same name
