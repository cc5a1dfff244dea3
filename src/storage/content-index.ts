import type { BlobRow, IndexSummary, RowOrder, TagRow } from './cache-index.js';

export type { BlobRow, IndexSummary, RowOrder, TagRow } from './cache-index.js';

/** A repository of a registry that upstream confirmed may see a digest. */
export interface RepositoryLink {
  registry: string;
  repository: string;
}

/**
 * What the cache knows about its content: blobs and manifests (size, kind, last access), the
 * repositories each was confirmed for, and tags with when they were last validated. Methods are
 * asynchronous so an index may live elsewhere than in this process; `touch` only notes an access
 * (written by `flushTouches`), so a hit never waits for the index. Implementations: SQLite, memory.
 */
export interface ContentIndex {
  blob(digest: string): Promise<BlobRow | undefined>;
  /** Records a verified blob (an existing row keeps its size and gets the newer access time) and links it to `origin`. */
  addBlob(row: Omit<BlobRow, 'last_access'>, origin?: RepositoryLink): Promise<void>;
  /** Forgets a blob and its links. */
  deleteBlob(digest: string): Promise<void>;
  /** Notes an access at `now` (ms); never moves an access time backwards. */
  touch(digest: string, now: number): void;
  flushTouches(): Promise<void>;
  totals(): Promise<{ bytes: number; count: number }>;
  /** Counts by kind, bytes and the range of access times, without reading every row (buffered touches written first). */
  summary(): Promise<IndexSummary>;
  /**
   * Every row, by digest, least or most recently used first, streamed (an index of a million rows is
   * never held in memory at once); the caller may delete rows while iterating.
   */
  blobs(order: RowOrder): AsyncIterable<BlobRow>;
  isLinked(registry: string, repository: string, digest: string): Promise<boolean>;
  link(registry: string, repository: string, digest: string): Promise<void>;
  linksOf(digest: string): Promise<RepositoryLink[]>;
  tag(registry: string, repository: string, tag: string): Promise<TagRow | undefined>;
  putTag(registry: string, repository: string, tag: string, row: TagRow): Promise<void>;
  tagCount(): Promise<number>;
  /** Writes what is buffered and releases the index. */
  close(): Promise<void>;
}
