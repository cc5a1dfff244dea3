import { openSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Clock } from '../core/deps.js';
import type { Metrics } from '../core/metrics.js';
import type { BlobRow, CacheIndex, TagRow } from '../storage/cache-index.js';
import type { ContentIndex } from '../storage/content-index.js';
import type { LocalContentStore } from '../storage/content-store.js';
import { FsContentStore } from '../storage/fs-store.js';
import { AccessTimes } from './access-times.js';
import { BackgroundWork } from './background-work.js';
import type { BlobFill } from './blob-fill.js';
import type { CheckpointResult } from './checkpointer.js';
import { type ChunkSource, FileRange } from './chunk-source.js';
import { type Evicted, Evictor } from './evictor.js';
import { type FillOrigin, FillRegistry } from './fill-registry.js';
import { IndexHandle } from './index-handle.js';
import { IndexRecords } from './index-records.js';
import type { CachedManifest } from './manifest-memory.js';
import { Pins } from './pins.js';
import { SharedCopies } from './shared-copies.js';
import type { SharedTier } from './shared-tier.js';
import { isMissing, isStorageError } from './storage-error.js';
import { StorageGuard } from './storage-guard.js';
import { StorageHealth, type StorageStatus } from './storage-health.js';
import { StoredManifests } from './stored-manifests.js';

export type { CachedManifest } from './manifest-memory.js';
export type { Evicted } from './evictor.js';
export type { FillOrigin } from './fill-registry.js';

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
 * The local store, a façade over its parts: the SQLite index and its memos (IndexHandle, IndexRecords),
 * the content files (FsContentStore), single-flight fills (FillRegistry), manifests for the hot path
 * (StoredManifests), LRU eviction to `maxSize` (Evictor), storage failures (StorageGuard, StorageHealth)
 * and the shared tier (SharedCopies). Does no network I/O of its own.
 *
 * Storage that fails at run time never fails a request: a write that fails is recorded in `health`
 * and the content is served without being kept; a deleted storage directory is recreated (with a new
 * index.db) when a write or a probe meets it.
 */
export class Cache {
  readonly store: LocalContentStore;
  readonly health: StorageHealth;
  /** The shared store behind the local disk, when one is configured. */
  readonly shared: SharedTier | undefined;
  private readonly background = new BackgroundWork();
  private readonly pins = new Pins();
  private readonly handle: IndexHandle;
  private readonly guard: StorageGuard;
  private readonly accessTimes: AccessTimes;
  private readonly records: IndexRecords;
  private readonly evictor: Evictor;
  private readonly fills: FillRegistry;
  private readonly manifests: StoredManifests;

  constructor(private readonly options: CacheOptions) {
    const { root, clock, logger, metrics, maxSizeBytes } = options;
    const { background, pins } = this;
    this.shared = options.shared;
    this.store = new FsContentStore(root);
    const store = this.store;
    const health = new StorageHealth(root, clock, logger, metrics);
    this.health = health;
    const handle = new IndexHandle({ root, store, health, background, logger, metrics, ...(options.passThroughIfUnwritable === undefined ? {} : { passThroughIfUnwritable: options.passThroughIfUnwritable }), ...(options.keepTemps === undefined ? {} : { keepTemps: options.keepTemps }) });
    this.handle = handle;
    metrics.cacheBytes.set(handle.lastUsage);
    const guard = new StorageGuard(root, store, health, handle);
    this.guard = guard;
    this.accessTimes = new AccessTimes(handle, guard, clock);
    const records = new IndexRecords(handle, guard, store, logger, metrics);
    this.records = records;
    const evictor = new Evictor({ handle, records, store, health, pins, background, clock, logger, metrics, budget: options });
    this.evictor = evictor;
    const copies = new SharedCopies(this.shared, pins, background);
    this.fills = new FillRegistry({ store, handle, guard, health, evictor, copies, background, clock, logger, metrics, budget: options });
    this.manifests = new StoredManifests({ handle, store, guard, records, accessTimes: this.accessTimes, evictor, copies, clock, logger });
    if (maxSizeBytes > guard.capacity) {
      logger.warn(
        { storage: root, maxSize: maxSizeBytes, filesystem: guard.capacity },
        'storage.maxSize is larger than the filesystem holding storage.path: the disk fills before eviction starts (pullgate then passes through until space is freed); set storage.maxSize below the filesystem size',
      );
    }
  }

  /** The SQLite index (replaced when a deleted index.db is recreated). */
  get index(): CacheIndex {
    return this.handle.index;
  }

  /** The index through the ContentIndex interface, for maintenance (`cache stats|ls|prune|verify`). */
  get contentIndex(): ContentIndex {
    return this.handle.contentIndex;
  }

  /** The local disk's content through the ContentStore interface, for maintenance. */
  get localStore(): LocalContentStore {
    return this.store;
  }

  get maxSizeBytes(): number {
    return this.options.maxSizeBytes;
  }

  /** Bytes of blobs and manifests on this host's storage, counted by every process over the index. */
  get sizeBytes(): number {
    return this.handle.readUsage();
  }

  /** Storage as /readyz reports it: recreates a deleted layout and writes a probe file (concurrent callers share one probe). */
  probeStorage(): Promise<StorageStatus> {
    return this.guard.probe();
  }

  /** The index row of a stored blob or manifest whose file exists; a row without a file is dropped. */
  lookup(digest: string): BlobRow | undefined {
    return this.records.lookup(digest);
  }

  isLinked(registry: string, repository: string, digest: string): boolean {
    return this.records.isLinked(registry, repository, digest);
  }

  /** Records that upstream confirmed (registry, repository) may see the digest, here and in the shared store. */
  link(registry: string, repository: string, digest: string): void {
    this.records.recordLink(registry, repository, digest);
    if (this.shared !== undefined) this.background.track(this.shared.link(registry, repository, digest));
  }

  /**
   * True when another replica recorded in the shared store that (registry, repository) may see the
   * digest; the link is then remembered here too. False without a shared store.
   */
  async linkedInShared(registry: string, repository: string, digest: string): Promise<boolean> {
    if (this.shared === undefined || !(await this.shared.isLinked(registry, repository, digest))) return false;
    if (this.handle.index.blob(digest) !== undefined) this.records.recordLink(registry, repository, digest);
    this.records.rememberLink(registry, repository, digest);
    return true;
  }

  /** Bytes [start, end] of a stored blob, pinned against eviction until the source is closed; undefined when its file is gone. */
  openRead(digest: string, start: number, end: number): ChunkSource | undefined {
    let fd: number;
    try {
      fd = openSync(this.store.pathOf(digest), 'r');
    } catch (err) {
      if (!isStorageError(err)) throw err;
      const row = this.handle.index.blob(digest);
      if (row !== undefined && isMissing(err)) this.records.forget(row);
      return undefined;
    }
    this.pins.pin(digest);
    this.accessTimes.recordAccess(digest);
    this.shared?.noteRead(digest);
    return new FileRange(fd, start, end, () => this.pins.unpin(digest));
  }

  /** The fill in flight for a digest that a new reader can still join from the start, if any. */
  inflight(digest: string): BlobFill | undefined {
    return this.fills.inflight(digest);
  }

  /**
   * Starts writing `body` for `digest` to a temp file; the caller attaches readers at once. On
   * success the blob is stored, indexed and linked to (registry, repository) — unless it is larger
   * than the whole budget or storage cannot be written: then it is streamed but not kept.
   */
  beginFill(digest: string, body: Readable, size: number | undefined, registry: string, repository: string, origin: FillOrigin = 'upstream'): BlobFill {
    return this.fills.begin(digest, body, size, registry, repository, origin);
  }

  /** Takes a verified file (a blob staged by `pullgate import`) into the store without copying it (see FillRegistry.adopt). */
  adoptBlob(file: string, digest: string, size: number, registry: string, repository: string): boolean {
    return this.fills.adopt(file, digest, size, registry, repository);
  }

  /** Resolves once every fill in flight has been stored or discarded, and every upload settled. */
  drain(): Promise<void> {
    return this.background.drain();
  }

  /**
   * Starts a fill from the shared store when it holds the digest (a local miss), once `confirmAccess`
   * (which throws when upstream refuses) passed; undefined when there is no shared store, it does not
   * hold the digest, or it fails.
   */
  fillFromShared(digest: string, registry: string, repository: string, confirmAccess: () => Promise<void>): Promise<BlobFill | undefined> {
    return this.fills.beginFromShared(digest, registry, repository, confirmAccess);
  }

  /** A manifest by digest from the shared store (verified), kept locally and linked to the repository asking; undefined when absent. */
  manifestFromShared(digest: string, registry: string, repository: string): Promise<CachedManifest | undefined> {
    return this.manifests.fromShared(digest, registry, repository);
  }

  /**
   * Stores a verified manifest (file + index + link) and keeps its bytes in memory; stores nothing
   * locally when storage fails. With a shared store it is uploaded there too, with its link.
   */
  putManifest(manifest: CachedManifest, registry: string, repository: string): void {
    this.manifests.put(manifest, registry, repository);
  }

  /** A stored manifest by digest, from memory or disk. */
  manifest(digest: string): CachedManifest | undefined {
    return this.manifests.get(digest);
  }

  tag(registry: string, repository: string, tag: string): TagRow | undefined {
    return this.records.tag(registry, repository, tag);
  }

  putTag(registry: string, repository: string, tag: string, row: TagRow): void {
    this.records.putTag(registry, repository, tag, row);
  }

  /** Evicts least-recently-used blobs nobody is reading until the host's cache holds at most `target` bytes (see Evictor). */
  evictTo(target: number): Promise<Evicted> {
    return this.evictor.evictTo(target);
  }

  /** Writes buffered access times and closes the index. */
  async close(): Promise<void> {
    await this.drain();
    await this.shared?.close();
    this.accessTimes.flushAndStop();
    await this.handle.close();
  }

  /** Checkpoints the index's WAL now (off the event loop, starting the thread); undefined for an in-memory or closed index. */
  checkpoint(): Promise<CheckpointResult | undefined> {
    return this.handle.ensureCheckpointer()?.request() ?? Promise.resolve(undefined);
  }
}
