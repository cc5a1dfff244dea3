import type { Clock } from '../core/deps.js';
import type { IndexHandle } from './index-handle.js';
import type { StorageGuard } from './storage-guard.js';

/** How often buffered access times are written to SQLite. */
const TOUCH_FLUSH_MS = 5_000;

/**
 * Records the access times of hits for LRU eviction: buffered in the index, written every TOUCH_FLUSH_MS,
 * and once TOUCH_BATCH wait, right after this turn of the event loop (which keeps each write transaction short).
 */
export class AccessTimes {
  private readonly flushTimer: NodeJS.Timeout;
  /** A flush of a full batch of access times is queued. */
  private flushQueued = false;

  constructor(
    private readonly handle: IndexHandle,
    private readonly guard: StorageGuard,
    private readonly clock: Clock,
  ) {
    this.flushTimer = setInterval(() => this.guard.recordWrite('index', () => this.handle.index.flushTouches()), TOUCH_FLUSH_MS);
    this.flushTimer.unref();
  }

  /** Notes a hit on `digest` now. */
  recordAccess(digest: string): void {
    if (!this.handle.index.touch(digest, this.clock.now()) || this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      if (this.handle.isOpen) this.guard.recordWrite('index', () => this.handle.index.flushTouches());
    });
  }

  /** Stops the timer and writes what is buffered. */
  flushAndStop(): void {
    clearInterval(this.flushTimer);
    this.guard.recordWrite('index', () => this.handle.index.flushTouches());
  }
}
