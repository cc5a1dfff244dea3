import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { RegistryWatch } from './registry-watch.js';

/**
 * Decides when pulls of a registry are rationed (`registries.<host>.rateLimit.reserve`): while the last
 * stated `ratelimit-remaining` is at or below the reserve within its window, or while a 429 holds the
 * registry (until its Retry-After or window). It reads what the RegistryWatch parsed from the answers —
 * the one implementation of the `ratelimit-*` headers — and logs once per window when it held a tag back.
 */
export class RateRation {
  /** Registry → the window (its end, epoch ms) in which "serving cached tags" was last logged. */
  private readonly logged = new Map<string, number>();

  constructor(
    private readonly watch: RegistryWatch,
    /** Registry key → reserve; registries without one (or 0) are never rationed by the count. */
    private readonly reserves: ReadonlyMap<string, number>,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** True while a 429 from the registry holds it (cached tags are served stale without asking). */
  limited(registry: string): boolean {
    const until = this.watch.limitedUntil(registry);
    return until !== undefined && this.clock.now() < until;
  }

  /** True while pulls that can wait should not spend the registry's allowance: within the reserve, or limited. */
  rationed(registry: string): boolean {
    if (this.limited(registry)) return true;
    const reserve = this.reserves.get(registry) ?? 0;
    if (reserve <= 0) return false;
    const end = this.windowEnd(registry);
    const remaining = this.watch.get(registry)?.rateLimit?.remaining;
    return end !== undefined && remaining !== undefined && remaining <= reserve;
  }

  /** A moved tag was answered with its cached digest instead of a GET: logged once per window. */
  heldBack(registry: string, repository: string, tag: string): void {
    const end = this.windowEnd(registry) ?? this.watch.limitedUntil(registry) ?? this.clock.now();
    if (this.logged.get(registry) === end) return;
    this.logged.set(registry, end);
    const remaining = this.watch.get(registry)?.rateLimit?.remaining;
    this.logger.warn(
      { registry, repository, tag, remaining, reserve: this.reserves.get(registry) ?? 0, until: new Date(end).toISOString() },
      'upstream rate limit within its reserve: tags that moved are served from the cache with their old digest until the window ends',
    );
  }

  /** The end of the window of the last stated rate limit (epoch ms); undefined once it has passed. A limit without a window holds until the next answer. */
  private windowEnd(registry: string): number | undefined {
    const limit = this.watch.get(registry)?.rateLimit;
    if (limit === undefined) return undefined;
    if (limit.windowSeconds === undefined) return limit.seenAt;
    const end = limit.seenAt + limit.windowSeconds * 1000;
    return this.clock.now() < end ? end : undefined;
  }
}
