// Ctrl-C during training: the first SIGINT only raises a flag (and aborts `signal`) that the loop checks
// after each optimizer step, so it can save a checkpoint and exit cleanly; a second one exits at once
// (code 130, as a shell reports SIGINT). The handler is removable, so a library call leaves the process's
// signal handling as it found it. HF's Trainer has no equivalent (Python raises KeyboardInterrupt mid-step).
// Not here: what the loop does on interrupt (save, then throw TsFinetuneError('INTERRUPTED')).

import { TsFinetuneError } from '../core/errors.js';

/** The parts of `process` used; tests pass an EventEmitter. */
export interface SignalSource {
  on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface InterruptOptions {
  /** Signals that count as an interrupt. Default ['SIGINT']; add 'SIGTERM' for schedulers that send it. */
  signals?: readonly NodeJS.Signals[];
  /** Called on the first signal, e.g. to print "saving a checkpoint; Ctrl-C again to quit now". */
  onFirst?: (signal: NodeJS.Signals) => void;
  /** Called on the second signal before exiting. */
  onSecond?: (signal: NodeJS.Signals) => void;
  /** Default: process.exit. */
  exit?: (code: number) => void;
  /** Default: process. */
  source?: SignalSource;
}

export interface InterruptHandle {
  /** True once a signal arrived: finish the step, save, stop. */
  readonly requested: boolean;
  /** The signal that arrived first, if any. */
  readonly signal: NodeJS.Signals | undefined;
  /** Aborted on the first signal, for waits that should end early. */
  readonly abortSignal: AbortSignal;
  /** Throws TsFinetuneError('INTERRUPTED') if an interrupt was requested. */
  throwIfRequested(): void;
  /** Remove the handlers (idempotent). */
  dispose(): void;
}

/** Exit status for a second Ctrl-C: 128 + SIGINT's number. */
export const INTERRUPT_EXIT_CODE = 130;

/**
 * Install the two-stage interrupt handler.
 *
 * @example
 * const interrupt = installInterruptHandler({
 *   onFirst: () => console.error('\nInterrupted: saving a checkpoint after this step (Ctrl-C again to quit now)'),
 * });
 * try {
 *   for (let step = 1; step <= plan.maxSteps; step++) {
 *     await trainStep();
 *     if (interrupt.requested) { await saveCheckpoint(step); interrupt.throwIfRequested(); }
 *   }
 * } finally {
 *   interrupt.dispose();
 * }
 */
export function installInterruptHandler(options: InterruptOptions = {}): InterruptHandle {
  const source: SignalSource = options.source ?? process;
  const signals = options.signals ?? ['SIGINT'];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const controller = new AbortController();
  let first: NodeJS.Signals | undefined;
  let disposed = false;

  const listener = (sig: NodeJS.Signals): void => {
    if (first === undefined) {
      first = sig;
      controller.abort(new TsFinetuneError('INTERRUPTED', `Training interrupted by ${sig}.`, { signal: sig }));
      options.onFirst?.(sig);
      return;
    }
    options.onSecond?.(sig);
    exit(INTERRUPT_EXIT_CODE);
  };
  for (const s of signals) source.on(s, listener);

  return {
    get requested() {
      return first !== undefined;
    },
    get signal() {
      return first;
    },
    abortSignal: controller.signal,
    throwIfRequested() {
      if (first !== undefined) {
        throw new TsFinetuneError('INTERRUPTED', `Training interrupted by ${first}.`, { signal: first });
      }
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const s of signals) source.off(s, listener);
    },
  };
}
