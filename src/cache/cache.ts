import { openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../deps.js';
import { DigestMismatch } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { BlobFill } from './blob-fill.js';
import { BlobStore } from './blob-store.js';
import { type ChunkSource, FileRange } from './chunk-source.js';
import { CacheIndex, type BlobRow, type TagRow } from './cache-index.js';
import { openDatabase, type Db } from './database.js';

export interface CacheOptions {
  root: string;
  maxSizeBytes: number;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

/** Manifest bytes kept in memory for the hot path (manifests are small; 64 MiB holds thousands). */
const MANIFEST_MEMORY_BYTES = 64 * 1024 * 1024;
/** How often buffered access times are written to SQLite. */
const TOUCH_FLUSH_MS = 5_000;

/** Memo key of a tag or a link: one name (tag or digest) within one repository of one registry. */
function repositoryKey(registry: string, repository: string, name: string): string {
  return `${registry}\n${repository}\n${name}`;
}

export interface CachedManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

/**
 * The local store: SQLite index + content-addressed files. Owns single-flight fills, pinning of
 * blobs being served, LRU eviction to `maxSize`, and crash cleanup. Does no network I/O.
 */
export class Cache {
  readonly index: CacheIndex;
  readonly store: BlobStore;
  private readonly db: Db;
  private readonly fills = new Map<string, BlobFill>();
  /** Completion of every fill in flight (stored or discarded), for drain(). */
  private readonly settling = new Set<Promise<void>>();
  private readonly pins = new Map<string, number>();
  private readonly manifests: LRUCache<string, CachedManifest>;
  /** Tag rows in memory (write-through to SQLite), so a tag hit costs no query. */
  private readonly tags = new LRUCache<string, TagRow>({ max: 100_000 });
  /** (registry, repository, digest) links known to exist; cleared when a blob is forgotten. */
  private readonly linked = new LRUCache<string, true>({ max: 100_000 });
  private totalBytes: number;
  private readonly flushTimer: NodeJS.Timeout;

  constructor(private readonly options: CacheOptions) {
    this.store = new BlobStore(options.root);
    this.db = openDatabase(path.join(options.root, 'index.db'));
    this.index = new CacheIndex(this.db);
    const removed = this.store.removeTemps();
    if (removed > 0) options.logger.info({ removed }, 'removed partial downloads left by an earlier crash');
    this.totalBytes = this.index.totals().bytes;
    options.metrics.cacheBytes.set(this.totalBytes);
    this.manifests = new LRUCache<string, CachedManifest>({ maxSize: MANIFEST_MEMORY_BYTES, sizeCalculation: (m) => m.bytes.length + 200 });
    this.flushTimer = setInterval(() => this.index.flushTouches(), TOUCH_FLUSH_MS);
    this.flushTimer.unref();
  }

  get maxSizeBytes(): number {
    return this.options.maxSizeBytes;
  }

  get sizeBytes(): number {
    return this.totalBytes;
  }

  /** The index row of a stored blob or manifest whose file exists; a row without a file is dropped. */
  lookup(digest: string): BlobRow | undefined {
    const row = this.index.blob(digest);
    if (row === undefined) return undefined;
    if (!this.store.exists(digest)) {
      this.options.logger.warn({ digest }, 'index row without file: dropped');
      this.forget(row);
      return undefined;
    }
    return row;
  }

  isLinked(registry: string, repository: string, digest: string): boolean {
    const key = repositoryKey(registry, repository, digest);
    if (this.linked.has(key)) return true;
    const linked = this.index.isLinked(registry, repository, digest);
    if (linked) this.linked.set(key, true);
    return linked;
  }

  link(registry: string, repository: string, digest: string): void {
    this.index.link(registry, repository, digest);
  }

  /** Bytes [start, end] of a stored blob; the blob is pinned against eviction until the source is closed. */
  openRead(digest: string, start: number, end: number): ChunkSource {
    const fd = openSync(this.store.pathOf(digest), 'r');
    this.pin(digest);
    this.index.touch(digest, this.options.clock.now());
    return new FileRange(fd, start, end, () => this.unpin(digest));
  }

  /** The fill in flight for a digest, if any (followers join it instead of fetching again). */
  inflight(digest: string): BlobFill | undefined {
    return this.fills.get(digest);
  }

  /**
   * Starts writing `body` for `digest` to a temp file; the caller attaches readers at once. On
   * success the blob is renamed into the store, indexed and linked to (registry, repository) —
   * unless it is larger than the whole budget, in which case it is streamed but not kept.
   */
  beginFill(digest: string, body: Readable, size: number | undefined, registry: string, repository: string): BlobFill {
    const fill = new BlobFill(digest, this.store.tempPath(digest), size, registry, repository);
    this.fills.set(digest, fill);
    const settled = fill.run(body).then(
      () => {
        this.options.metrics.bytesFetched.inc({ registry }, fill.written);
        this.settle(fill);
      },
      (err: unknown) => {
        this.fills.delete(digest);
        if (err instanceof DigestMismatch) this.options.metrics.digestMismatches.inc({ registry });
        this.store.discard(fill.tempPath);
        this.options.logger.warn({ digest, registry, repository, err: err instanceof Error ? err.message : String(err) }, 'blob fetch failed; nothing cached');
      },
    );
    this.settling.add(settled);
    void settled.finally(() => this.settling.delete(settled));
    return fill;
  }

  /** Resolves once every fill in flight has been stored or discarded. */
  async drain(): Promise<void> {
    while (this.settling.size > 0) await Promise.allSettled([...this.settling]);
  }

  private settle(fill: BlobFill): void {
    try {
      if (fill.written > this.options.maxSizeBytes) {
        this.store.discard(fill.tempPath);
        this.options.logger.info({ digest: fill.digest, size: fill.written }, 'blob larger than storage.maxSize: streamed, not kept');
        return;
      }
      this.store.commit(fill.tempPath, fill.digest);
      const now = this.options.clock.now();
      this.index.addBlob({ digest: fill.digest, size: fill.written, kind: 'blob', media_type: null, created_at: now }, { registry: fill.registry, repository: fill.repository });
      for (const link of fill.links) this.index.link(link.registry, link.repository, fill.digest);
      this.grow(fill.written);
    } catch (err) {
      this.store.discard(fill.tempPath);
      this.options.logger.error({ digest: fill.digest, err }, 'could not store a verified blob');
    } finally {
      this.fills.delete(fill.digest);
    }
  }

  /** Stores a verified manifest (file + index + link) and keeps its bytes in memory. */
  putManifest(manifest: CachedManifest, registry: string, repository: string): void {
    const known = this.index.blob(manifest.digest);
    if (known === undefined || !this.store.exists(manifest.digest)) {
      this.store.put(manifest.digest, manifest.bytes);
      const now = this.options.clock.now();
      this.index.addBlob({ digest: manifest.digest, size: manifest.bytes.length, kind: 'manifest', media_type: manifest.mediaType, created_at: now }, { registry, repository });
      if (known === undefined) this.grow(manifest.bytes.length);
    } else {
      this.index.link(registry, repository, manifest.digest);
    }
    this.manifests.set(manifest.digest, manifest);
  }

  /** A stored manifest by digest, from memory or disk. */
  manifest(digest: string): CachedManifest | undefined {
    const memory = this.manifests.get(digest);
    if (memory !== undefined) {
      this.index.touch(digest, this.options.clock.now());
      return memory;
    }
    const row = this.lookup(digest);
    if (row?.kind !== 'manifest') return undefined;
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.store.pathOf(digest));
    } catch {
      return undefined;
    }
    const manifest = { digest, mediaType: row.media_type ?? 'application/vnd.oci.image.manifest.v1+json', bytes };
    this.manifests.set(digest, manifest);
    this.index.touch(digest, this.options.clock.now());
    return manifest;
  }

  tag(registry: string, repository: string, tag: string): TagRow | undefined {
    const key = repositoryKey(registry, repository, tag);
    const memory = this.tags.get(key);
    if (memory !== undefined) return memory;
    const row = this.index.tag(registry, repository, tag);
    if (row !== undefined) this.tags.set(key, row);
    return row;
  }

  putTag(registry: string, repository: string, tag: string, row: TagRow): void {
    this.index.putTag(registry, repository, tag, row);
    this.tags.set(repositoryKey(registry, repository, tag), row);
  }

  private grow(bytes: number): void {
    this.totalBytes += bytes;
    this.options.metrics.cacheBytes.set(this.totalBytes);
    if (this.totalBytes > this.options.maxSizeBytes) this.evictTo(this.options.maxSizeBytes);
  }

  private pin(digest: string): void {
    this.pins.set(digest, (this.pins.get(digest) ?? 0) + 1);
  }

  private unpin(digest: string): void {
    const count = (this.pins.get(digest) ?? 1) - 1;
    if (count <= 0) this.pins.delete(digest);
    else this.pins.set(digest, count);
  }

  private forget(row: BlobRow): void {
    this.index.deleteBlob(row.digest);
    this.manifests.delete(row.digest);
    // Links of this digest may be gone with it; forgetting is rare, so the memo starts over.
    this.linked.clear();
    this.totalBytes = Math.max(0, this.totalBytes - row.size);
    this.options.metrics.cacheBytes.set(this.totalBytes);
  }

  /** Evicts least-recently-used blobs that nobody is reading until the cache holds at most `target` bytes. */
  evictTo(target: number): { evicted: number; freed: number } {
    let evicted = 0;
    let freed = 0;
    const victims: BlobRow[] = [];
    let projected = this.totalBytes;
    for (const row of this.index.leastRecentlyUsed()) {
      if (projected <= target) break;
      if (this.pins.has(row.digest)) continue;
      victims.push(row);
      projected -= row.size;
    }
    for (const row of victims) {
      this.store.remove(row.digest);
      this.forget(row);
      evicted++;
      freed += row.size;
    }
    if (evicted > 0) {
      this.options.metrics.evictions.inc(evicted);
      this.options.logger.info({ evicted, freed, size: this.totalBytes, target }, 'evicted least recently used blobs');
    }
    return { evicted, freed };
  }

  /** Writes buffered access times and closes the index. */
  async close(): Promise<void> {
    await this.drain();
    clearInterval(this.flushTimer);
    this.index.flushTouches();
    this.db.close();
  }
}
