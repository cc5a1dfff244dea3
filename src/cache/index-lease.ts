import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock } from '../core/deps.js';
import type { CacheIndex } from '../storage/cache-index.js';

/**
 * A lease row in the shared index that one process at a time holds (the eviction pass of one of the
 * workers over one storage): taken with one atomic UPDATE, renewed while held, released at the end; a
 * holder that dies leaves a lease that expires `ttlMs` after its last renewal, by the injected clock.
 */
export class IndexLease {
  /** Who holds it: this host, this process and this instance (two caches in one process are two holders). */
  readonly holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  /** When this holder last took or renewed it. */
  private renewedAt = 0;

  constructor(
    private readonly name: string,
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {}

  /** Takes the lease when it is free, expired or already this holder's; false while another holds it. */
  take(index: CacheIndex): boolean {
    const now = this.clock.now();
    if (!index.takeLease(this.name, this.holder, now, now + this.ttlMs)) return false;
    this.renewedAt = now;
    return true;
  }

  /**
   * Keeps a held lease: renews it once a third of its time has passed (one write per several seconds of a
   * long pass, not per batch); false when it was lost (expired and taken by another holder).
   */
  keep(index: CacheIndex): boolean {
    const now = this.clock.now();
    if (now - this.renewedAt < this.ttlMs / 3) return true;
    if (!index.renewLease(this.name, this.holder, now + this.ttlMs)) return false;
    this.renewedAt = now;
    return true;
  }

  /** Gives the lease up (a no-op when another holder has it by now). */
  release(index: CacheIndex): void {
    index.releaseLease(this.name, this.holder);
  }
}
