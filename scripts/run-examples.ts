// `npm run examples`: runs every examples/NN-*.ts in order, each in its own process, offline, on the
// models and data the repository ships. Fails on the first example that fails.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';

const dir = path.resolve(import.meta.dirname, '..', 'examples');
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => /^\d\d-.*\.ts$/.test(f))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
for (const f of files) {
  const started = Date.now();
  process.stdout.write(`\n=== examples/${f}\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(dir, f)], { stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`examples/${f} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(1);
  }
  process.stdout.write(`=== examples/${f} ok (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
}
