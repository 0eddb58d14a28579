// Child process of telemetry.test.ts (not a test file): opens sessions the ways ts-finetune does (the
// session worker, the calling thread, the probe's child process), runs one, and prints its pid and
// ORT_DISABLE_TELEMETRY as JSON.
import { Tensor } from '../../src/core/tensor.js';
import { createSession, probeExecutionProviders } from '../../src/runtime/index.js';
import { tinyBytes } from './graphs.js';

const x = Tensor.fromNumbers([1, 0, 0, 1], [2, 2]);
for (const worker of [true, false]) {
  const s = await createSession(tinyBytes(), { worker, reuse: false });
  await s.run({ x });
  await s.release();
}
const [probe] = await probeExecutionProviders({ devices: ['cpu'] });
process.stdout.write(`${JSON.stringify({ pid: process.pid, env: process.env.ORT_DISABLE_TELEMETRY ?? null, cpu: probe?.available })}\n`);
