import type { Clock } from '../core/clock.js';

/** Consecutive failures after which an endpoint is skipped. */
export const BREAKER_FAILURES = 3;
/** The first back-off; it doubles each time the trial request after a back-off fails. */
export const BREAKER_FIRST_BACKOFF_MS = 30_000;
/** The longest back-off. */
export const BREAKER_MAX_BACKOFF_MS = 10 * 60_000;

/** `up`: requests go through (closed, or a trial is allowed); `down`: skipped until `retryAt` (epoch ms). */
export type BreakerState = { state: 'up'; failures: number } | { state: 'down'; retryAt: number; backoffMs: number };

/**
 * The circuit breaker of one upstream endpoint: after BREAKER_FAILURES failures in a row the endpoint is
 * skipped for a back-off; when it ends, one trial request is let through; its success closes the breaker,
 * its failure opens it again for twice as long (up to BREAKER_MAX_BACKOFF_MS). `onChange` hears each
 * transition between up and down (for the log).
 */
export class EndpointBreaker {
  private failures = 0;
  private retryAt: number | undefined;
  private backoffMs = 0;
  private trialOut = false;

  constructor(
    private readonly clock: Clock,
    private readonly onChange: (up: boolean, state: BreakerState) => void = () => undefined,
  ) {}

  /** True when a request may be sent now; after a back-off only the first caller gets true (the trial). */
  allow(): boolean {
    if (this.retryAt === undefined) return true;
    if (this.clock.now() < this.retryAt || this.trialOut) return false;
    this.trialOut = true;
    return true;
  }

  /** The endpoint answered (anything but a 5xx or 429): the breaker closes. */
  succeeded(): void {
    const wasDown = this.retryAt !== undefined;
    this.failures = 0;
    this.retryAt = undefined;
    this.backoffMs = 0;
    this.trialOut = false;
    if (wasDown) this.onChange(true, this.state());
  }

  /** The endpoint failed (unreachable, timed out, 5xx, 429). */
  failed(): void {
    if (this.retryAt !== undefined) {
      if (!this.trialOut) return;
      // The trial failed: skipped again, for longer.
      this.trialOut = false;
      this.backoffMs = Math.min(this.backoffMs * 2, BREAKER_MAX_BACKOFF_MS);
      this.retryAt = this.clock.now() + this.backoffMs;
      this.onChange(false, this.state());
      return;
    }
    this.failures += 1;
    if (this.failures < BREAKER_FAILURES) return;
    this.backoffMs = BREAKER_FIRST_BACKOFF_MS;
    this.retryAt = this.clock.now() + this.backoffMs;
    this.onChange(false, this.state());
  }

  /** A request that ended neither way (the client went away): a trial it held may be given again. */
  released(): void {
    this.trialOut = false;
  }

  /** Up while requests may go through or the back-off has ended; down while skipped. */
  state(): BreakerState {
    if (this.retryAt === undefined || this.clock.now() >= this.retryAt) return { state: 'up', failures: this.failures };
    return { state: 'down', retryAt: this.retryAt, backoffMs: this.backoffMs };
  }
}
