// ts-finetune: the public API. Everything users import comes from here (see ../shared/API.md).
export * from './core/index.js';
export * from './runtime/index.js';
export { encodeModel, decodeModel, externalizeInitializers, internalizeInitializers, type ExternalDataFile, type ModelProto } from './onnx/index.js';
export * from './io/index.js';
export * from './quant/index.js';
