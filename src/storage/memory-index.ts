import type { BlobRow, IndexSummary, RowOrder, TagRow } from './cache-index.js';
import type { ContentIndex, RepositoryLink } from './content-index.js';

function key(...parts: string[]): string {
  return parts.join('\n');
}

/** The index in Maps, for fast tests; the same contract as the SQLite index. */
export class MemoryContentIndex implements ContentIndex {
  private readonly rows = new Map<string, BlobRow>();
  /** digest → "registry\nrepository" → link. */
  private readonly links = new Map<string, Map<string, RepositoryLink>>();
  private readonly tags = new Map<string, TagRow>();
  private readonly pendingTouches = new Map<string, number>();

  blob(digest: string): Promise<BlobRow | undefined> {
    const row = this.rows.get(digest);
    return Promise.resolve(row === undefined ? undefined : { ...row });
  }

  addBlob(row: Omit<BlobRow, 'last_access'>, origin?: RepositoryLink): Promise<void> {
    const known = this.rows.get(row.digest);
    if (known === undefined) this.rows.set(row.digest, { ...row, last_access: row.created_at });
    else this.rows.set(row.digest, { ...known, last_access: row.created_at, media_type: row.media_type ?? known.media_type });
    if (origin !== undefined) this.addLink(origin.registry, origin.repository, row.digest);
    return Promise.resolve();
  }

  deleteBlob(digest: string): Promise<void> {
    this.rows.delete(digest);
    this.links.delete(digest);
    this.pendingTouches.delete(digest);
    return Promise.resolve();
  }

  touch(digest: string, now: number): void {
    this.pendingTouches.set(digest, now);
  }

  flushTouches(): Promise<void> {
    for (const [digest, at] of this.pendingTouches) {
      const row = this.rows.get(digest);
      if (row !== undefined) row.last_access = Math.max(row.last_access, at);
    }
    this.pendingTouches.clear();
    return Promise.resolve();
  }

  totals(): Promise<{ bytes: number; count: number }> {
    let bytes = 0;
    for (const row of this.rows.values()) bytes += row.size;
    return Promise.resolve({ bytes, count: this.rows.size });
  }

  async summary(): Promise<IndexSummary> {
    await this.flushTouches();
    const summary: IndexSummary = { blobs: 0, manifests: 0, bytes: 0, oldestAccess: undefined, newestAccess: undefined };
    for (const row of this.rows.values()) {
      if (row.kind === 'blob') summary.blobs++;
      else summary.manifests++;
      summary.bytes += row.size;
      if (summary.oldestAccess === undefined || row.last_access < summary.oldestAccess) summary.oldestAccess = row.last_access;
      if (summary.newestAccess === undefined || row.last_access > summary.newestAccess) summary.newestAccess = row.last_access;
    }
    return summary;
  }

  async *blobs(order: RowOrder): AsyncGenerator<BlobRow> {
    await this.flushTouches();
    const rows = [...this.rows.values()].map((row) => ({ ...row }));
    const byDigest = (a: BlobRow, b: BlobRow): number => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);
    const lru = (a: BlobRow, b: BlobRow): number => a.last_access - b.last_access || a.created_at - b.created_at || byDigest(a, b);
    rows.sort(order === 'digest' ? byDigest : order === 'lru' ? lru : (a, b) => lru(b, a));
    yield* rows;
  }

  isLinked(registry: string, repository: string, digest: string): Promise<boolean> {
    return Promise.resolve(this.links.get(digest)?.has(key(registry, repository)) ?? false);
  }

  link(registry: string, repository: string, digest: string): Promise<void> {
    // As in SQLite, a link needs its blob row (a foreign key); linking an unknown digest is an error.
    if (!this.rows.has(digest)) return Promise.reject(new Error(`link to ${digest}, which is not in the index`));
    this.addLink(registry, repository, digest);
    return Promise.resolve();
  }

  private addLink(registry: string, repository: string, digest: string): void {
    let byRepository = this.links.get(digest);
    if (byRepository === undefined) {
      byRepository = new Map();
      this.links.set(digest, byRepository);
    }
    byRepository.set(key(registry, repository), { registry, repository });
  }

  linksOf(digest: string): Promise<RepositoryLink[]> {
    const links = [...(this.links.get(digest)?.values() ?? [])];
    links.sort((a, b) => key(a.registry, a.repository).localeCompare(key(b.registry, b.repository)));
    return Promise.resolve(links);
  }

  tag(registry: string, repository: string, tag: string): Promise<TagRow | undefined> {
    const row = this.tags.get(key(registry, repository, tag));
    return Promise.resolve(row === undefined ? undefined : { ...row });
  }

  putTag(registry: string, repository: string, tag: string, row: TagRow): Promise<void> {
    this.tags.set(key(registry, repository, tag), { ...row });
    return Promise.resolve();
  }

  tagCount(): Promise<number> {
    return Promise.resolve(this.tags.size);
  }

  close(): Promise<void> {
    return this.flushTouches();
  }
}
