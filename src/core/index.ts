export * from './dtype.js';
export * from './errors.js';
export * from './tensor.js';
export * from './rng.js';
export * from './fs-atomic.js';
