import { openSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { LRUCache } from 'lru-cache';
import { Memo } from '../util/memo.js';
import type { Clock } from '../deps.js';
import { DigestMismatch, StorageUnavailable } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { BlobFill, RingPool } from './blob-fill.js';
import { BlobStore } from './blob-store.js';
import { type ChunkSource, FileRange } from './chunk-source.js';
import { CacheIndex, TOUCH_RESOLUTION_MS, type BlobRow, type RowPosition, type TagRow } from './cache-index.js';
import { openDatabase, type Db } from './database.js';
import { Checkpointer, type CheckpointResult } from './checkpointer.js';
import { IndexLease } from './index-lease.js';
import { requireSpace, space, spaceNeeded, spaceSync } from './free-space.js';
import { isFull, isMissing, isStorageError, storageErrorCode, storageReason } from './storage-error.js';
import { StorageHealth, type StorageOp, type StorageStatus } from './storage-health.js';
import type { SharedTier } from './shared-tier.js';
import type { ContentIndex } from '../storage/content-index.js';
import type { ContentStore } from '../storage/content-store.js';
import { FsContentStore } from '../storage/fs-store.js';
import { SqliteContentIndex } from '../storage/sqlite-index.js';

export interface CacheOptions {
  root: string;
  maxSizeBytes: number;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /**
   * When storage cannot be written at start: serve without caching until it can (the server), instead
   * of throwing StorageUnavailable (the default, for the `cache` commands).
   */
  passThroughIfUnwritable?: boolean;
  /** Leave the temp files at start: other processes' fills write there (a worker replacing a dead one). */
  keepTemps?: boolean;
  /** The shared store behind the local disk (`storage.s3`), if any. */
  shared?: SharedTier;
}

/**
 * Where a fill's bytes come from: upstream (stored locally, then uploaded to the shared store), the
 * shared store, or the digest's owner in a cluster (which uploads its own fill): both stored locally only.
 */
export type FillOrigin = 'upstream' | 'shared' | 'peer';

/** Device and inode of the open index file, to notice when it was deleted or replaced. */
interface FileIdentity {
  dev: number;
  ino: number;
}

function identityOf(file: string): FileIdentity | undefined {
  try {
    const stat = statSync(file);
    return { dev: stat.dev, ino: stat.ino };
  } catch {
    return undefined;
  }
}

/** Manifest bytes kept in memory for the hot path (manifests are small; 64 MiB holds thousands). */
const MANIFEST_MEMORY_BYTES = 64 * 1024 * 1024;
/** How often buffered access times are written to SQLite. */
const TOUCH_FLUSH_MS = 5_000;
/**
 * Blobs evicted per batch: their rows go in one transaction, then their files are unlinked in the thread
 * pool while requests are served. A row costs 50–150 µs to delete on a busy disk (its index pages, the WAL
 * and its checkpoints), so 64 keep a batch to a few milliseconds.
 */
const EVICT_BATCH = 64;
/**
 * How often the index's WAL is checkpointed (from a worker thread), and after how many eviction batches a
 * pass waits for one too. A batch adds about 1 MB of WAL frames; a pass that went on while the checkpoint
 * ran left it behind, the WAL grew to hundreds of MB, and the write that restarted it truncated it to
 * journal_size_limit on the event loop: 100–250 ms of freeing page cache in the kernel, measured with perf
 * in the middle of a pass. Waiting keeps the WAL to about 16 batches, below the limit, so it is never cut.
 */
const CHECKPOINT_MS = 1_000;
/** Unlinks an eviction pass runs at once: half of libuv's default thread pool of 4. */
const UNLINK_LANES = 2;
const CHECKPOINT_EVERY_BATCHES = 16;
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
 * A manifest held in memory, with the time its last hit was noted for the LRU: a hit within
 * TOUCH_RESOLUTION_MS of it notes nothing, without asking the index's per-digest memo (a Map of up to
 * 100,000 digests, whose lookups cost more as it fills: profiled on a million-row index).
 */
interface HeldManifest {
  manifest: CachedManifest;
  notedAt: number;
}

/**
 * The local store: SQLite index + content-addressed files. Owns single-flight fills, pinning of
 * blobs being served, LRU eviction to `maxSize`, and crash cleanup. Does no network I/O.
 *
 * Storage that fails at run time never fails a request: a write that fails is recorded in `health`
 * and the content is served without being kept; a deleted storage directory is recreated (with a new
 * index.db) when a write or a probe meets it.
 */
export class Cache {
  readonly store: BlobStore;
  readonly health: StorageHealth;
  private db: Db;
  private currentIndex: CacheIndex;
  private readonly indexPath: string;
  /** The open index file, or undefined while the index is an in-memory stand-in (storage unwritable at start). */
  private indexFile: FileIdentity | undefined;
  private readonly fills = new Map<string, BlobFill>();
  /** Completion of every fill in flight (stored or discarded), for drain(). */
  private readonly settling = new Set<Promise<void>>();
  private readonly pins = new Map<string, number>();
  private readonly manifests: LRUCache<string, HeldManifest>;
  /** Tag rows in memory (write-through to SQLite), so a tag hit costs no query. */
  private readonly tags = new Memo<string, TagRow>(100_000);
  /** (registry, repository, digest) links known to exist; cleared when a blob is forgotten. */
  private readonly linked = new Memo<string, true>(100_000);
  /**
   * The host's cache size as last read from the index's usage row, which every process over this index keeps
   * (read again after each fill and eviction batch; kept for when the index cannot be read).
   */
  private totalBytes: number;
  /** Only one process over this index runs an eviction pass at a time. */
  private readonly lease: IndexLease;
  private readonly flushTimer: NodeJS.Timeout;
  /** A flush of a full batch of access times is queued (touched()). */
  private touchFlushQueued = false;
  /** The shared store behind the local disk, when one is configured. */
  readonly shared: SharedTier | undefined;
  /** Spare fill rings of this cache alone. */
  private readonly rings = new RingPool();
  /** The eviction pass running, if any, and the size it evicts down to. */
  private eviction: { target: number; done: Promise<Evicted> } | undefined;
  /**
   * Checkpoints the index file's WAL off the event loop. Started by the first eviction pass (or an
   * explicit checkpoint()), not at start: its thread costs ~10 MiB, and until a pass deletes rows in
   * bulk SQLite's own auto-checkpoint of small WALs is cheap enough. Undefined until then, and for
   * an in-memory index.
   */
  private checkpointer: Checkpointer | undefined;
  /** The size of the filesystem holding the storage: a blob larger than it is streamed, never written. */
  private readonly capacity: number;
  /** After a fill ran out of space: the free space storage must regain before writes are tried again. */
  private spaceWanted: number | undefined;

  constructor(private readonly options: CacheOptions) {
    this.shared = options.shared;
    this.store = new BlobStore(options.root);
    this.indexPath = path.join(options.root, 'index.db');
    this.health = new StorageHealth(options.root, options.clock, options.logger, options.metrics);
    this.db = this.openAtStart();
    this.indexFile = identityOf(this.indexPath);
    if (this.db.memory) this.indexFile = undefined;
    this.currentIndex = new CacheIndex(this.db);
    this.lease = new IndexLease('eviction', EVICTION_LEASE_MS, options.clock);
    this.totalBytes = this.index.usage().bytes;
    options.metrics.cacheBytes.set(this.totalBytes);
    this.manifests = new LRUCache<string, HeldManifest>({ maxSize: MANIFEST_MEMORY_BYTES, sizeCalculation: (m) => m.manifest.bytes.length + 200 });
    this.flushTimer = setInterval(() => this.wrote('index', () => this.index.flushTouches()), TOUCH_FLUSH_MS);
    this.flushTimer.unref();
    this.capacity = spaceSync(options.root)?.total ?? Number.POSITIVE_INFINITY;
    if (options.maxSizeBytes > this.capacity) {
      options.logger.warn(
        { storage: options.root, maxSize: options.maxSizeBytes, filesystem: this.capacity },
        'storage.maxSize is larger than the filesystem holding storage.path: the disk fills before eviction starts (pullgate then passes through until space is freed); set storage.maxSize below the filesystem size',
      );
    }
  }

  /** The SQLite index (replaced when a deleted index.db is recreated). */
  get index(): CacheIndex {
    return this.currentIndex;
  }

  /** The index through the ContentIndex interface, for maintenance (`cache stats|ls|prune|verify`). */
  get contentIndex(): ContentIndex {
    return SqliteContentIndex.view(this.currentIndex);
  }

  /** The local disk's content through the ContentStore interface, for maintenance. */
  get localStore(): ContentStore {
    return new FsContentStore(this.options.root);
  }

  /**
   * Creates the layout, checks that storage takes a write, clears a crash's temp files and opens the
   * index. When storage cannot be written: throws StorageUnavailable, or (passThroughIfUnwritable)
   * warns and returns an in-memory index, so the server passes through until storage is writable.
   */
  private openAtStart(): Db {
    const { root, logger } = this.options;
    try {
      this.store.ensureLayout();
      this.store.probeSync();
      const removed = this.options.keepTemps === true ? 0 : this.store.removeTemps();
      if (removed > 0) logger.info({ removed }, 'removed partial downloads left by an earlier crash');
      return openDatabase(this.indexPath);
    } catch (err) {
      if (!isStorageError(err)) throw err;
      const reason = isMissing(err) ? 'it does not exist and cannot be created' : storageReason(err);
      const unavailable = new StorageUnavailable(`storage.path ${root} is not writable (${reason})`);
      if (this.options.passThroughIfUnwritable !== true) throw unavailable;
      this.health.failed('layout', err, {}, `${unavailable.message}: serving every request from upstream without caching until it is writable; /readyz answers 503`);
      return openDatabase(':memory:');
    }
  }

  /**
   * The checkpointer for the open index file, started on first use (none for an in-memory index or
   * once the cache is closed): from then on the serving connection leaves checkpoints to its thread.
   * Should the thread fail, the serving connection checkpoints by itself again.
   */
  private ensureCheckpointer(): Checkpointer | undefined {
    if (this.checkpointer !== undefined || this.db.memory || !this.db.open) return this.checkpointer;
    const db = this.db;
    const checkpointer = new Checkpointer(this.indexPath, CHECKPOINT_MS, this.options.logger, () => {
      if (db.open) db.pragma('wal_autocheckpoint = 1000');
    });
    db.pragma('wal_autocheckpoint = 0');
    // drain() waits until its thread has the file open.
    this.track(checkpointer.ready);
    this.checkpointer = checkpointer;
    return checkpointer;
  }

  /** Storage as /readyz reports it: recreates a deleted layout and writes a probe file (concurrent callers share one probe). */
  probeStorage(): Promise<StorageStatus> {
    return this.health.probe(async () => {
      this.repairLayout();
      await this.store.probe();
      if (this.spaceWanted !== undefined) requireSpace(await space(this.options.root), this.spaceWanted);
      this.spaceWanted = undefined;
    });
  }

  /** True when storage may be written now; once a failure is old enough, repairs and probes it first. */
  private writable(): boolean {
    if (this.health.writable) return true;
    if (!this.health.retryDue()) return false;
    try {
      this.repairLayout();
      this.store.probeSync();
      if (this.spaceWanted !== undefined) requireSpace(spaceSync(this.options.root), this.spaceWanted);
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
  private attempt<T>(op: StorageOp, write: () => T, context: Record<string, unknown> = {}): T | undefined {
    if (!this.writable()) return undefined;
    try {
      return write();
    } catch (err) {
      if (!isStorageError(err)) throw err;
      if (isMissing(err) && this.repaired()) {
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
  private wrote(op: StorageOp, write: () => void, context: Record<string, unknown> = {}): boolean {
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
  private repaired(): boolean {
    try {
      this.repairLayout();
      return true;
    } catch (err) {
      this.health.failed('layout', err);
      return false;
    }
  }

  /**
   * Recreates missing directories, and opens index.db again when it is gone or was never opened;
   * throws when it cannot.
   */
  private repairLayout(): void {
    const created = this.store.ensureLayout();
    if (created.length > 0) {
      this.options.logger.warn({ storage: this.options.root, created }, 'storage directories were missing (deleted while running?): recreated them');
    }
    const current = identityOf(this.indexPath);
    const same = this.indexFile !== undefined && current !== undefined && current.dev === this.indexFile.dev && current.ino === this.indexFile.ino;
    if (!same) this.reopenIndex(created.includes(this.store.blobsDir) || this.indexFile === undefined);
  }

  /**
   * Replaces the open index by index.db at its path. When only the file was deleted (the blobs are
   * still there) the open connection, which still reads the deleted file, copies itself there first;
   * when the blobs went with it (or the index lived in memory) the new index starts empty, as the
   * files it described are gone.
   */
  private reopenIndex(blobsGone: boolean): void {
    const previous = this.db;
    const { logger, root } = this.options;
    if (!blobsGone && identityOf(this.indexPath) === undefined) {
      try {
        this.index.flushTouches();
        previous.prepare('VACUUM INTO ?').run(this.indexPath);
      } catch (err) {
        logger.warn({ storage: root, code: storageErrorCode(err) }, 'could not copy the deleted index; starting an empty one');
      }
    }
    const db = openDatabase(this.indexPath);
    const hadCheckpointer = this.checkpointer !== undefined;
    void this.checkpointer?.close();
    this.checkpointer = undefined;
    try {
      previous.close();
    } catch {
      // a connection to a deleted file may fail to checkpoint; it is discarded either way
    }
    this.db = db;
    this.currentIndex = new CacheIndex(db);
    if (hadCheckpointer) this.ensureCheckpointer();
    this.indexFile = identityOf(this.indexPath);
    this.manifests.clear();
    this.tags.clear();
    this.linked.clear();
    this.options.metrics.cacheBytes.set(this.readUsage());
    logger.warn({ storage: root, blobs: this.index.totals().count }, blobsGone ? 'opened a new, empty index.db' : 'index.db was deleted: wrote it again from the open index');
  }

  get maxSizeBytes(): number {
    return this.options.maxSizeBytes;
  }

  /** Bytes of blobs and manifests on this host's storage, counted by every process over the index. */
  get sizeBytes(): number {
    return this.readUsage();
  }

  /** Reads the shared usage row (a prepared one-row read); the last value read when the index cannot be read. */
  private readUsage(): number {
    // A closed cache (a scrape during shutdown) answers what it last read.
    if (!this.db.open) return this.totalBytes;
    try {
      this.totalBytes = this.index.usage().bytes;
    } catch (err) {
      if (!isStorageError(err)) throw err;
    }
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

  /** Records that upstream confirmed (registry, repository) may see the digest, here and in the shared store. */
  link(registry: string, repository: string, digest: string): void {
    this.wrote('index', () => this.index.link(registry, repository, digest));
    if (this.shared !== undefined) this.track(this.shared.link(registry, repository, digest));
  }

  /**
   * True when another replica recorded in the shared store that (registry, repository) may see the
   * digest; the link is then remembered here too. False without a shared store.
   */
  async linkedInShared(registry: string, repository: string, digest: string): Promise<boolean> {
    if (this.shared === undefined || !(await this.shared.isLinked(registry, repository, digest))) return false;
    if (this.index.blob(digest) !== undefined) this.wrote('index', () => this.index.link(registry, repository, digest));
    this.linked.set(repositoryKey(registry, repository, digest), true);
    return true;
  }

  /** Runs background work (an upload) that drain() and close() wait for. */
  private track(work: Promise<unknown>): void {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.settling.add(settled);
    void settled.finally(() => this.settling.delete(settled));
  }

  /** Bytes [start, end] of a stored blob, pinned against eviction until the source is closed; undefined when its file is gone. */
  openRead(digest: string, start: number, end: number): ChunkSource | undefined {
    let fd: number;
    try {
      fd = openSync(this.store.pathOf(digest), 'r');
    } catch (err) {
      if (!isStorageError(err)) throw err;
      const row = this.index.blob(digest);
      if (row !== undefined && isMissing(err)) this.forget(row);
      return undefined;
    }
    this.pin(digest);
    this.touched(digest);
    this.shared?.noteRead(digest);
    return new FileRange(fd, start, end, () => this.unpin(digest));
  }

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
  beginFill(digest: string, body: Readable, size: number | undefined, registry: string, repository: string, origin: FillOrigin = 'upstream'): BlobFill {
    const holder: { fill?: BlobFill } = {};
    const onStorageError = (err: unknown): void => {
      if (holder.fill !== undefined) this.fillUncached(holder.fill, err);
    };
    const fits = size === undefined || size <= this.capacity;
    if (!fits) this.options.logger.info({ digest, size, filesystem: this.capacity }, 'blob larger than the filesystem holding storage.path: streamed, not kept');
    const fill =
      (fits ? this.attempt('fill', () => new BlobFill(digest, this.store.tempPath(digest), size, registry, repository, onStorageError, this.rings), { digest }) : undefined) ??
      new BlobFill(digest, undefined, size, registry, repository, undefined, this.rings);
    holder.fill = fill;
    this.fills.set(digest, fill);
    const settled = fill.run(body).then(
      () => {
        if (origin === 'upstream') this.options.metrics.bytesFetched.inc({ registry }, fill.written);
        this.settle(fill, origin);
      },
      (err: unknown) => {
        if (this.fills.get(digest) === fill) this.fills.delete(digest);
        if (err instanceof DigestMismatch) this.options.metrics.digestMismatches.inc({ registry });
        // A shared object that does not match its digest is removed, so the next pull fetches upstream.
        if (origin === 'shared' && err instanceof DigestMismatch && this.shared !== undefined) this.track(this.shared.discard(digest));
        if (fill.tempPath !== undefined) this.store.discard(fill.tempPath);
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

  /**
   * Writing a fill's temp file failed: the fill streams on from memory to its readers and is not
   * stored. New clients start their own fetch; a full disk gets eviction of as much as the blob needed.
   */
  private fillUncached(fill: BlobFill, err: unknown): void {
    if (this.fills.get(fill.digest) === fill) this.fills.delete(fill.digest);
    this.health.failed('fill', err, { digest: fill.digest, readers: fill.readers });
    if (!isFull(err)) return;
    const needed = fill.size ?? fill.written;
    this.spaceWanted = spaceNeeded(needed, this.capacity);
    this.track(this.evictTo(Math.max(0, this.readUsage() - needed)));
  }

  /**
   * Starts a fill from the shared store when it holds the digest (a local miss): followers join it as
   * they join an upstream fill, the bytes are verified again, and a copy is kept locally. The
   * repository's access is confirmed (`confirmAccess`, which throws when upstream refuses) only once
   * the store is known to hold the digest. Undefined when there is no shared store, it does not hold
   * the digest, or it fails.
   */
  async fillFromShared(digest: string, registry: string, repository: string, confirmAccess: () => Promise<void>): Promise<BlobFill | undefined> {
    if (this.shared === undefined) return undefined;
    const found = await this.shared.open(digest);
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
    return this.beginFill(digest, found.body, found.size, registry, repository, 'shared');
  }

  /** A manifest by digest from the shared store (verified), kept locally and linked to the repository asking; undefined when absent. */
  async manifestFromShared(digest: string, registry: string, repository: string): Promise<CachedManifest | undefined> {
    const found = await this.shared?.manifest(digest);
    if (found === undefined) return undefined;
    this.keepManifest(found, registry, repository);
    return found;
  }

  /** Uploads a blob just stored locally (pinned meanwhile) and the links upstream confirmed for it. */
  private share(digest: string, file: string, size: number, links: { registry: string; repository: string }[], afterwards?: () => void): void {
    const shared = this.shared;
    if (shared === undefined) return;
    this.pin(digest);
    this.track(
      shared
        .upload(digest, file, size)
        .then(async (stored) => {
          if (stored) for (const link of links) await shared.link(link.registry, link.repository, digest);
        })
        .finally(() => {
          this.unpin(digest);
          afterwards?.();
        }),
    );
  }

  private settle(fill: BlobFill, origin: FillOrigin): void {
    const { digest, tempPath } = fill;
    const links = [{ registry: fill.registry, repository: fill.repository }, ...fill.links];
    /** True once the temp file was handed to an upload that removes it afterwards. */
    let handedOver = false;
    try {
      if (!fill.caching || tempPath === undefined) return;
      if (fill.written > this.options.maxSizeBytes) {
        this.options.logger.info({ digest, size: fill.written }, 'blob larger than storage.maxSize: streamed, not kept');
        if (origin === 'upstream' && this.shared !== undefined) {
          handedOver = true;
          this.share(digest, tempPath, fill.written, links, () => this.store.discard(tempPath));
        }
        return;
      }
      try {
        this.store.commit(tempPath, digest);
      } catch (err) {
        if (!isStorageError(err)) throw err;
        // A temp file deleted with its directory is not a failing disk: recreate the layout and go on.
        if (isMissing(err) && this.repaired()) this.options.logger.info({ digest }, 'the storage directory was deleted during a fill: blob streamed, not kept');
        else this.health.failed('commit', err, { digest });
        return;
      }
      const now = this.options.clock.now();
      const indexed = this.wrote('index', () => {
        this.index.addBlob({ digest, size: fill.written, kind: 'blob', media_type: null, created_at: now }, { registry: fill.registry, repository: fill.repository });
        for (const link of fill.links) this.index.link(link.registry, link.repository, digest);
      });
      if (!indexed) {
        this.removeFile(digest);
        return;
      }
      this.grew();
      if (origin === 'upstream') this.share(digest, this.store.pathOf(digest), fill.written, links);
      else if (this.shared !== undefined) for (const link of links) this.track(this.shared.link(link.registry, link.repository, digest));
    } catch (err) {
      this.options.logger.error({ digest, err }, 'could not store a verified blob');
    } finally {
      if (tempPath !== undefined && !handedOver) this.store.discard(tempPath);
      if (this.fills.get(digest) === fill) this.fills.delete(digest);
    }
  }

  /** Removes a stored file that could not be indexed, so no file is left that nothing accounts for. */
  private removeFile(digest: string): void {
    try {
      this.store.remove(digest);
    } catch {
      // storage is failing; `cache verify` adopts or removes what is left
    }
  }

  /**
   * Stores a verified manifest (file + index + link) and keeps its bytes in memory; stores nothing
   * locally when storage fails. With a shared store it is uploaded there too, with its link.
   */
  putManifest(manifest: CachedManifest, registry: string, repository: string): void {
    const shared = this.shared;
    if (shared !== undefined) {
      this.track(
        shared.uploadBytes(manifest.digest, manifest.bytes).then(async (stored) => {
          if (stored) await shared.link(registry, repository, manifest.digest);
        }),
      );
    }
    this.keepManifest(manifest, registry, repository);
  }

  /** Stores a verified manifest locally (file + index + link) and keeps its bytes in memory. */
  private keepManifest(manifest: CachedManifest, registry: string, repository: string): void {
    const { digest } = manifest;
    const known = this.index.blob(digest);
    // A row written here has this access time; a row already there has an older one, which the next hit notes.
    let notedAt = Number.NEGATIVE_INFINITY;
    if (known === undefined || !this.store.exists(digest)) {
      if (!this.wrote('manifest', () => this.store.put(digest, manifest.bytes), { digest })) return;
      const now = this.options.clock.now();
      const indexed = this.wrote('index', () => {
        this.index.addBlob({ digest, size: manifest.bytes.length, kind: 'manifest', media_type: manifest.mediaType, created_at: now }, { registry, repository });
      });
      if (!indexed) {
        this.removeFile(digest);
        return;
      }
      if (known === undefined) this.grew();
      notedAt = now;
    } else if (!this.wrote('index', () => this.index.link(registry, repository, digest))) {
      return;
    }
    this.manifests.set(digest, { manifest, notedAt });
  }

  /** A stored manifest by digest, from memory or disk. */
  manifest(digest: string): CachedManifest | undefined {
    const held = this.manifests.get(digest);
    if (held !== undefined) {
      const now = this.options.clock.now();
      if (now - held.notedAt >= TOUCH_RESOLUTION_MS) {
        held.notedAt = now;
        this.touched(digest);
      }
      this.shared?.noteRead(digest);
      return held.manifest;
    }
    // One read, no existence check first (a miss here is the hot path of a large index): a row whose
    // file is gone is dropped, as lookup() would.
    const row = this.index.blob(digest);
    if (row?.kind !== 'manifest') return undefined;
    let bytes: Buffer | undefined;
    try {
      bytes = this.store.readExactly(digest, row.size);
    } catch (err) {
      if (isMissing(err)) {
        this.options.logger.warn({ digest }, 'index row without file: dropped');
        this.forget(row);
      }
      return undefined;
    }
    if (bytes === undefined) {
      // Cut short (a crash of the disk, a hand edit): never answered as the manifest, fetched again.
      this.options.logger.warn({ digest, size: row.size }, 'index row with a file shorter than its size: dropped');
      this.forget(row);
      return undefined;
    }
    const manifest = { digest, mediaType: row.media_type ?? 'application/vnd.oci.image.manifest.v1+json', bytes };
    this.manifests.set(digest, { manifest, notedAt: this.options.clock.now() });
    this.touched(digest);
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
    if (!this.wrote('index', () => this.index.putTag(registry, repository, tag, row))) return;
    this.tags.set(repositoryKey(registry, repository, tag), row);
  }

  /**
   * After a fill or a manifest was indexed: reads the host's total (every worker's fills count) and starts
   * an eviction pass when it is over the budget (the worker that holds the lease runs it).
   */
  private grew(): void {
    const total = this.readUsage();
    this.options.metrics.cacheBytes.set(total);
    if (total > this.options.maxSizeBytes) this.track(this.evictTo(this.options.maxSizeBytes));
  }

  /**
   * Buffers an access time for LRU; once TOUCH_BATCH wait, they are written right after this turn of the
   * event loop instead of at the next flush tick, which keeps each write transaction short.
   */
  private touched(digest: string): void {
    if (!this.index.touch(digest, this.options.clock.now()) || this.touchFlushQueued) return;
    this.touchFlushQueued = true;
    setImmediate(() => {
      this.touchFlushQueued = false;
      if (this.db.open) this.wrote('index', () => this.index.flushTouches());
    });
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
    this.forgetAll([row]);
  }

  /**
   * Drops rows (and their memos) in one index transaction; the total shrinks by the rows that were still
   * there, which are returned. Undefined while the index cannot be written (the rows and their sizes stay).
   */
  private forgetAll(rows: readonly BlobRow[]): BlobRow[] | undefined {
    if (rows.length === 0) return [];
    for (const row of rows) this.manifests.delete(row.digest);
    // Links of these digests may be gone with them; forgetting is rare, so the memo starts over.
    this.linked.clear();
    // In digest order, so neighbouring deletions share the pages of the digest indexes.
    const deleted = this.attempt('index', () => new Set(this.index.deleteBlobs(rows.map((row) => row.digest).sort())));
    if (deleted === undefined) return undefined;
    const forgotten = rows.filter((row) => deleted.has(row.digest));
    // The usage row lost their sizes in the same transaction (triggers).
    this.options.metrics.cacheBytes.set(this.readUsage());
    return forgotten;
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
    const result: Evicted = { evicted: 0, freed: 0 };
    try {
      while (this.readUsage() > pass.target) {
        const taken = this.leaseStep(() => this.lease.take(this.index));
        if (taken === false) {
          result.busy = true;
          break;
        }
        let reached = false;
        try {
          reached = await this.evictInBatches(pass, result, taken === true);
        } finally {
          this.leaseStep(() => {
            this.lease.release(this.index);
            return true;
          });
        }
        if (!reached) break;
      }
    } finally {
      if (result.evicted > 0) {
        this.options.metrics.evictions.inc(result.evicted);
        this.options.logger.info({ evicted: result.evicted, freed: result.freed, size: this.totalBytes, target: pass.target }, 'evicted least recently used blobs');
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
    if (!this.health.writable) return undefined;
    try {
      return step();
    } catch (err) {
      if (!isStorageError(err)) throw err;
      this.health.failed('index', err);
      return undefined;
    }
  }

  /**
   * Evicts in batches while this process holds the lease (or, `leased` false, while the index could not be
   * written to take it), adding to `result`; true when the total reached the target.
   */
  private async evictInBatches(pass: { target: number }, result: Evicted, leased: boolean): Promise<boolean> {
    let after: RowPosition | undefined;
    let batches = 0;
    const checkpointer = this.ensureCheckpointer();
    for (let total = this.readUsage(); total > pass.target; total = this.readUsage()) {
      if (leased && this.leaseStep(() => this.lease.keep(this.index)) === false) {
        // Lost: this process stalled past the lease and another took it.
        result.busy = true;
        return false;
      }
      if (++batches % CHECKPOINT_EVERY_BATCHES === 0) await checkpointer?.request();
      // Keyset pages: pinned rows are passed over, and rows touched meanwhile move behind the position.
      const rows = this.index.page('lru', after, EVICT_BATCH);
      const last = rows[rows.length - 1];
      if (last === undefined) return false;
      after = last;
      const victims: BlobRow[] = [];
      let projected = total;
      for (const row of rows) {
        if (projected <= pass.target) break;
        if (this.pins.has(row.digest)) continue;
        victims.push(row);
        projected -= row.size;
      }
      // Rows first: from here a request misses and fetches again, and a fill of the same digest starts
      // long after these unlinks are done. A file whose unlink fails is left for `cache verify` to adopt.
      // Another worker reading one of these files keeps its open descriptor: the unlink does not cut it.
      const forgotten = this.forgetAll(victims);
      // While the index cannot be written (a full disk) the files still go, as that frees the space; their
      // rows stay, counted in the total, until a lookup finds them without a file. The pass ends there.
      const gone = forgotten ?? victims;
      result.evicted += gone.length;
      for (const row of gone) result.freed += row.size;
      const failed = await this.removeFiles(gone);
      if (failed || forgotten === undefined) return false;
    }
    return true;
  }

  /**
   * Unlinks the files of forgotten rows in the thread pool, UNLINK_LANES at a time so that the pool's other
   * threads stay free for the reads of requests served meanwhile; true when storage failed (recorded).
   */
  private async removeFiles(rows: readonly BlobRow[]): Promise<boolean> {
    const outcomes: PromiseSettledResult<void>[] = new Array<PromiseSettledResult<void>>(rows.length);
    let next = 0;
    const lane = async (): Promise<void> => {
      for (let i = next++; i < rows.length; i = next++) {
        const row = rows[i] as BlobRow;
        outcomes[i] = await this.store.removeInBackground(row.digest).then(
          (): PromiseSettledResult<void> => ({ status: 'fulfilled', value: undefined }),
          (reason: unknown): PromiseSettledResult<void> => ({ status: 'rejected', reason }),
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(UNLINK_LANES, rows.length) }, lane));
    const failure = outcomes.findIndex((outcome) => outcome.status === 'rejected');
    const outcome = outcomes[failure];
    if (outcome === undefined || outcome.status !== 'rejected') return false;
    const err: unknown = outcome.reason;
    if (!isStorageError(err)) throw err;
    this.health.failed('evict', err, { digest: rows[failure]?.digest });
    return true;
  }

  /** Writes buffered access times and closes the index. */
  async close(): Promise<void> {
    await this.drain();
    await this.shared?.close();
    clearInterval(this.flushTimer);
    this.wrote('index', () => this.index.flushTouches());
    this.db.close();
    await this.checkpointer?.close();
  }

  /** Checkpoints the index's WAL now (off the event loop, starting the thread); undefined for an in-memory or closed index. */
  checkpoint(): Promise<CheckpointResult | undefined> {
    return this.ensureCheckpointer()?.request() ?? Promise.resolve(undefined);
  }
}
