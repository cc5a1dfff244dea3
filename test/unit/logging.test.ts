import { describe, expect, it } from 'vitest';
import { BufferedLog, type FlushableDestination, type StartTimer } from '../../src/core/logging.js';

/** A destination that buffers like SonicBoom: lines reach `written` only on a flush. */
class FakeBufferedDestination implements FlushableDestination {
  readonly written: string[] = [];
  private pending: string[] = [];
  flushes = 0;
  syncFlushes = 0;
  write(line: string): void {
    this.pending.push(line);
  }
  flush(): void {
    this.flushes++;
    this.written.push(...this.pending);
    this.pending = [];
  }
  flushSync(): void {
    this.syncFlushes++;
    this.written.push(...this.pending);
    this.pending = [];
  }
}

/** A timer the test fires by hand. */
function manualTimer(): { start: StartTimer; fire: () => void; everyMs: () => number | undefined; stopped: () => boolean } {
  let tick: (() => void) | undefined;
  let interval: number | undefined;
  let stopped = false;
  return {
    start: (fn, everyMs) => {
      tick = fn;
      interval = everyMs;
      return () => {
        stopped = true;
      };
    },
    fire: () => tick?.(),
    everyMs: () => interval,
    stopped: () => stopped,
  };
}

function messages(dest: FakeBufferedDestination): string[] {
  return dest.written.map((line) => (JSON.parse(line) as { msg: string }).msg);
}

describe('BufferedLog', () => {
  it('holds info lines until the periodic flush, which runs about once a second', () => {
    const dest = new FakeBufferedDestination();
    const timer = manualTimer();
    const log = new BufferedLog('info', dest, timer.start);
    log.logger.info('request one');
    log.logger.info('request two');
    expect(dest.written).toEqual([]);
    expect(timer.everyMs()).toBeLessThanOrEqual(1_000);
    timer.fire();
    expect(messages(dest)).toEqual(['request one', 'request two']);
  });

  it('does not write on a tick when nothing was logged', () => {
    const dest = new FakeBufferedDestination();
    const timer = manualTimer();
    const log = new BufferedLog('info', dest, timer.start);
    timer.fire();
    timer.fire();
    expect(dest.flushes).toBe(0);
    log.logger.info('one line');
    timer.fire();
    timer.fire();
    expect(dest.flushes).toBe(1);
  });

  it('writes warnings and errors at once, with what was buffered before them', () => {
    const dest = new FakeBufferedDestination();
    const log = new BufferedLog('info', dest, manualTimer().start);
    log.logger.info('listening');
    log.logger.warn('config refers to unset environment variables');
    expect(messages(dest)).toEqual(['listening', 'config refers to unset environment variables']);
    log.logger.error('upstream failed');
    expect(messages(dest)).toContain('upstream failed');
  });

  it('writes a fatal line synchronously, before the process can exit', () => {
    const dest = new FakeBufferedDestination();
    const log = new BufferedLog('info', dest, manualTimer().start);
    log.logger.fatal('stopped on an unexpected error');
    expect(dest.syncFlushes).toBeGreaterThanOrEqual(1);
    expect(messages(dest)).toEqual(['stopped on an unexpected error']);
  });

  it('keeps redacting secrets', () => {
    const dest = new FakeBufferedDestination();
    const log = new BufferedLog('info', dest, manualTimer().start);
    log.logger.warn({ authorization: 'Basic c2VjcmV0', password: 'hunter2' }, 'x');
    expect(dest.written.join('')).not.toMatch(/c2VjcmV0|hunter2/);
  });

  it('starts no timer when silent, and close() stops the timer and flushes', () => {
    const silentTimer = manualTimer();
    new BufferedLog('silent', new FakeBufferedDestination(), silentTimer.start);
    expect(silentTimer.everyMs()).toBeUndefined();
    const dest = new FakeBufferedDestination();
    const timer = manualTimer();
    const log = new BufferedLog('info', dest, timer.start);
    log.logger.info('last words');
    log.close();
    expect(timer.stopped()).toBe(true);
    expect(messages(dest)).toEqual(['last words']);
  });
});
