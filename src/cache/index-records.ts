import type { Logger } from 'pino';
import type { Metrics } from '../core/metrics.js';
import type { BlobRow, TagRow } from '../storage/cache-index.js';
import type { LocalContentStore } from '../storage/content-store.js';
import { type IndexHandle, repositoryKey } from './index-handle.js';
import type { StorageGuard } from './storage-guard.js';

/**
 * Reads and writes of index rows through their memos: blob lookups that check the file is there, links,
 * tags, and forgetting rows (with the memos that describe them). Writes go through the storage guard.
 */
export class IndexRecords {
  constructor(
    private readonly handle: IndexHandle,
    private readonly guard: StorageGuard,
    private readonly store: LocalContentStore,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  /** The index row of a stored blob or manifest whose file exists; a row without a file is dropped. */
  lookup(digest: string): BlobRow | undefined {
    const row = this.handle.index.blob(digest);
    if (row === undefined) return undefined;
    if (!this.store.exists(digest)) {
      this.logger.warn({ digest }, 'index row without file: dropped');
      this.forget(row);
      return undefined;
    }
    return row;
  }

  isLinked(registry: string, repository: string, digest: string): boolean {
    const key = repositoryKey(registry, repository, digest);
    if (this.handle.linked.has(key)) return true;
    const linked = this.handle.index.isLinked(registry, repository, digest);
    if (linked) this.handle.linked.set(key, true);
    return linked;
  }

  /** Writes a link upstream confirmed to the index; false when storage failed (recorded). */
  recordLink(registry: string, repository: string, digest: string): boolean {
    return this.guard.recordWrite('index', () => this.handle.index.link(registry, repository, digest));
  }

  /** Remembers a link known to exist elsewhere (the shared store) without asking the index again. */
  rememberLink(registry: string, repository: string, digest: string): void {
    this.handle.linked.set(repositoryKey(registry, repository, digest), true);
  }

  tag(registry: string, repository: string, tag: string): TagRow | undefined {
    const key = repositoryKey(registry, repository, tag);
    const memory = this.handle.tags.get(key);
    if (memory !== undefined) return memory;
    const row = this.handle.index.tag(registry, repository, tag);
    if (row !== undefined) this.handle.tags.set(key, row);
    return row;
  }

  putTag(registry: string, repository: string, tag: string, row: TagRow): void {
    if (!this.guard.recordWrite('index', () => this.handle.index.putTag(registry, repository, tag, row))) return;
    this.handle.tags.set(repositoryKey(registry, repository, tag), row);
  }

  forget(row: BlobRow): void {
    this.forgetAll([row]);
  }

  /**
   * Drops rows (and their memos) in one index transaction; the total shrinks by the rows that were still
   * there, which are returned. Undefined while the index cannot be written (the rows and their sizes stay).
   */
  forgetAll(rows: readonly BlobRow[]): BlobRow[] | undefined {
    if (rows.length === 0) return [];
    for (const row of rows) this.handle.manifests.delete(row.digest);
    // Links of these digests may be gone with them; forgetting is rare, so the memo starts over.
    this.handle.linked.clear();
    // In digest order, so neighbouring deletions share the pages of the digest indexes.
    const deleted = this.guard.attempt('index', () => new Set(this.handle.index.deleteBlobs(rows.map((row) => row.digest).sort())));
    if (deleted === undefined) return undefined;
    const forgotten = rows.filter((row) => deleted.has(row.digest));
    // The usage row lost their sizes in the same transaction (triggers).
    this.metrics.cacheBytes.set(this.handle.readUsage());
    return forgotten;
  }
}
