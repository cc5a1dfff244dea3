import { describe, expect, it } from 'vitest';
import { FIRST_BACKOFF_MS, MAX_BACKOFF_MS, RestartBackoff, STABLE_AFTER_MS } from '../../src/cli/restart-backoff.js';

describe('RestartBackoff', () => {
  it('replaces a worker at once, then backs off exponentially while it keeps dying quickly, up to the cap', () => {
    const backoff = new RestartBackoff();
    const delays = Array.from({ length: 10 }, () => backoff.delayAfterDeath(0, 100));
    expect(delays.slice(0, 5)).toEqual([0, FIRST_BACKOFF_MS, 2 * FIRST_BACKOFF_MS, 4 * FIRST_BACKOFF_MS, 8 * FIRST_BACKOFF_MS]);
    expect(delays.at(-1)).toBe(MAX_BACKOFF_MS);
    expect(Math.max(...delays)).toBe(MAX_BACKOFF_MS);
  });

  it('starts over after a stable run, and counts each worker index apart', () => {
    const backoff = new RestartBackoff();
    backoff.delayAfterDeath(0, 10);
    expect(backoff.delayAfterDeath(0, 10)).toBe(FIRST_BACKOFF_MS);
    // Another index's first death is replaced at once.
    expect(backoff.delayAfterDeath(1, 10)).toBe(0);
    // Index 0 ran long enough this time: replaced at once, and its next quick death starts the back-off again.
    expect(backoff.delayAfterDeath(0, STABLE_AFTER_MS)).toBe(0);
    expect(backoff.delayAfterDeath(0, 10)).toBe(0);
    expect(backoff.delayAfterDeath(0, 10)).toBe(FIRST_BACKOFF_MS);
  });
});
