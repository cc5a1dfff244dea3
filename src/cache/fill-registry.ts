import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Clock } from '../core/deps.js';
import { DigestMismatch } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import type { LocalContentStore } from '../storage/content-store.js';
import type { BackgroundWork } from './background-work.js';
import { BlobFill, RingPool } from './blob-fill.js';
import type { Evictor } from './evictor.js';
import type { IndexHandle } from './index-handle.js';
import type { SharedCopies } from './shared-copies.js';
import { isFull, isMissing, isStorageError } from './storage-error.js';
import type { StorageGuard } from './storage-guard.js';
import type { StorageHealth } from './storage-health.js';

/**
 * Where a fill's bytes come from: upstream (stored locally, then uploaded to the shared store), the
 * shared store, or the digest's owner in a cluster (which uploads its own fill): both stored locally only.
 */
export type FillOrigin = 'upstream' | 'shared' | 'peer';

export interface FillRegistryOptions {
  store: LocalContentStore;
  handle: IndexHandle;
  guard: StorageGuard;
  health: StorageHealth;
  evictor: Evictor;
  copies: SharedCopies;
  background: BackgroundWork;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** `storage.maxSize`, read at each use (the cache's options object). */
  budget: { readonly maxSizeBytes: number };
}

/**
 * The fills in flight, one per digest (single flight: later readers join it): starts them, and when one
 * is verified stores it (renamed into place, indexed, linked, uploaded to the shared store) or discards it.
 */
export class FillRegistry {
  private readonly fills = new Map<string, BlobFill>();
  /** Spare fill rings of this cache alone. */
  private readonly rings = new RingPool();

  constructor(private readonly options: FillRegistryOptions) {}

  /** The fill in flight for a digest that a new reader can still join from the start, if any. */
  inflight(digest: string): BlobFill | undefined {
    const fill = this.fills.get(digest);
    return fill?.joinable(0) === true ? fill : undefined;
  }

  /**
   * Starts writing `body` for `digest` to a temp file; the caller attaches readers at once. On
   * success the blob is renamed into the store, indexed and linked to (registry, repository) —
   * unless it is larger than the whole budget, in which case it is streamed but not kept. When
   * storage cannot be written the fill streams from memory without a file, and nothing is kept.
   */
  begin(digest: string, body: Readable, size: number | undefined, registry: string, repository: string, origin: FillOrigin): BlobFill {
    const { guard, store, logger, metrics, copies } = this.options;
    const holder: { fill?: BlobFill } = {};
    const onStorageError = (err: unknown): void => {
      if (holder.fill !== undefined) this.continueUncached(holder.fill, err);
    };
    const fits = size === undefined || size <= guard.capacity;
    if (!fits) logger.info({ digest, size, filesystem: guard.capacity }, 'blob larger than the filesystem holding storage.path: streamed, not kept');
    const fill =
      (fits ? guard.attempt('fill', () => new BlobFill(digest, store.tempPath(digest), size, registry, repository, onStorageError, this.rings), { digest }) : undefined) ??
      new BlobFill(digest, undefined, size, registry, repository, undefined, this.rings);
    holder.fill = fill;
    this.fills.set(digest, fill);
    const settled = fill.run(body).then(
      () => {
        if (origin === 'upstream') metrics.bytesFetched.inc({ registry }, fill.written);
        this.storeVerified(fill, origin);
      },
      (err: unknown) => {
        if (this.fills.get(digest) === fill) this.fills.delete(digest);
        if (err instanceof DigestMismatch) metrics.digestMismatches.inc({ registry });
        // A shared object that does not match its digest is removed, so the next pull fetches upstream.
        if (origin === 'shared' && err instanceof DigestMismatch && copies.tier !== undefined) this.options.background.track(copies.tier.discard(digest));
        if (fill.tempPath !== undefined) store.discard(fill.tempPath);
        logger.warn({ digest, registry, repository, err: err instanceof Error ? err.message : String(err) }, 'blob fetch failed; nothing cached');
      },
    );
    this.options.background.track(settled);
    return fill;
  }

  /**
   * Starts a fill from the shared store when it holds the digest (a local miss): followers join it as
   * they join an upstream fill, the bytes are verified again, and a copy is kept locally. The
   * repository's access is confirmed (`confirmAccess`, which throws when upstream refuses) only once
   * the store is known to hold the digest. Undefined when there is no shared store, it does not hold
   * the digest, or it fails.
   */
  async beginFromShared(digest: string, registry: string, repository: string, confirmAccess: () => Promise<void>): Promise<BlobFill | undefined> {
    const shared = this.options.copies.tier;
    if (shared === undefined) return undefined;
    const found = await shared.open(digest);
    if (found === undefined) return undefined;
    try {
      await confirmAccess();
    } catch (err) {
      found.body.destroy();
      throw err;
    }
    const running = this.inflight(digest);
    if (running !== undefined) {
      found.body.destroy();
      return running;
    }
    return this.begin(digest, found.body, found.size, registry, repository, 'shared');
  }

  /**
   * Writing a fill's temp file failed: the fill streams on from memory to its readers and is not
   * stored. New clients start their own fetch; a full disk gets eviction of as much as the blob needed.
   */
  private continueUncached(fill: BlobFill, err: unknown): void {
    if (this.fills.get(fill.digest) === fill) this.fills.delete(fill.digest);
    this.options.health.failed('fill', err, { digest: fill.digest, readers: fill.readers });
    if (!isFull(err)) return;
    const needed = fill.size ?? fill.written;
    this.options.guard.requireSpaceBeforeWrites(needed);
    this.options.background.track(this.options.evictor.evictTo(Math.max(0, this.options.handle.readUsage() - needed)));
  }

  /**
   * Takes a verified file (a blob staged by `pullgate import`) into the store: renamed into place (same
   * filesystem: no copy), indexed, linked to (registry, repository) and uploaded to the shared store; false
   * when storage failed (recorded), the file then left where it was.
   */
  adopt(file: string, digest: string, size: number, registry: string, repository: string): boolean {
    const { store, guard, handle, copies } = this.options;
    if (!guard.recordWrite('commit', () => store.commit(file, digest), { digest })) return false;
    const now = this.options.clock.now();
    if (!guard.recordWrite('index', () => handle.index.addBlob({ digest, size, kind: 'blob', media_type: null, created_at: now }, { registry, repository }))) {
      guard.removeUnindexed(digest);
      return false;
    }
    this.options.evictor.recordGrowth();
    copies.uploadBlob(digest, store.pathOf(digest), size, [{ registry, repository }]);
    return true;
  }

  /** A verified fill: renamed into place, indexed and linked, then uploaded (from upstream) or its links shared. */
  private storeVerified(fill: BlobFill, origin: FillOrigin): void {
    const { store, guard, handle, copies, logger, health } = this.options;
    const { digest, tempPath } = fill;
    const links = [{ registry: fill.registry, repository: fill.repository }, ...fill.links];
    /** True once the temp file was handed to an upload that removes it afterwards. */
    let handedOver = false;
    try {
      if (!fill.caching || tempPath === undefined) return;
      if (fill.written > this.options.budget.maxSizeBytes) {
        logger.info({ digest, size: fill.written }, 'blob larger than storage.maxSize: streamed, not kept');
        if (origin === 'upstream' && copies.tier !== undefined) {
          handedOver = true;
          copies.uploadBlob(digest, tempPath, fill.written, links, () => store.discard(tempPath));
        }
        return;
      }
      try {
        store.commit(tempPath, digest);
      } catch (err) {
        if (!isStorageError(err)) throw err;
        // A temp file deleted with its directory is not a failing disk: recreate the layout and go on.
        if (isMissing(err) && guard.repairAfterMissing()) logger.info({ digest }, 'the storage directory was deleted during a fill: blob streamed, not kept');
        else health.failed('commit', err, { digest });
        return;
      }
      const now = this.options.clock.now();
      const indexed = guard.recordWrite('index', () => {
        handle.index.addBlob({ digest, size: fill.written, kind: 'blob', media_type: null, created_at: now }, { registry: fill.registry, repository: fill.repository });
        for (const link of fill.links) handle.index.link(link.registry, link.repository, digest);
      });
      if (!indexed) {
        guard.removeUnindexed(digest);
        return;
      }
      this.options.evictor.recordGrowth();
      if (origin === 'upstream') copies.uploadBlob(digest, store.pathOf(digest), fill.written, links);
      else copies.recordLinks(links, digest);
    } catch (err) {
      logger.error({ digest, err }, 'could not store a verified blob');
    } finally {
      if (tempPath !== undefined && !handedOver) store.discard(tempPath);
      if (this.fills.get(digest) === fill) this.fills.delete(digest);
    }
  }
}
