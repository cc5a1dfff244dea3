import type { Clock } from '../core/deps.js';

/** After a registry fails to answer, stale answers are served without asking it again for this long. */
export const DOWN_WINDOW_MS = 30_000;

/**
 * Remembers which registries recently failed to answer (unreachable, timed out, 5xx, 429), so a
 * pull with stale tags does not wait for a time-out on every request.
 */
export class UpstreamHealth {
  private readonly downUntil = new Map<string, number>();

  constructor(private readonly clock: Clock) {}

  markDown(registry: string): void {
    this.downUntil.set(registry, this.clock.now() + DOWN_WINDOW_MS);
  }

  markUp(registry: string): void {
    this.downUntil.delete(registry);
  }

  isDown(registry: string): boolean {
    const until = this.downUntil.get(registry);
    if (until === undefined) return false;
    if (until > this.clock.now()) return true;
    this.downUntil.delete(registry);
    return false;
  }
}
