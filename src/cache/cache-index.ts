import type { Statement } from 'better-sqlite3';
import type { Db } from './database.js';

export interface BlobRow {
  digest: string;
  size: number;
  kind: 'blob' | 'manifest';
  media_type: string | null;
  created_at: number;
  last_access: number;
}

export interface TagRow {
  digest: string;
  media_type: string;
  validated_at: number;
}

/** Reads and writes the SQLite index: blobs (with LRU access times), repository links and tags. */
export class CacheIndex {
  private readonly statements: {
    getBlob: Statement<[string], BlobRow>;
    putBlob: Statement<[string, number, string, string | null, number, number]>;
    deleteBlob: Statement<[string]>;
    touch: Statement<[number, string]>;
    totalSize: Statement<[], { total: number | null; count: number }>;
    lru: Statement<[], BlobRow>;
    all: Statement<[], BlobRow>;
    linked: Statement<[string, string, string], { one: number }>;
    link: Statement<[string, string, string]>;
    linksOf: Statement<[string], { registry: string; repository: string }>;
    getTag: Statement<[string, string, string], TagRow>;
    putTag: Statement<[string, string, string, string, string, number]>;
    tagCount: Statement<[], { count: number }>;
  };
  /** Access times waiting to be written in one transaction (keeps writes off the hot path). */
  private readonly pendingTouches = new Map<string, number>();

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
      lru: db.prepare('SELECT * FROM blobs ORDER BY last_access ASC, created_at ASC'),
      all: db.prepare('SELECT * FROM blobs ORDER BY digest'),
      linked: db.prepare('SELECT 1 AS one FROM links WHERE registry = ? AND repository = ? AND digest = ?'),
      link: db.prepare('INSERT OR IGNORE INTO links (registry, repository, digest) VALUES (?, ?, ?)'),
      linksOf: db.prepare('SELECT registry, repository FROM links WHERE digest = ? ORDER BY registry, repository'),
      getTag: db.prepare('SELECT digest, media_type, validated_at FROM tags WHERE registry = ? AND repository = ? AND tag = ?'),
      putTag: db.prepare(
        `INSERT INTO tags (registry, repository, tag, digest, media_type, validated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (registry, repository, tag) DO UPDATE SET digest = excluded.digest, media_type = excluded.media_type, validated_at = excluded.validated_at`,
      ),
      tagCount: db.prepare('SELECT COUNT(*) AS count FROM tags'),
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

  deleteBlob(digest: string): void {
    this.pendingTouches.delete(digest);
    this.statements.deleteBlob.run(digest);
  }

  /** Notes an access; written by flushTouches(). */
  touch(digest: string, now: number): void {
    this.pendingTouches.set(digest, now);
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

  /** Blobs, least recently used first. */
  leastRecentlyUsed(): IterableIterator<BlobRow> {
    this.flushTouches();
    return this.statements.lru.iterate();
  }

  all(): BlobRow[] {
    this.flushTouches();
    return this.statements.all.all();
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

  tag(registry: string, repository: string, tag: string): TagRow | undefined {
    return this.statements.getTag.get(registry, repository, tag);
  }

  putTag(registry: string, repository: string, tag: string, row: TagRow): void {
    this.statements.putTag.run(registry, repository, tag, row.digest, row.media_type, row.validated_at);
  }

  tagCount(): number {
    return this.statements.tagCount.get()?.count ?? 0;
  }
}
