import type { Clock } from '../core/deps.js';
import type { UpstreamFailureReason, UpstreamOutcomes } from '../upstream/upstream-outcomes.js';

/** One registry as /readyz shows it: how its last request ended, and since when it has been failing. */
export type UpstreamState =
  | { state: 'ok'; since: string }
  | { state: 'failing'; reason: UpstreamFailureReason; since: string; failures: number };

/** After a registry fails to answer, stale answers are served without asking it again for this long. */
export const DOWN_WINDOW_MS = 30_000;

/**
 * Remembers which registries recently failed to answer (unreachable, timed out, 5xx, 429), so a
 * pull with stale tags does not wait for a time-out on every request; and, as the UpstreamOutcomes
 * of every upstream request, each registry's last outcome for /readyz.
 */
export class UpstreamHealth implements UpstreamOutcomes {
  private readonly downUntil = new Map<string, number>();
  /** Registry key → its state (only registries asked since start; one entry per configured registry at most). */
  private readonly states = new Map<string, UpstreamState>();

  constructor(private readonly clock: Clock) {}

  answered(registry: string): void {
    if (this.states.get(registry)?.state === 'ok') return;
    this.states.set(registry, { state: 'ok', since: new Date(this.clock.now()).toISOString() });
  }

  failed(registry: string, reason: UpstreamFailureReason): void {
    const known = this.states.get(registry);
    if (known?.state === 'failing') {
      this.states.set(registry, { ...known, reason, failures: known.failures + 1 });
      return;
    }
    this.states.set(registry, { state: 'failing', reason, since: new Date(this.clock.now()).toISOString(), failures: 1 });
  }

  /** Each registry asked since start, with how its last request ended (for /readyz). */
  report(): Record<string, UpstreamState> {
    return Object.fromEntries(this.states);
  }

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
