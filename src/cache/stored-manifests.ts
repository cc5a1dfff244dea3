import type { Logger } from 'pino';
import type { Clock } from '../core/deps.js';
import { TOUCH_RESOLUTION_MS } from '../storage/cache-index.js';
import type { LocalContentStore } from '../storage/content-store.js';
import type { AccessTimes } from './access-times.js';
import type { Evictor } from './evictor.js';
import type { IndexHandle } from './index-handle.js';
import type { IndexRecords } from './index-records.js';
import type { CachedManifest, ManifestMemory } from './manifest-memory.js';
import type { SharedCopies } from './shared-copies.js';
import type { SharedTier } from './shared-tier.js';
import { isMissing } from './storage-error.js';
import type { StorageGuard } from './storage-guard.js';

export interface StoredManifestsOptions {
  handle: IndexHandle;
  store: LocalContentStore;
  guard: StorageGuard;
  records: IndexRecords;
  accessTimes: AccessTimes;
  evictor: Evictor;
  copies: SharedCopies;
  clock: Clock;
  logger: Logger;
}

/**
 * Manifests by digest for the hot path: from memory, else read from disk once and held; verified manifests
 * are stored (file, index row, link), held in memory and, with a shared store, uploaded.
 */
export class StoredManifests {
  /** Held by the index handle, which clears it when it opens a new index. */
  private readonly memory: ManifestMemory;
  private readonly clock: Clock;
  private readonly shared: SharedTier | undefined;

  constructor(private readonly options: StoredManifestsOptions) {
    // Fields of their own, so a hit on the hot path reads them without going through `options`.
    this.memory = options.handle.manifests;
    this.clock = options.clock;
    this.shared = options.copies.tier;
  }

  /** A stored manifest by digest, from memory or disk. */
  get(digest: string): CachedManifest | undefined {
    const held = this.memory.get(digest);
    if (held !== undefined) {
      const now = this.clock.now();
      held.hitAt = now;
      if (now - held.notedAt >= TOUCH_RESOLUTION_MS) {
        held.notedAt = now;
        this.options.accessTimes.recordAccess(digest);
      }
      this.shared?.noteRead(digest);
      return held.manifest;
    }
    // One read, no existence check first (a miss here is the hot path of a large index): a row whose
    // file is gone is dropped, as lookup() would.
    const row = this.options.handle.index.blob(digest);
    if (row?.kind !== 'manifest') return undefined;
    let bytes: Buffer | undefined;
    try {
      bytes = this.options.store.readExactly(digest, row.size);
    } catch (err) {
      if (isMissing(err)) {
        this.options.logger.warn({ digest }, 'index row without file: dropped');
        this.options.records.forget(row);
      }
      return undefined;
    }
    if (bytes === undefined) {
      // Cut short (a crash of the disk, a hand edit): never answered as the manifest, fetched again.
      this.options.logger.warn({ digest, size: row.size }, 'index row with a file shorter than its size: dropped');
      this.options.records.forget(row);
      return undefined;
    }
    const manifest = { digest, mediaType: row.media_type ?? 'application/vnd.oci.image.manifest.v1+json', bytes };
    const now = this.options.clock.now();
    this.memory.set(digest, { manifest, notedAt: now, hitAt: now });
    this.options.accessTimes.recordAccess(digest);
    return manifest;
  }

  /**
   * Stores a verified manifest (file + index + link) and keeps its bytes in memory; stores nothing
   * locally when storage fails. With a shared store it is uploaded there too, with its link.
   */
  put(manifest: CachedManifest, registry: string, repository: string): void {
    this.options.copies.uploadManifest(manifest.digest, manifest.bytes, registry, repository);
    this.keep(manifest, registry, repository);
  }

  /** A manifest by digest from the shared store (verified), kept locally and linked to the repository asking; undefined when absent. */
  async fromShared(digest: string, registry: string, repository: string): Promise<CachedManifest | undefined> {
    const found = await this.options.copies.tier?.manifest(digest);
    if (found === undefined) return undefined;
    this.keep(found, registry, repository);
    return found;
  }

  /** Stores a verified manifest locally (file + index + link) and keeps its bytes in memory. */
  private keep(manifest: CachedManifest, registry: string, repository: string): void {
    const { handle, store, guard } = this.options;
    const { digest } = manifest;
    const known = handle.index.blob(digest);
    // A row written here has this access time; a row already there has an older one, which the next hit notes.
    let notedAt = Number.NEGATIVE_INFINITY;
    if (known === undefined || !store.exists(digest)) {
      if (!guard.recordWrite('manifest', () => store.putBytesSync(digest, manifest.bytes), { digest })) return;
      const now = this.options.clock.now();
      const indexed = guard.recordWrite('index', () => {
        handle.index.addBlob({ digest, size: manifest.bytes.length, kind: 'manifest', media_type: manifest.mediaType, created_at: now }, { registry, repository });
      });
      if (!indexed) {
        guard.removeUnindexed(digest);
        return;
      }
      // An eviction pass that forgot this digest's old row may have unlinked the file just written (its
      // unlink was under way): written again, so the row never points at nothing (see Evictor.removeFiles).
      if (!store.exists(digest) && !guard.recordWrite('manifest', () => store.putBytesSync(digest, manifest.bytes), { digest })) return;
      if (known === undefined) this.options.evictor.recordGrowth();
      notedAt = now;
    } else if (!this.options.records.recordLink(registry, repository, digest)) {
      return;
    }
    // Stored, not served yet: hitAt is set by the first hit (a manifest fetched once is not kept from eviction).
    this.memory.set(digest, { manifest, notedAt, hitAt: Number.NEGATIVE_INFINITY });
  }
}
