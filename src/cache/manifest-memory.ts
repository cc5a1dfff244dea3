import { LRUCache } from 'lru-cache';

/** Manifest bytes kept in memory for the hot path (manifests are small; 64 MiB holds thousands). */
const MANIFEST_MEMORY_BYTES = 64 * 1024 * 1024;

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
export interface HeldManifest {
  manifest: CachedManifest;
  notedAt: number;
  /**
   * The time of its last hit, at every hit (one field written): eviction passes over a manifest hit within
   * TOUCH_RESOLUTION_MS, whose row may show an access up to a minute older than a blob filled since.
   */
  hitAt: number;
}

/**
 * Stored manifests held in memory by digest, least recently used dropped first. An LRUCache itself rather
 * than a wrapper, so a hit on the hot path costs one lookup and no extra call.
 */
export class ManifestMemory extends LRUCache<string, HeldManifest> {
  constructor() {
    super({ maxSize: MANIFEST_MEMORY_BYTES, sizeCalculation: (m) => m.manifest.bytes.length + 200 });
  }
}
