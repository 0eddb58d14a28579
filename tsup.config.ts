// Build: ESM + CJS + .d.ts for the library, and the `ts-finetune` command as an ESM entry with a shebang.
// The two configs build concurrently, so neither cleans dist/: the build script removes it first.
import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: { index: 'src/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    shims: true,
    target: 'node20',
    external: ['onnxruntime-node'],
  },
  {
    // worker: the session worker thread of src/runtime (dist/worker.js, found next to the bundles).
    entry: { cli: 'src/cli/main.ts', worker: 'src/runtime/worker-entry.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    external: ['onnxruntime-node'],
    banner: { js: '#!/usr/bin/env node' },
  },
]);
