// src/onnx: ONNX protobuf messages as plain objects, their hand-written encoder / decoder, external data.
export * from './proto.js';
export { encodeModel, encodeTensor, encodeFunction } from './encode.js';
export { decodeModel, decodeTensor, decodeFunction } from './decode.js';
export { externalizeInitializers, internalizeInitializers, type ExternalDataFile, type ExternalizeOptions } from './external-data.js';
export { tensorToProto, tensorFromProto } from './tensor-proto.js';
