// Shared check of the step-graph formulation tests: two runs of one training step agree — loss within
// 1e-6 and every gradient value within 1e-6 — and the gradient is not trivially zero.
import { expect } from 'vitest';

export interface StepNumbers {
  loss: number;
  grads: Float32Array;
}

export function expectSameStep(a: StepNumbers, b: StepNumbers): void {
  let maxDiff = 0;
  let norm = 0;
  for (let i = 0; i < a.grads.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a.grads[i]! - b.grads[i]!));
    norm += a.grads[i]! ** 2;
  }
  expect(a.grads.length).toBe(b.grads.length);
  expect(Math.sqrt(norm)).toBeGreaterThan(1e-3);
  expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-6);
  expect(maxDiff).toBeLessThan(1e-6);
}
