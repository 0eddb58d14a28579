import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { isTsFinetuneError } from '../../src/core/errors.js';
import { INTERRUPT_EXIT_CODE, installInterruptHandler, type SignalSource } from '../../src/train/interrupt.js';

function fakeProcess() {
  const em = new EventEmitter();
  return { em, source: em as unknown as SignalSource };
}

describe('installInterruptHandler', () => {
  it('first Ctrl-C sets the flag and aborts; second exits with 130', () => {
    const { em, source } = fakeProcess();
    const events: string[] = [];
    const exits: number[] = [];
    const h = installInterruptHandler({
      source,
      onFirst: (s) => events.push(`first ${s}`),
      onSecond: (s) => events.push(`second ${s}`),
      exit: (c) => exits.push(c),
    });
    expect(h.requested).toBe(false);
    expect(() => h.throwIfRequested()).not.toThrow();
    em.emit('SIGINT', 'SIGINT');
    expect(h.requested).toBe(true);
    expect(h.signal).toBe('SIGINT');
    expect(h.abortSignal.aborted).toBe(true);
    expect(isTsFinetuneError(h.abortSignal.reason, 'INTERRUPTED')).toBe(true);
    expect(exits).toEqual([]);
    try {
      h.throwIfRequested();
      expect.unreachable();
    } catch (e) {
      expect(isTsFinetuneError(e, 'INTERRUPTED')).toBe(true);
    }
    em.emit('SIGINT', 'SIGINT');
    expect(exits).toEqual([INTERRUPT_EXIT_CODE]);
    expect(INTERRUPT_EXIT_CODE).toBe(130);
    expect(events).toEqual(['first SIGINT', 'second SIGINT']);
    h.dispose();
  });

  it('removes its listeners on dispose and listens to the signals asked for', () => {
    const { em, source } = fakeProcess();
    const h = installInterruptHandler({ source, signals: ['SIGINT', 'SIGTERM'], exit: () => undefined });
    expect(em.listenerCount('SIGINT')).toBe(1);
    expect(em.listenerCount('SIGTERM')).toBe(1);
    em.emit('SIGTERM', 'SIGTERM');
    expect(h.signal).toBe('SIGTERM');
    h.dispose();
    h.dispose();
    expect(em.listenerCount('SIGINT')).toBe(0);
    expect(em.listenerCount('SIGTERM')).toBe(0);
  });

  it('installs on the real process without touching other listeners', () => {
    const before = process.listenerCount('SIGINT');
    const h = installInterruptHandler({ exit: () => undefined });
    expect(process.listenerCount('SIGINT')).toBe(before + 1);
    h.dispose();
    expect(process.listenerCount('SIGINT')).toBe(before);
  });
});
