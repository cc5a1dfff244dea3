import { CacheIndex, type BlobRow, type IndexSummary, type RowOrder, type TagRow } from './cache-index.js';
import { openDatabase, type Db } from './database.js';
import type { ContentIndex, RepositoryLink } from './content-index.js';

/** Rows per page of a listing: big enough that paging costs little, small enough to stay a few hundred kB. */
const PAGE_ROWS = 1_000;

/**
 * The embedded index: SQLite in WAL mode next to the local content. `sync` is the same index without
 * promises, for the cache's local hit path, which must not pay an extra turn of the event loop.
 */
export class SqliteContentIndex implements ContentIndex {
  private constructor(
    readonly sync: CacheIndex,
    /** The database this index owns and closes; undefined for a view over a cache's open index. */
    private readonly db: Db | undefined,
  ) {}

  /** Opens (creating and migrating) the index file; `:memory:` for a throw-away one. */
  static open(file: string): SqliteContentIndex {
    const db = openDatabase(file);
    return new SqliteContentIndex(new CacheIndex(db), db);
  }

  /** The interface over an index someone else owns (the cache's): close() only writes buffered touches. */
  static view(index: CacheIndex): SqliteContentIndex {
    return new SqliteContentIndex(index, undefined);
  }

  blob(digest: string): Promise<BlobRow | undefined> {
    return settle(() => this.sync.blob(digest));
  }

  addBlob(row: Omit<BlobRow, 'last_access'>, origin?: RepositoryLink): Promise<void> {
    return settle(() => this.sync.addBlob(row, origin));
  }

  deleteBlob(digest: string): Promise<void> {
    return settle(() => {
      this.sync.deleteBlob(digest);
    });
  }

  touch(digest: string, now: number): void {
    this.sync.touch(digest, now);
  }

  flushTouches(): Promise<void> {
    return settle(() => this.sync.flushTouches());
  }

  totals(): Promise<{ bytes: number; count: number }> {
    return settle(() => this.sync.totals());
  }

  summary(): Promise<IndexSummary> {
    return settle(() => this.sync.summary());
  }

  blobs(order: RowOrder): AsyncIterable<BlobRow> {
    // A page at a time, each its own query (no cursor stays open), so the caller may write between rows.
    const rows = this.sync.rows(order, PAGE_ROWS);
    return {
      [Symbol.asyncIterator]: () => ({
        next: (): Promise<IteratorResult<BlobRow>> => settle(() => rows.next()),
        return: (): Promise<IteratorResult<BlobRow>> => settle(() => rows.return(undefined)),
      }),
    };
  }

  isLinked(registry: string, repository: string, digest: string): Promise<boolean> {
    return settle(() => this.sync.isLinked(registry, repository, digest));
  }

  link(registry: string, repository: string, digest: string): Promise<void> {
    return settle(() => this.sync.link(registry, repository, digest));
  }

  linksOf(digest: string): Promise<RepositoryLink[]> {
    return settle(() => this.sync.linksOf(digest));
  }

  tag(registry: string, repository: string, tag: string): Promise<TagRow | undefined> {
    return settle(() => this.sync.tag(registry, repository, tag));
  }

  putTag(registry: string, repository: string, tag: string, row: TagRow): Promise<void> {
    return settle(() => this.sync.putTag(registry, repository, tag, row));
  }

  tagCount(): Promise<number> {
    return settle(() => this.sync.tagCount());
  }

  close(): Promise<void> {
    return settle(() => {
      this.sync.flushTouches();
      this.db?.close();
    });
  }
}

/** Runs a synchronous step as a promise (a throw becomes a rejection). */
function settle<T>(step: () => T): Promise<T> {
  try {
    return Promise.resolve(step());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}
