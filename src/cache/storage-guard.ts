import { requireSpace, space, spaceNeeded, spaceSync } from './free-space.js';
import type { IndexHandle } from './index-handle.js';
import type { LocalContentStore } from '../storage/content-store.js';
import { isMissing, isStorageError } from './storage-error.js';
import type { StorageHealth, StorageOp, StorageStatus } from './storage-health.js';

/**
 * Runs the cache's storage writes so that failing storage never fails a request: while storage is failing
 * writes are skipped (until a retry is due and a probe passes), a deleted layout is recreated and the write
 * tried once more, and a failure is recorded in `health`. Also owns the free space a full disk must regain.
 */
export class StorageGuard {
  /** The size of the filesystem holding the storage: a blob larger than it is streamed, never written. */
  readonly capacity: number;
  /** After a fill ran out of space: the free space storage must regain before writes are tried again. */
  private spaceWanted: number | undefined;

  constructor(
    private readonly root: string,
    private readonly store: LocalContentStore,
    private readonly health: StorageHealth,
    private readonly handle: IndexHandle,
  ) {
    this.capacity = spaceSync(root)?.total ?? Number.POSITIVE_INFINITY;
  }

  /** Storage as /readyz reports it: recreates a deleted layout and writes a probe file (concurrent callers share one probe). */
  probe(): Promise<StorageStatus> {
    return this.health.probe(async () => {
      this.handle.repairLayout();
      await this.store.probe();
      if (this.spaceWanted !== undefined) requireSpace(await space(this.root), this.spaceWanted);
      this.spaceWanted = undefined;
    });
  }

  /** After a write ran out of space for `bytes`: writes wait until storage has regained enough free space. */
  requireSpaceBeforeWrites(bytes: number): void {
    this.spaceWanted = spaceNeeded(bytes, this.capacity);
  }

  /** True when storage may be written now; once a failure is old enough, repairs and probes it first. */
  private writable(): boolean {
    if (this.health.writable) return true;
    if (!this.health.retryDue()) return false;
    try {
      this.handle.repairLayout();
      this.store.probeSync();
      if (this.spaceWanted !== undefined) requireSpace(spaceSync(this.root), this.spaceWanted);
      this.spaceWanted = undefined;
    } catch (err) {
      this.health.failed('probe', err);
      return false;
    }
    this.health.succeeded();
    return true;
  }

  /**
   * Runs one storage write unless storage is failing. A missing directory (the storage directory was
   * deleted) is recreated and the write tried once more; a storage failure is recorded and yields
   * undefined, so the caller serves without caching. Errors that are not about storage propagate.
   */
  attempt<T>(op: StorageOp, write: () => T, context: Record<string, unknown> = {}): T | undefined {
    if (!this.writable()) return undefined;
    try {
      return write();
    } catch (err) {
      if (!isStorageError(err)) throw err;
      if (isMissing(err) && this.repairAfterMissing()) {
        try {
          return write();
        } catch (again) {
          if (!isStorageError(again)) throw again;
          this.health.failed(op, again, context);
          return undefined;
        }
      }
      this.health.failed(op, err, context);
      return undefined;
    }
  }

  /** Runs a storage write that returns nothing, as attempt() does; true when it was written. */
  recordWrite(op: StorageOp, write: () => void, context: Record<string, unknown> = {}): boolean {
    return (
      this.attempt(
        op,
        () => {
          write();
          return true;
        },
        context,
      ) === true
    );
  }

  /** Repairs the layout after an ENOENT; false (recorded) when it cannot. */
  repairAfterMissing(): boolean {
    try {
      this.handle.repairLayout();
      return true;
    } catch (err) {
      this.health.failed('layout', err);
      return false;
    }
  }

  /** Removes a stored file that could not be indexed, so no file is left that nothing accounts for. */
  removeUnindexed(digest: string): void {
    try {
      this.store.deleteSync(digest);
    } catch {
      // storage is failing; `cache verify` adopts or removes what is left
    }
  }
}
