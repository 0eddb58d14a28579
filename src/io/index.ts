// src/io: safetensors, checkpoint folders, the HF cache and the Hub. Depends on src/core only.
export { SAFETENSORS_DTYPES, DTYPE_TO_SAFETENSORS, MAX_HEADER_BYTES } from './safetensors-format.js';
export type { SafetensorsTensorInfo, SafetensorsHeader } from './safetensors-format.js';
export * from './safetensors-file.js';
export * from './safetensors-write.js';
export * from './checkpoint.js';
export * from './json-file.js';
export * from './hf-cache.js';
export * from './hub.js';
export type { ProgressFn } from './hub-download.js';
