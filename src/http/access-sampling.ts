import type { AccessLogMode } from '../config/config.js';

/** Under `log.access: sampled`, one routine hit in this many is logged (its line says `sampled: 100`). */
export const ACCESS_SAMPLE_EVERY = 100;

/**
 * Decides per request whether its access-log line is written (`log.access`). A routine hit — answered below
 * 400, completely, from the local cache or by pullgate itself (`/v2/`, health) — may be left out or sampled;
 * misses (upstream, stale, coalesced, shared store, cluster peer), refusals, errors and aborted responses are
 * always logged. One per app: the sample counter is this object's.
 */
export class AccessSampling {
  private routine = 0;

  constructor(private readonly mode: AccessLogMode) {}

  /**
   * 0: write no line; 1: write it; ACCESS_SAMPLE_EVERY: write it, as the one sampled of that many routine hits
   * (the line carries the figure, so a count of lines × it estimates the hits).
   */
  weight(status: number, source: string | undefined, finished: boolean): number {
    if (this.mode === 'all') return 1;
    if (status >= 400 || !finished || (source !== undefined && source !== 'cache')) return 1;
    if (this.mode === 'misses') return 0;
    this.routine = (this.routine + 1) % ACCESS_SAMPLE_EVERY;
    return this.routine === 1 ? ACCESS_SAMPLE_EVERY : 0;
  }
}
