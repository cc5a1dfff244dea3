/** The first wait after a worker that kept running died again quickly, doubled on each further quick death. */
export const FIRST_BACKOFF_MS = 1_000;
/** The longest wait before a worker that keeps dying is started again. */
export const MAX_BACKOFF_MS = 60_000;
/** A worker that ran this long before it died was not crash-looping: it is replaced at once. */
export const STABLE_AFTER_MS = 30_000;

/**
 * When to start the replacement of a dead worker, per worker index: at once after a death that follows a
 * stable run, then after FIRST_BACKOFF_MS, doubling up to MAX_BACKOFF_MS while it keeps dying within
 * STABLE_AFTER_MS of its start.
 */
export class RestartBackoff {
  private readonly quickDeaths = new Map<number, number>();

  /** The wait before the worker at `index`, which ran for `ranMs`, is started again. */
  delayAfterDeath(index: number, ranMs: number): number {
    const quick = ranMs < STABLE_AFTER_MS ? (this.quickDeaths.get(index) ?? 0) + 1 : 0;
    this.quickDeaths.set(index, quick);
    if (quick <= 1) return 0;
    return Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (quick - 2));
  }
}
