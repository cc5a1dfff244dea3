import type { Statement } from 'better-sqlite3';
import type { Db } from './database.js';
import { PerKeyInterval } from '../util/per-key-interval.js';

export interface BlobRow {
  digest: string;
  size: number;
  kind: 'blob' | 'manifest';
  media_type: string | null;
  created_at: number;
  last_access: number;
}

/** What the index holds, counted by SQL aggregates (never by reading every row into memory). */
export interface IndexSummary {
  blobs: number;
  manifests: number;
  bytes: number;
  oldestAccess: number | undefined;
  newestAccess: number | undefined;
}

/** The order of a listing: by digest, least recently used first (eviction's order: pinned digests left out), or most recently used first. */
export type RowOrder = 'digest' | 'lru' | 'mru';

/** Where a page of a listing ends, so the next page starts after it (keyset paging). */
export interface RowPosition {
  digest: string;
  last_access: number;
  created_at: number;
}

/** Where a tag lives: registry key, repository and tag name. */
export interface TagName {
  registry: string;
  repository: string;
  tag: string;
}

export interface TagRow {
  digest: string;
  media_type: string;
  validated_at: number;
  /** When `pullgate import` recorded this tag (null or absent: learnt from upstream). */
  imported_at?: number | null;
}

/**
 * Buffered access times worth a flush of their own. Under hits spread over many manifests a 5 s buffer held
 * 15,000 of them, written in one 25–40 ms transaction that every request waited for; 1,000 take 2–3 ms.
 */
export const TOUCH_BATCH = 1_000;

/**
 * How precisely access times are kept: a digest read again within this long of its last written access is
 * not written again. Eviction's order needs minutes, not milliseconds; hits spread over 20,000 manifests of a
 * million-row index otherwise rewrote a row per hit, a random page each (13% of the CPU of such a run, profiled).
 */
export const TOUCH_RESOLUTION_MS = 60_000;

/** Reads and writes the SQLite index: blobs (with LRU access times), repository links and tags. */
export class CacheIndex {
  private readonly statements: {
    getBlob: Statement<[string], BlobRow>;
    putBlob: Statement<[string, number, string, string | null, number, number]>;
    deleteBlob: Statement<[string]>;
    touch: Statement<[number, string]>;
    totalSize: Statement<[], { total: number | null; count: number }>;
    summary: Statement<[], { count: number; manifests: number; bytes: number; oldest: number | null; newest: number | null }>;
    pageByDigest: Statement<[string, number], BlobRow>;
    pageLru: Statement<[number, number, string, number], BlobRow>;
    pageMru: Statement<[number, number, string, number], BlobRow>;
    linked: Statement<[string, string, string], { one: number }>;
    link: Statement<[string, string, string]>;
    linksOf: Statement<[string], { registry: string; repository: string }>;
    getTag: Statement<[string, string, string], TagRow>;
    putTag: Statement<[string, string, string, string, string, number, number | null]>;
    tagCount: Statement<[], { count: number }>;
    deleteTag: Statement<[string, string, string]>;
    tagsOf: Statement<[string], TagName>;
    pin: Statement<[string, string, string, string]>;
    unpin: Statement<[string, string, string]>;
    usage: Statement<[], { bytes: number; count: number }>;
    takeLease: Statement<[string, number, string, string, number]>;
    renewLease: Statement<[number, string, string]>;
    releaseLease: Statement<[string, string]>;
  };
  /** Access times waiting to be written in one transaction (keeps writes off the hot path). */
  private readonly pendingTouches = new Map<string, number>();
  /** Digests whose access time was buffered within the last TOUCH_RESOLUTION_MS. */
  private readonly touchedAt = new PerKeyInterval<string>(100_000, TOUCH_RESOLUTION_MS);

  constructor(private readonly db: Db) {
    this.statements = {
      getBlob: db.prepare('SELECT * FROM blobs WHERE digest = ?'),
      putBlob: db.prepare(
        `INSERT INTO blobs (digest, size, kind, media_type, created_at, last_access) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (digest) DO UPDATE SET last_access = excluded.last_access, media_type = COALESCE(excluded.media_type, media_type)`,
      ),
      deleteBlob: db.prepare('DELETE FROM blobs WHERE digest = ?'),
      touch: db.prepare('UPDATE blobs SET last_access = MAX(last_access, ?) WHERE digest = ?'),
      totalSize: db.prepare('SELECT SUM(size) AS total, COUNT(*) AS count FROM blobs'),
      // Counts and bytes from the usage row (kept by triggers, database.ts); the access-time bounds from the
      // blobs_last_access index: no scan at any size.
      summary: db.prepare(
        `SELECT count, manifests, bytes, (SELECT MIN(last_access) FROM blobs) AS oldest, (SELECT MAX(last_access) FROM blobs) AS newest
         FROM usage WHERE id = 1`,
      ),
      // Keyset pages: each starts after the last row of the one before, through an index, so a page costs
      // the same at any depth and rows may be deleted between pages.
      pageByDigest: db.prepare('SELECT * FROM blobs WHERE digest > ? ORDER BY digest LIMIT ?'),
      // Eviction's order: pinned digests (`import --pin`) are never offered.
      pageLru: db.prepare(
        `SELECT * FROM blobs WHERE (last_access, created_at, digest) > (?, ?, ?) AND NOT EXISTS (SELECT 1 FROM pins WHERE pins.digest = blobs.digest)
         ORDER BY last_access, created_at, digest LIMIT ?`,
      ),
      pageMru: db.prepare(
        'SELECT * FROM blobs WHERE (last_access, created_at, digest) < (?, ?, ?) ORDER BY last_access DESC, created_at DESC, digest DESC LIMIT ?',
      ),
      linked: db.prepare('SELECT 1 AS one FROM links WHERE registry = ? AND repository = ? AND digest = ?'),
      link: db.prepare('INSERT OR IGNORE INTO links (registry, repository, digest) VALUES (?, ?, ?)'),
      linksOf: db.prepare('SELECT registry, repository FROM links WHERE digest = ? ORDER BY registry, repository'),
      getTag: db.prepare('SELECT digest, media_type, validated_at, imported_at FROM tags WHERE registry = ? AND repository = ? AND tag = ?'),
      putTag: db.prepare(
        `INSERT INTO tags (registry, repository, tag, digest, media_type, validated_at, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (registry, repository, tag) DO UPDATE SET digest = excluded.digest, media_type = excluded.media_type, validated_at = excluded.validated_at, imported_at = excluded.imported_at`,
      ),
      tagCount: db.prepare('SELECT tags AS count FROM usage WHERE id = 1'),
      deleteTag: db.prepare('DELETE FROM tags WHERE registry = ? AND repository = ? AND tag = ?'),
      // No index on tags.digest: a scan, for `cache rm` only (never on a request's path).
      tagsOf: db.prepare('SELECT registry, repository, tag FROM tags WHERE digest = ? ORDER BY registry, repository, tag'),
      pin: db.prepare('INSERT OR IGNORE INTO pins (registry, repository, reference, digest) VALUES (?, ?, ?, ?)'),
      unpin: db.prepare('DELETE FROM pins WHERE registry = ? AND repository = ? AND reference = ?'),
      // Kept exact by triggers on blobs (database.ts), so every process over this index reads the host's total.
      usage: db.prepare('SELECT bytes, count FROM usage WHERE id = 1'),
      takeLease: db.prepare('UPDATE leases SET holder = ?, expires_at = ? WHERE name = ? AND (holder IS NULL OR holder = ? OR expires_at <= ?)'),
      renewLease: db.prepare('UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?'),
      releaseLease: db.prepare('UPDATE leases SET holder = NULL, expires_at = 0 WHERE name = ? AND holder = ?'),
    };
  }

  blob(digest: string): BlobRow | undefined {
    return this.statements.getBlob.get(digest);
  }

  /** Records a verified blob and, when given, links it to the repository it came from, in one transaction. */
  addBlob(row: Omit<BlobRow, 'last_access'>, origin?: { registry: string; repository: string }): void {
    this.db.transaction(() => {
      this.statements.putBlob.run(row.digest, row.size, row.kind, row.media_type, row.created_at, row.created_at);
      if (origin) this.statements.link.run(origin.registry, origin.repository, row.digest);
    })();
  }

  /** Forgets a blob (and its links); true when a row was there. */
  deleteBlob(digest: string): boolean {
    this.pendingTouches.delete(digest);
    this.touchedAt.forget(digest);
    return this.statements.deleteBlob.run(digest).changes > 0;
  }

  /** Forgets blobs in one transaction; the digests whose rows were there. */
  deleteBlobs(digests: readonly string[]): string[] {
    const deleted: string[] = [];
    this.db.transaction(() => {
      for (const digest of digests) if (this.deleteBlob(digest)) deleted.push(digest);
    })();
    return deleted;
  }

  /**
   * Notes an access; written by flushTouches(). True once TOUCH_BATCH accesses wait: the caller should flush
   * soon, as one transaction of them costs a few milliseconds on the event loop and a larger one more.
   */
  touch(digest: string, now: number): boolean {
    if (!this.touchedAt.due(digest, now)) return false;
    this.pendingTouches.set(digest, now);
    return this.pendingTouches.size >= TOUCH_BATCH;
  }

  flushTouches(): void {
    if (this.pendingTouches.size === 0) return;
    const entries = [...this.pendingTouches];
    this.pendingTouches.clear();
    this.db.transaction(() => {
      for (const [digest, at] of entries) this.statements.touch.run(at, digest);
    })();
  }

  totals(): { bytes: number; count: number } {
    const row = this.statements.totalSize.get();
    return { bytes: row?.total ?? 0, count: row?.count ?? 0 };
  }

  /** Bytes and rows of every blob and manifest in the index, from the usage row (one row read, not a scan). */
  usage(): { bytes: number; count: number } {
    const row = this.statements.usage.get();
    return { bytes: row?.bytes ?? 0, count: row?.count ?? 0 };
  }

  /** Takes lease `name` for `holder` until `expiresAt` when it is free, expired at `now` or already held by `holder`. */
  takeLease(name: string, holder: string, now: number, expiresAt: number): boolean {
    return this.statements.takeLease.run(holder, expiresAt, name, holder, now).changes > 0;
  }

  /** Moves the expiry of a lease `holder` still holds; false when it holds it no longer. */
  renewLease(name: string, holder: string, expiresAt: number): boolean {
    return this.statements.renewLease.run(expiresAt, name, holder).changes > 0;
  }

  releaseLease(name: string, holder: string): void {
    this.statements.releaseLease.run(name, holder);
  }

  summary(): IndexSummary {
    this.flushTouches();
    const row = this.statements.summary.get();
    return {
      blobs: (row?.count ?? 0) - (row?.manifests ?? 0),
      manifests: row?.manifests ?? 0,
      bytes: row?.bytes ?? 0,
      oldestAccess: row?.oldest ?? undefined,
      newestAccess: row?.newest ?? undefined,
    };
  }

  /** Up to `limit` rows in `order`, after `after` (from the start when undefined). Buffered access times are written first. */
  page(order: RowOrder, after: RowPosition | undefined, limit: number): BlobRow[] {
    this.flushTouches();
    if (order === 'digest') return this.statements.pageByDigest.all(after?.digest ?? '', limit);
    if (order === 'lru') {
      return this.statements.pageLru.all(after?.last_access ?? Number.MIN_SAFE_INTEGER, after?.created_at ?? Number.MIN_SAFE_INTEGER, after?.digest ?? '', limit);
    }
    // Digests are ASCII, so U+FFFF sorts after every one of them.
    return this.statements.pageMru.all(after?.last_access ?? Number.MAX_SAFE_INTEGER, after?.created_at ?? Number.MAX_SAFE_INTEGER, after?.digest ?? '\uffff', limit);
  }

  /** Every row in `order`, read a page at a time (rows may be deleted while iterating). */
  *rows(order: RowOrder, pageSize = 1_000): Generator<BlobRow> {
    let after: RowPosition | undefined;
    for (;;) {
      const rows = this.page(order, after, pageSize);
      yield* rows;
      if (rows.length < pageSize) return;
      after = rows[rows.length - 1];
    }
  }

  isLinked(registry: string, repository: string, digest: string): boolean {
    return this.statements.linked.get(registry, repository, digest) !== undefined;
  }

  link(registry: string, repository: string, digest: string): void {
    this.statements.link.run(registry, repository, digest);
  }

  linksOf(digest: string): { registry: string; repository: string }[] {
    return this.statements.linksOf.all(digest);
  }

  /** A tag's row; `imported_at` only on a tag `pullgate import` recorded. */
  tag(registry: string, repository: string, tag: string): TagRow | undefined {
    const row = this.statements.getTag.get(registry, repository, tag);
    if (row === undefined || typeof row.imported_at === 'number') return row;
    return { digest: row.digest, media_type: row.media_type, validated_at: row.validated_at };
  }

  putTag(registry: string, repository: string, tag: string, row: TagRow): void {
    this.statements.putTag.run(registry, repository, tag, row.digest, row.media_type, row.validated_at, row.imported_at ?? null);
  }

  tagCount(): number {
    return this.statements.tagCount.get()?.count ?? 0;
  }

  /** Forgets a tag, so the next pull of it asks upstream again; true when the row was there. */
  deleteTag(registry: string, repository: string, tag: string): boolean {
    return this.statements.deleteTag.run(registry, repository, tag).changes > 0;
  }

  /** Keeps these digests (stored ones) out of eviction until unpin() of the same image reference, in one transaction. */
  pin(registry: string, repository: string, reference: string, digests: Iterable<string>): void {
    this.db.transaction(() => {
      for (const digest of digests) this.statements.pin.run(registry, repository, reference, digest);
    })();
  }

  /** Releases what pin() kept for an image reference; how many digests it had pinned. */
  unpin(registry: string, repository: string, reference: string): number {
    return this.statements.unpin.run(registry, repository, reference).changes;
  }

  /** Every tag that points at a digest (a scan of the tags: for maintenance, not for requests). */
  tagsOf(digest: string): TagName[] {
    return this.statements.tagsOf.all(digest);
  }
}
