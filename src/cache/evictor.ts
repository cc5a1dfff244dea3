import type { Logger } from 'pino';
import type { Clock } from '../core/deps.js';
import type { Metrics } from '../core/metrics.js';
import { TOUCH_RESOLUTION_MS, type BlobRow, type RowPosition } from '../storage/cache-index.js';
import type { LocalContentStore } from '../storage/content-store.js';
import type { BackgroundWork } from './background-work.js';
import type { IndexHandle } from './index-handle.js';
import { IndexLease } from './index-lease.js';
import type { IndexRecords } from './index-records.js';
import type { Pins } from './pins.js';
import { isStorageError } from './storage-error.js';
import type { StorageHealth } from './storage-health.js';

/**
 * Blobs evicted per batch: their rows go in one transaction, then their files are unlinked in the thread
 * pool while requests are served. A row costs 50–150 µs to delete on a busy disk (its index pages, the WAL
 * and its checkpoints), so 64 keep a batch to a few milliseconds.
 */
const EVICT_BATCH = 64;
/**
 * After how many eviction batches a pass waits for a WAL checkpoint. A batch adds about 1 MB of WAL frames;
 * a pass that went on while the checkpoint ran left it behind, the WAL grew to hundreds of MB, and the write
 * that restarted it truncated it to journal_size_limit on the event loop: 100–250 ms of freeing page cache
 * in the kernel. Waiting keeps the WAL to about 16 batches, below the limit, so it is never cut.
 */
const CHECKPOINT_EVERY_BATCHES = 16;
/** Unlinks an eviction pass runs at once: half of libuv's default thread pool of 4. */
const UNLINK_LANES = 2;
/**
 * How long the eviction lease outlives its holder's last renewal: a worker that dies mid-pass holds up the
 * others' passes this long at most. A live holder renews it every third of this during a pass.
 */
const EVICTION_LEASE_MS = 30_000;

/** What an eviction pass removed. */
export interface Evicted {
  evicted: number;
  freed: number;
  /** True when another process over the same index held the eviction lease, so this one evicted nothing (or stopped). */
  busy?: boolean;
}

export interface EvictorOptions {
  handle: IndexHandle;
  records: IndexRecords;
  store: LocalContentStore;
  health: StorageHealth;
  pins: Pins;
  background: BackgroundWork;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** `storage.maxSize`, read at each use (the cache's options object). */
  budget: { readonly maxSizeBytes: number };
}

/**
 * Keeps the host's cache within its budget: evicts least-recently-used blobs that nobody is reading (and no
 * manifest hit within the last minute), in
 * batches, one pass at a time over the index (under a cross-process lease), with WAL checkpoints between batches.
 */
export class Evictor {
  /** Only one process over this index runs an eviction pass at a time. */
  private readonly lease: IndexLease;
  /** The eviction pass running, if any, and the size it evicts down to. */
  private eviction: { target: number; done: Promise<Evicted> } | undefined;

  constructor(private readonly options: EvictorOptions) {
    this.lease = new IndexLease('eviction', EVICTION_LEASE_MS, options.clock);
  }

  /**
   * After a fill or a manifest was indexed: reads the host's total (every worker's fills count) and starts
   * an eviction pass when it is over the budget (the worker that holds the lease runs it).
   */
  recordGrowth(): void {
    const total = this.options.handle.readUsage();
    this.options.metrics.cacheBytes.set(total);
    if (total > this.options.budget.maxSizeBytes) this.options.background.track(this.evictTo(this.options.budget.maxSizeBytes));
  }

  /**
   * Evicts least-recently-used blobs that nobody is reading until the host's cache (every process over this
   * index) holds at most `target` bytes. A pass runs in batches of EVICT_BATCH: the rows go in one short
   * transaction, then their files are unlinked in libuv's thread pool, so hits go on during a pass over
   * 100,000 blobs. One pass at a time in this process: a call during a pass lowers its target and shares its
   * result. One pass at a time over the index: a pass runs under the eviction lease, and a call while another
   * process holds it evicts nothing (`busy`); that process's pass reads the shared total after each batch,
   * so it evicts for this process's fills too.
   */
  evictTo(target: number): Promise<Evicted> {
    const running = this.eviction;
    if (running !== undefined) {
      running.target = Math.min(running.target, target);
      return running.done;
    }
    const pass = { target, done: Promise.resolve<Evicted>({ evicted: 0, freed: 0 }) };
    this.eviction = pass;
    pass.done = this.evictUnderLease(pass).finally(() => {
      this.eviction = undefined;
    });
    return pass.done;
  }

  /**
   * Takes the eviction lease, runs the batches and releases it. A fill stored by another process while this
   * one held the lease found it taken: when the batches reached the target, the total is read again after
   * the release and, if a fill pushed it over, the lease is taken again for another round.
   */
  private async evictUnderLease(pass: { target: number }): Promise<Evicted> {
    const { handle } = this.options;
    const result: Evicted = { evicted: 0, freed: 0 };
    try {
      while (handle.readUsage() > pass.target) {
        const taken = this.leaseStep(() => this.lease.take(handle.index));
        if (taken === false) {
          result.busy = true;
          break;
        }
        let reached = false;
        try {
          reached = await this.evictInBatches(pass, result, taken === true);
        } finally {
          this.leaseStep(() => {
            this.lease.release(handle.index);
            return true;
          });
        }
        if (!reached) break;
      }
    } finally {
      if (result.evicted > 0) {
        this.options.metrics.evictions.inc(result.evicted);
        this.options.logger.info({ evicted: result.evicted, freed: result.freed, size: handle.lastUsage, target: pass.target }, 'evicted least recently used blobs');
      }
    }
    return result;
  }

  /**
   * Takes, renews or releases the eviction lease. When the index cannot be written (a full disk, where
   * eviction matters most, or storage already failing) the pass goes on without it: undefined, recorded as the index's failure; at
   * worst two processes evict at once, each from the rows the other has not deleted yet.
   */
  private leaseStep(step: () => boolean): boolean | undefined {
    // Already failing: no write is tried (its error would hide the failure that is being reported).
    if (!this.options.health.writable) return undefined;
    try {
      return step();
    } catch (err) {
      if (!isStorageError(err)) throw err;
      this.options.health.failed('index', err);
      return undefined;
    }
  }

  /**
   * Evicts in batches while this process holds the lease (or, `leased` false, while the index could not be
   * written to take it), adding to `result`; true when the total reached the target.
   */
  private async evictInBatches(pass: { target: number }, result: Evicted, leased: boolean): Promise<boolean> {
    const { handle, records, pins } = this.options;
    let after: RowPosition | undefined;
    let batches = 0;
    const checkpointer = handle.ensureCheckpointer();
    for (let total = handle.readUsage(); total > pass.target; total = handle.readUsage()) {
      if (leased && this.leaseStep(() => this.lease.keep(handle.index)) === false) {
        // Lost: this process stalled past the lease and another took it.
        result.busy = true;
        return false;
      }
      if (++batches % CHECKPOINT_EVERY_BATCHES === 0) await checkpointer?.request();
      // Keyset pages: pinned rows are passed over, and rows touched meanwhile move behind the position.
      const rows = handle.index.page('lru', after, EVICT_BATCH);
      const last = rows[rows.length - 1];
      if (last === undefined) return false;
      after = last;
      const victims: BlobRow[] = [];
      const now = this.options.clock.now();
      let projected = total;
      for (const row of rows) {
        if (projected <= pass.target) break;
        if (pins.isPinned(row.digest) || this.hitLately(row, now)) continue;
        victims.push(row);
        projected -= row.size;
      }
      // Rows first: from here a request misses and fetches again. A manifest can be stored again before its
      // unlink runs: removeFiles leaves a file whose row is back, and drops a row whose file it took. A file whose unlink fails is left for `cache verify` to adopt.
      // Another worker reading one of these files keeps its open descriptor: the unlink does not cut it.
      const forgotten = records.forgetAll(victims);
      // While the index cannot be written (a full disk) the files still go, as that frees the space; their
      // rows stay, counted in the total, until a lookup finds them without a file. The pass ends there.
      const gone = forgotten ?? victims;
      result.evicted += gone.length;
      for (const row of gone) result.freed += row.size;
      // Only rows this pass deleted can have come back; with the index unwritable every row is still there.
      const failed = await this.removeFiles(gone, forgotten !== undefined);
      if (failed || forgotten === undefined) return false;
    }
    return true;
  }

  /**
   * True for a manifest this process served from memory within TOUCH_RESOLUTION_MS: its row's access time is
   * written at most once a minute, so to the LRU order a tag hit 10,000 times a second looks older than a blob
   * filled seconds ago. Kept: manifests are tiny next to layers, and evicting a hot tag's manifest turns its
   * next revalidation from a HEAD into a GET (a pull, on Docker Hub).
   */
  private hitLately(row: BlobRow, now: number): boolean {
    if (row.kind !== 'manifest') return false;
    const held = this.options.handle.manifests.peek(row.digest);
    return held !== undefined && now - held.hitAt < TOUCH_RESOLUTION_MS;
  }

  /** True when the digest has a row again, written by this process or another since the pass forgot it. */
  private storedAgain(digest: string): boolean {
    try {
      return this.options.handle.index.blob(digest) !== undefined;
    } catch (err) {
      if (!isStorageError(err)) throw err;
      return false;
    }
  }

  /**
   * After an unlink: a row written for the digest while the unlink ran (its file written just before) lost
   * its file to it, and is dropped now rather than found without a file after a restart. (The writer, for its
   * part, checks its file is still there once its row is in: see StoredManifests.)
   */
  private dropRowWithoutFile(digest: string): void {
    const { handle, store, records } = this.options;
    if (!handle.isOpen) return;
    let again: BlobRow | undefined;
    try {
      again = handle.index.blob(digest);
    } catch (err) {
      if (!isStorageError(err)) throw err;
      return;
    }
    if (again !== undefined && !store.exists(digest)) records.forget(again);
  }

  /**
   * Unlinks the files of forgotten rows in the thread pool, UNLINK_LANES at a time so that the pool's other
   * threads stay free for the reads of requests served meanwhile; true when storage failed (recorded).
   * `rowsForgotten`: false while the index could not be written (a full disk), when every row is still
   * there and none can have come back: the files go regardless, as that frees the space.
   */
  private async removeFiles(rows: readonly BlobRow[], rowsForgotten: boolean): Promise<boolean> {
    const outcomes: PromiseSettledResult<void>[] = new Array<PromiseSettledResult<void>>(rows.length);
    let next = 0;
    const lane = async (): Promise<void> => {
      for (let i = next++; i < rows.length; i = next++) {
        const row = rows[i] as BlobRow;
        // Stored again since its row was forgotten (a manifest is fetched again in milliseconds): the file is
        // the new one's, and stays.
        if (rowsForgotten && this.storedAgain(row.digest)) {
          outcomes[i] = { status: 'fulfilled', value: undefined };
          continue;
        }
        outcomes[i] = await this.options.store.delete(row.digest).then(
          (): PromiseSettledResult<void> => ({ status: 'fulfilled', value: undefined }),
          (reason: unknown): PromiseSettledResult<void> => ({ status: 'rejected', reason }),
        );
        if (rowsForgotten) this.dropRowWithoutFile(row.digest);
      }
    };
    await Promise.all(Array.from({ length: Math.min(UNLINK_LANES, rows.length) }, lane));
    const failure = outcomes.findIndex((outcome) => outcome.status === 'rejected');
    const outcome = outcomes[failure];
    if (outcome === undefined || outcome.status !== 'rejected') return false;
    const err: unknown = outcome.reason;
    if (!isStorageError(err)) throw err;
    this.options.health.failed('evict', err, { digest: rows[failure]?.digest });
    return true;
  }
}
