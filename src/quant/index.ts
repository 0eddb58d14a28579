// src/quant: bitsandbytes-compatible NF4 / FP4 and 8-bit blockwise quantisation in TypeScript, pre-quantised
// checkpoint entries, and BitsAndBytesConfig. Graph fragments that dequantise inside ONNX live in kernels/.
export {
  NF4_CODE,
  FP4_CODE,
  codebook4bit,
  quantizeNf4Value,
  quantizeFp4Value,
  createDynamicMap,
  dynamicMap,
  type QuantType4bit,
  type DynamicMapOptions,
} from './codebooks.js';
export {
  quantizeBlockwise8bit,
  dequantizeBlockwise8bit,
  quantize8bitValueCpu,
  quantize8bitValueCuda,
  type Kernel8bit,
  type Quantize8bitOptions,
  type Quantized8bit,
} from './quantize-8bit.js';
export {
  quantize4bit,
  dequantize4bit,
  dequantizeNestedAbsmax,
  NESTED_BLOCKSIZE,
  type WeightDType,
  type Nested4bitState,
  type Quantized4bit,
  type Quantize4bitOptions,
} from './quantize-4bit.js';
export {
  parsePrequantized4bit,
  serializeQuantized4bit,
  findPrequantizedWeights,
  prequantizedKeys,
  pythonFloatRepr,
} from './prequantized.js';
export {
  BitsAndBytesConfig,
  type BitsAndBytesConfigInit,
  type BitsAndBytesConfigJSON,
  type ComputeDType,
  type QuantStorage,
} from './bnb-config.js';
