// Temp folders for tests that clean themselves up: without this, every `npm test` left hundreds of
// /tmp/tsft-* folders behind. tempDir('tsft-x-') makes one under os.tmpdir() and the afterAll below removes
// it when the calling test file is done. The hook is registered once per test file: vitest imports this
// module afresh for each file (isolate, the default), during that file's collection.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
