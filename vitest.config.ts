import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Some tests open onnxruntime-node sessions directly (independent references), before ts-finetune's own
    // opt-out runs (src/runtime/telemetry.ts): keep onnxruntime's telemetry off in every test process too.
    // test/runtime/telemetry.test.ts removes the variable for the child process it checks.
    env: { ORT_DISABLE_TELEMETRY: '1' },
    // Two cores: more workers only fight over them.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
