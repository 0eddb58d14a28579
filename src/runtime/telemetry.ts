// onnxruntime's telemetry, off unless the user asks for it.
// Since 1.29 the Linux and macOS builds of onnxruntime (onnxruntime-node 1.30 included) ship Microsoft's 1DS
// telemetry client. On the first session of a process it writes a persistent device id and an event cache
// under ~/.cache/Microsoft/DeveloperTools/.onnxruntime, leaves an empty /tmp/mat-debug-<pid>.log behind, and
// uploads session and model events over HTTPS. Our users call ts-finetune, not onnxruntime: a training
// script should not report to a third party, nor litter /tmp with one file per process, because of a
// library it did not choose. onnxruntime's own opt-out is the environment variable ORT_DISABLE_TELEMETRY,
// read once when its environment starts (the first session), so it is set here, before any session opens.
// A value the user set (say ORT_DISABLE_TELEMETRY=0 to keep onnxruntime's default) is left as it is.
// Only the main thread sets it for the whole process: a worker_thread's process.env is its own copy, which
// native code does not see (processes started from that worker still inherit it), so a user who opens
// sessions from their own worker sets the variable when starting the process.

export const ORT_TELEMETRY_ENV = 'ORT_DISABLE_TELEMETRY';

/**
 * Turn onnxruntime's telemetry off for this process (and the processes it starts) unless the user chose:
 * call before the first ORT session opens. Returns the value in force.
 */
export function optOutOfOrtTelemetry(env: NodeJS.ProcessEnv = process.env): string {
  const chosen = env[ORT_TELEMETRY_ENV];
  if (chosen !== undefined) return chosen;
  env[ORT_TELEMETRY_ENV] = '1';
  return '1';
}
