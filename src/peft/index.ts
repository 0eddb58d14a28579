// src/peft: LoRA / rsLoRA / DoRA adapters over the models of src/models, in PEFT's semantics and file format.
// Re-exported from the package root: keep names unambiguous there.
export { LoraConfig, ALL_LINEAR, PEFT_FORMAT_VERSION, TASK_TYPES, type LoraConfigInit, type LoraBias, type InitLoraWeights, type TaskType } from './lora-config.js';
export { PeftModel, getPeftModel, type GetPeftModelOptions } from './peft-model.js';
export { findAllLinearNames, prepareModelForKbitTraining, type PrepareKbitOptions } from './prepare.js';
export { DEFAULT_TARGET_MODULES as LORA_DEFAULT_TARGET_MODULES, selectTargetModules, type ModuleKind, type NamedModule } from './target-modules.js';
export { LoraLinearAdapter, loraKeys, type LoraModuleSpec, type LoraValues } from './lora-layer.js';
export { dropoutMaskReference as loraDropoutMaskReference } from './dropout.js';
export { ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME } from './adapter-io.js';
export type { LossAndGradients, LossAndGradientsInputs } from './programs.js';
