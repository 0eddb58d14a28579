export * from './context.js';
export * from './layers.js';
export * from './rope.js';
export * from './attention.js';
export * from './loss.js';
export * from './formulation.js';
