import { statSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { Memo } from '../util/memo.js';
import { StorageUnavailable } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import { CacheIndex, type TagRow } from '../storage/cache-index.js';
import type { ContentIndex } from '../storage/content-index.js';
import type { LocalContentStore } from '../storage/content-store.js';
import { openDatabase, type Db } from '../storage/database.js';
import { SqliteContentIndex } from '../storage/sqlite-index.js';
import type { BackgroundWork } from './background-work.js';
import { Checkpointer } from './checkpointer.js';
import { ManifestMemory } from './manifest-memory.js';
import { isMissing, isStorageError, storageErrorCode, storageReason } from './storage-error.js';
import type { StorageHealth } from './storage-health.js';

/**
 * How often the index's WAL is checkpointed (from a worker thread) once an eviction pass started the
 * checkpointer; see Evictor for why a pass also waits for one every few batches.
 */
const CHECKPOINT_MS = 1_000;

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

export interface IndexHandleOptions {
  root: string;
  store: LocalContentStore;
  health: StorageHealth;
  background: BackgroundWork;
  logger: Logger;
  metrics: Metrics;
  /** When storage cannot be written at start: an in-memory index instead of throwing StorageUnavailable. */
  passThroughIfUnwritable?: boolean;
  /** Leave the temp files at start: other processes' fills write there (a worker replacing a dead one). */
  keepTemps?: boolean;
}

/** Memo key of a tag or a link: one name (tag or digest) within one repository of one registry. */
export function repositoryKey(registry: string, repository: string, name: string): string {
  return `${registry}\n${repository}\n${name}`;
}

/**
 * The open SQLite index of the local store and what is remembered from it: opens it at start (in memory
 * while storage is unwritable), reopens it when index.db was deleted, keeps the memos that describe it
 * (manifests, tags, links), the host's usage total, and the WAL checkpointer.
 */
export class IndexHandle {
  private db: Db;
  private current: CacheIndex;
  private readonly indexPath: string;
  /** The open index file, or undefined while the index is an in-memory stand-in (storage unwritable at start). */
  private indexFile: FileIdentity | undefined;
  /** Manifest bytes in memory for the hot path. */
  readonly manifests = new ManifestMemory();
  /** Tag rows in memory (write-through to SQLite), so a tag hit costs no query. */
  readonly tags = new Memo<string, TagRow>(100_000);
  /** (registry, repository, digest) links known to exist; cleared when a blob is forgotten. */
  readonly linked = new Memo<string, true>(100_000);
  /**
   * The host's cache size as last read from the index's usage row, which every process over this index keeps
   * (read again after each fill and eviction batch; kept for when the index cannot be read).
   */
  private totalBytes: number;
  /**
   * Checkpoints the index file's WAL off the event loop. Started by the first eviction pass (or an
   * explicit checkpoint()), not at start: its thread costs ~10 MiB, and until a pass deletes rows in
   * bulk SQLite's own auto-checkpoint of small WALs is cheap enough. Undefined until then, and for
   * an in-memory index.
   */
  private checkpointer: Checkpointer | undefined;

  constructor(private readonly options: IndexHandleOptions) {
    this.indexPath = path.join(options.root, 'index.db');
    this.db = this.openAtStart();
    this.indexFile = this.db.memory ? undefined : identityOf(this.indexPath);
    this.current = new CacheIndex(this.db);
    this.totalBytes = this.current.usage().bytes;
  }

  /** The SQLite index (replaced when a deleted index.db is recreated). */
  get index(): CacheIndex {
    return this.current;
  }

  /** The index through the ContentIndex interface, for maintenance (`cache stats|ls|prune|verify`). */
  get contentIndex(): ContentIndex {
    return SqliteContentIndex.view(this.current);
  }

  /** False once the index is closed. */
  get isOpen(): boolean {
    return this.db.open;
  }

  /** The host's usage total as last read (for messages; readUsage() reads it again). */
  get lastUsage(): number {
    return this.totalBytes;
  }

  /**
   * Creates the layout, checks that storage takes a write, clears a crash's temp files and opens the
   * index. When storage cannot be written: throws StorageUnavailable, or (passThroughIfUnwritable)
   * warns and returns an in-memory index, so the server passes through until storage is writable.
   */
  private openAtStart(): Db {
    const { root, logger, store } = this.options;
    try {
      store.ensureLayout();
      store.probeSync();
      const removed = this.options.keepTemps === true ? 0 : store.removeTemps();
      if (removed > 0) logger.info({ removed }, 'removed partial downloads left by an earlier crash');
      return openDatabase(this.indexPath);
    } catch (err) {
      if (!isStorageError(err)) throw err;
      const reason = isMissing(err) ? 'it does not exist and cannot be created' : storageReason(err);
      const unavailable = new StorageUnavailable(`storage.path ${root} is not writable (${reason})`);
      if (this.options.passThroughIfUnwritable !== true) throw unavailable;
      this.options.health.failed('layout', err, {}, `${unavailable.message}: serving every request from upstream without caching until it is writable; /readyz answers 503`);
      return openDatabase(':memory:');
    }
  }

  /**
   * The checkpointer for the open index file, started on first use (none for an in-memory index or
   * once the cache is closed): from then on the serving connection leaves checkpoints to its thread.
   * Should the thread fail, the serving connection checkpoints by itself again.
   */
  ensureCheckpointer(): Checkpointer | undefined {
    if (this.checkpointer !== undefined || this.db.memory || !this.db.open) return this.checkpointer;
    const db = this.db;
    const checkpointer = new Checkpointer(this.indexPath, CHECKPOINT_MS, this.options.logger, () => {
      if (db.open) db.pragma('wal_autocheckpoint = 1000');
    });
    db.pragma('wal_autocheckpoint = 0');
    // drain() waits until its thread has the file open.
    this.options.background.track(checkpointer.ready);
    this.checkpointer = checkpointer;
    return checkpointer;
  }

  /**
   * Recreates missing directories, and opens index.db again when it is gone or was never opened;
   * throws when it cannot.
   */
  repairLayout(): void {
    const { store, logger, root } = this.options;
    const created = store.ensureLayout();
    if (created.length > 0) {
      logger.warn({ storage: root, created }, 'storage directories were missing (deleted while running?): recreated them');
    }
    const current = identityOf(this.indexPath);
    const same = this.indexFile !== undefined && current !== undefined && current.dev === this.indexFile.dev && current.ino === this.indexFile.ino;
    if (!same) this.reopen(created.includes(store.blobsDir) || this.indexFile === undefined);
  }

  /**
   * Replaces the open index by index.db at its path. When only the file was deleted (the blobs are
   * still there) the open connection, which still reads the deleted file, copies itself there first;
   * when the blobs went with it (or the index lived in memory) the new index starts empty, as the
   * files it described are gone.
   */
  private reopen(blobsGone: boolean): void {
    const previous = this.db;
    const { logger, root } = this.options;
    if (!blobsGone && identityOf(this.indexPath) === undefined) {
      try {
        this.current.flushTouches();
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
    this.current = new CacheIndex(db);
    if (hadCheckpointer) this.ensureCheckpointer();
    this.indexFile = identityOf(this.indexPath);
    this.manifests.clear();
    this.tags.clear();
    this.linked.clear();
    this.options.metrics.cacheBytes.set(this.readUsage());
    logger.warn({ storage: root, blobs: this.current.totals().count }, blobsGone ? 'opened a new, empty index.db' : 'index.db was deleted: wrote it again from the open index');
  }

  /** Reads the shared usage row (a prepared one-row read); the last value read when the index cannot be read. */
  readUsage(): number {
    // A closed cache (a scrape during shutdown) answers what it last read.
    if (!this.db.open) return this.totalBytes;
    try {
      this.totalBytes = this.current.usage().bytes;
    } catch (err) {
      if (!isStorageError(err)) throw err;
    }
    return this.totalBytes;
  }

  /** Closes the index and stops the checkpointer's thread (buffered access times are the caller's to write first). */
  async close(): Promise<void> {
    this.db.close();
    await this.checkpointer?.close();
  }
}
