import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Clock } from '../core/deps.js';
import { digestAlgorithm } from '../routing/reference.js';
import { type ContentInfo, type ContentStore, listAll } from './content-store.js';

export interface StoreStats {
  objects: number;
  bytes: number;
  oldest: number | undefined;
  newest: number | undefined;
}

/** Counts what a content store holds, from its listing. */
export async function storeStats(store: ContentStore): Promise<StoreStats> {
  const stats: StoreStats = { objects: 0, bytes: 0, oldest: undefined, newest: undefined };
  for await (const item of listAll(store)) {
    stats.objects++;
    stats.bytes += item.size;
    stats.oldest = Math.min(stats.oldest ?? item.modifiedAt, item.modifiedAt);
    stats.newest = Math.max(stats.newest ?? item.modifiedAt, item.modifiedAt);
  }
  return stats;
}

export interface StoreProblem {
  digest: string;
  problem: string;
  repaired: boolean;
}

/** Hashes a stream with the algorithm `digest` names; the digest its bytes have, and how many there were. */
export async function hashStream(stream: Readable, digest: string): Promise<{ actual: string; size: number }> {
  const algorithm = digestAlgorithm(digest);
  const hash = createHash(algorithm);
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { actual: `${algorithm}:${hash.digest('hex')}`, size };
}

/** Re-hashes one stored object; undefined when it is gone. */
async function hashObject(store: ContentStore, item: ContentInfo): Promise<{ actual: string; size: number } | undefined> {
  const stream = await store.openRead(item.digest);
  return stream === undefined ? undefined : hashStream(stream, item.digest);
}

/**
 * Re-hashes every object of a store; an object whose bytes do not match its digest is deleted (the
 * next pull fetches it again). `onChecked` is called per object, for progress.
 */
export async function verifyStore(store: ContentStore, onChecked: (item: ContentInfo) => void = () => undefined): Promise<{ checked: number; problems: StoreProblem[] }> {
  const problems: StoreProblem[] = [];
  let checked = 0;
  for await (const item of listAll(store)) {
    checked++;
    onChecked(item);
    let result: { actual: string; size: number } | undefined;
    try {
      result = await hashObject(store, item);
    } catch (err) {
      problems.push({ digest: item.digest, problem: `unreadable: ${err instanceof Error ? err.message : String(err)}`, repaired: false });
      continue;
    }
    if (result === undefined || result.actual === item.digest) continue;
    try {
      await store.delete(item.digest);
      problems.push({ digest: item.digest, problem: `content hashes to ${result.actual} (${result.size} bytes): removed`, repaired: true });
    } catch (err) {
      problems.push({ digest: item.digest, problem: `content hashes to ${result.actual}; removing it failed: ${err instanceof Error ? err.message : String(err)}`, repaired: false });
    }
  }
  return { checked, problems };
}

/** Deletes objects not written or refreshed for `maxAgeMs` (the shared store's space policy), as the listing goes. */
export async function pruneStore(store: ContentStore, maxAgeMs: number, clock: Clock): Promise<{ deleted: number; freed: number }> {
  const cutoff = clock.now() - maxAgeMs;
  let deleted = 0;
  let freed = 0;
  // Listing pages start after the last digest seen, so deleting behind the listing does not disturb it.
  for await (const item of listAll(store)) {
    if (item.modifiedAt >= cutoff) continue;
    await store.delete(item.digest);
    deleted++;
    freed += item.size;
  }
  return { deleted, freed };
}
