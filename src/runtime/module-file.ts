// Where this code is running from, as a file path, in every form it ships in: TypeScript sources under
// tsx / vitest (src/runtime/*.ts), the ESM bundle (dist/index.js, dist/cli.js, dist/chunk-*.js) and the
// CJS bundle (dist/index.cjs). The worker entry and onnxruntime-node's files are found relative to it.
// ESM has import.meta.url; the CJS bundle has only `__filename` (esbuild leaves import.meta empty there).
// `__filename` alone is not enough: inside an eval'd worker it is the global '[worker eval]'.

import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';

export function moduleFile(): string {
  const url: unknown = import.meta.url;
  if (typeof url === 'string' && url.startsWith('file:')) return fileURLToPath(url);
  if (typeof __filename === 'string' && isAbsolute(__filename)) return __filename;
  return process.cwd();
}
