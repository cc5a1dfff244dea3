// What a tag's first lookup costs at least (issue 14 §4): pullgate's own index and store code, alone in this
// process over a generated index, with nothing else running. A first lookup reads the tag's row; the first
// lookup of a manifest also reads its row and file and writes its access time (checkpointed into index.db,
// which pullgate does on a thread of the same process). These are floors: in the server the same work runs
// between requests, with colder caches.
import { join } from 'node:path';
import { FsContentStore } from '../../src/storage/fs-store.js';
import { CacheIndex, TOUCH_BATCH } from '../../src/storage/cache-index.js';
import { openDatabase } from '../../src/storage/database.js';
import type { SyntheticIndex } from './synthetic-index.js';

export interface LookupFloor {
  /** CPU µs to read a random tag's row. */
  tagRowUs: number;
  /** CPU µs to read a manifest's row, its file, and to write and checkpoint its access time. */
  manifestUs: { row: number; file: number; accessWrite: number };
  lookups: number;
}

/** CPU µs per call of `fn` over `items` (user + system time of this process). */
function cpuPer<T>(items: readonly T[], fn: (item: T) => void): number {
  const before = process.cpuUsage();
  for (const item of items) fn(item);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / Math.max(items.length, 1);
}

/**
 * Measures the floor over `lookups` random tags of `index` (after as many of warm-up), writing access times
 * later than any the index holds. Run it with no server open on the index.
 */
export function measureLookupFloor(index: SyntheticIndex, lookups = 20_000, now = Date.now()): LookupFloor {
  const db = openDatabase(join(index.root, 'index.db'));
  try {
    const cacheIndex = new CacheIndex(db);
    const store = new FsContentStore(index.root);
    const randomTags = (): number[] => Array.from({ length: lookups }, () => Math.floor(Math.random() * index.tags));
    const readTag = (t: number): string => {
      const row = cacheIndex.tag(index.registry, `growth/r${t % index.repositories}`, `t${t}`);
      if (row === undefined) throw new Error(`tag t${t} is missing from the synthetic index`);
      return row.digest;
    };
    randomTags().forEach(readTag);
    const digests = new Set<string>();
    const tagRowUs = cpuPer(randomTags(), (t) => digests.add(readTag(t)));
    const manifests = [...digests];
    const sizes = new Map<string, number>();
    const row = cpuPer(manifests, (digest) => sizes.set(digest, cacheIndex.blob(digest)?.size ?? 0));
    const file = cpuPer(manifests, (digest) => {
      if (store.readExactly(digest, sizes.get(digest) ?? 0) === undefined) throw new Error(`${digest}: file shorter than its row`);
    });
    // Access times as pullgate writes them: buffered, a transaction per TOUCH_BATCH, then a checkpoint.
    let at = now;
    const before = process.cpuUsage();
    for (let i = 0; i < manifests.length; i += TOUCH_BATCH) {
      at += 1;
      for (const digest of manifests.slice(i, i + TOUCH_BATCH)) cacheIndex.touch(digest, at);
      cacheIndex.flushTouches();
      db.pragma('wal_checkpoint(PASSIVE)');
    }
    const used = process.cpuUsage(before);
    return { tagRowUs, manifestUs: { row, file, accessWrite: (used.user + used.system) / Math.max(manifests.length, 1) }, lookups };
  } finally {
    db.close();
  }
}
