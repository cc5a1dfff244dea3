import type { BlobRow } from '../storage/content-index.js';
import { listAll } from '../storage/content-store.js';
import { type StoreStats, hashStream, pruneStore, storeStats, verifyStore } from '../storage/store-maintenance.js';
import type { Clock } from '../core/deps.js';
import type { Cache } from './cache.js';

export interface CacheStats {
  blobs: number;
  manifests: number;
  bytes: number;
  maxBytes: number;
  tags: number;
  oldestAccess: number | undefined;
  newestAccess: number | undefined;
  /** The shared store behind the local disk, when one is configured. */
  shared: (StoreStats & { location: string }) | undefined;
}

/** Counts what the cache holds (SQL aggregates through its ContentIndex), and what its shared store holds. */
export async function cacheStats(cache: Cache): Promise<CacheStats> {
  const index = cache.contentIndex;
  const summary = await index.summary();
  const stats: CacheStats = { ...summary, maxBytes: cache.maxSizeBytes, tags: await index.tagCount(), shared: undefined };
  if (cache.shared !== undefined) stats.shared = { location: cache.shared.location, ...(await storeStats(cache.shared.store)) };
  return stats;
}

export interface VerifyReport {
  checked: number;
  /** Problems found, each with what was done about it. */
  problems: { digest: string; problem: string; repaired: boolean }[];
  /** The shared store's objects checked, when one is configured. */
  sharedChecked: number | undefined;
}

/**
 * Re-hashes every stored object and reconciles index and content, through the ContentStore and
 * ContentIndex interfaces: corrupt or truncated content and index rows without content are removed
 * (the next pull fetches them again); content without a row is adopted when it hashes to its name,
 * else deleted. Then re-hashes the shared store's objects, deleting any that does not match its digest.
 */
export async function verifyCache(cache: Cache, clock: Clock = { now: () => Date.now() }): Promise<VerifyReport> {
  const report: VerifyReport = { checked: 0, problems: [], sharedChecked: undefined };
  const index = cache.contentIndex;
  const store = cache.localStore;
  await index.flushTouches();
  const attempt = async (digest: string, problem: string, repair: () => Promise<void>): Promise<void> => {
    try {
      await repair();
      report.problems.push({ digest, problem, repaired: true });
    } catch (err) {
      report.problems.push({ digest, problem: `${problem}; repair failed: ${(err as Error).message}`, repaired: false });
    }
  };
  // A merge of two listings in digest order (index rows and stored files), so neither is held in memory.
  const rows = index.blobs('digest')[Symbol.asyncIterator]();
  const nextRow = async (): Promise<BlobRow | undefined> => {
    const next = await rows.next();
    return next.done === true ? undefined : next.value;
  };
  const removeRow = (digest: string): Promise<void> => attempt(digest, 'index entry without file: removed', () => index.deleteBlob(digest));
  let pending = await nextRow();
  for await (const item of listAll(store)) {
    const { digest } = item;
    while (pending !== undefined && pending.digest < digest) {
      await removeRow(pending.digest);
      pending = await nextRow();
    }
    const row = pending?.digest === digest ? pending : undefined;
    if (row !== undefined) pending = await nextRow();
    report.checked++;
    let result: { actual: string; size: number };
    try {
      const stream = await store.openRead(digest);
      if (stream === undefined) continue;
      result = await hashStream(stream, digest);
    } catch (err) {
      report.problems.push({ digest, problem: `unreadable: ${(err as Error).message}`, repaired: false });
      continue;
    }
    if (result.actual !== digest) {
      await attempt(digest, `content hashes to ${result.actual}: removed`, async () => {
        await store.delete(digest);
        if (row) await index.deleteBlob(digest);
      });
      continue;
    }
    if (row === undefined) {
      await attempt(digest, 'file without index entry: adopted', () => index.addBlob({ digest, size: result.size, kind: 'blob', media_type: null, created_at: clock.now() }));
    } else if (row.size !== result.size) {
      await attempt(digest, `index says ${row.size} bytes, file has ${result.size}: index corrected`, async () => {
        await index.deleteBlob(digest);
        await index.addBlob({ ...row, size: result.size });
      });
    }
  }
  for (; pending !== undefined; pending = await nextRow()) await removeRow(pending.digest);
  if (cache.shared !== undefined) {
    const shared = await verifyStore(cache.shared.store);
    report.sharedChecked = shared.checked;
    for (const problem of shared.problems) report.problems.push({ ...problem, problem: `${cache.shared.location}: ${problem.problem}` });
  }
  return report;
}

/** `storage.s3.maxAge`: deletes shared objects not read for that long; undefined when there is no shared store or no maxAge. */
export async function pruneShared(cache: Cache, maxAgeMs: number | undefined, clock: Clock): Promise<{ deleted: number; freed: number } | undefined> {
  if (cache.shared === undefined || maxAgeMs === undefined) return undefined;
  return pruneStore(cache.shared.store, maxAgeMs, clock);
}
