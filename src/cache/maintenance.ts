import { createHash } from 'node:crypto';
import { createReadStream, rmSync, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { digestAlgorithm } from '../routing/reference.js';
import type { Cache } from './cache.js';

export interface CacheStats {
  blobs: number;
  manifests: number;
  bytes: number;
  maxBytes: number;
  tags: number;
  oldestAccess: number | undefined;
  newestAccess: number | undefined;
}

/** Counts what the cache holds. */
export function cacheStats(cache: Cache): CacheStats {
  const rows = cache.index.all();
  return {
    blobs: rows.filter((row) => row.kind === 'blob').length,
    manifests: rows.filter((row) => row.kind === 'manifest').length,
    bytes: rows.reduce((sum, row) => sum + row.size, 0),
    maxBytes: cache.maxSizeBytes,
    tags: cache.index.tagCount(),
    oldestAccess: rows.length === 0 ? undefined : Math.min(...rows.map((row) => row.last_access)),
    newestAccess: rows.length === 0 ? undefined : Math.max(...rows.map((row) => row.last_access)),
  };
}

async function hashFile(file: string, digest: string): Promise<string> {
  const algorithm = digestAlgorithm(digest);
  const hash = createHash(algorithm);
  await pipeline(createReadStream(file), hash);
  return `${algorithm}:${hash.digest('hex')}`;
}

export interface VerifyReport {
  checked: number;
  /** Problems found, each with what was done about it. */
  problems: { digest: string; problem: string; repaired: boolean }[];
}

/**
 * Re-hashes every stored file and reconciles index and files: corrupt or truncated files and
 * index rows without a file are removed (the next pull fetches them again); files without a
 * row are adopted when they hash to their name, else deleted.
 */
export async function verifyCache(cache: Cache): Promise<VerifyReport> {
  const report: VerifyReport = { checked: 0, problems: [] };
  const rows = new Map(cache.index.all().map((row) => [row.digest, row]));
  const attempt = (digest: string, problem: string, repair: () => void): void => {
    try {
      repair();
      report.problems.push({ digest, problem, repaired: true });
    } catch (err) {
      report.problems.push({ digest, problem: `${problem}; repair failed: ${(err as Error).message}`, repaired: false });
    }
  };
  for (const { digest, file } of cache.store.files()) {
    report.checked++;
    const row = rows.get(digest);
    rows.delete(digest);
    let actual: string;
    try {
      actual = await hashFile(file, digest);
    } catch (err) {
      report.problems.push({ digest, problem: `unreadable: ${(err as Error).message}`, repaired: false });
      continue;
    }
    if (actual !== digest) {
      attempt(digest, `content hashes to ${actual}: removed`, () => {
        rmSync(file, { force: true });
        if (row) cache.index.deleteBlob(digest);
      });
      continue;
    }
    if (row === undefined) {
      attempt(digest, 'file without index entry: adopted', () => {
        cache.index.addBlob({ digest, size: statSync(file).size, kind: 'blob', media_type: null, created_at: Date.now() });
      });
    } else if (row.size !== statSync(file).size) {
      attempt(digest, `index says ${row.size} bytes, file has ${statSync(file).size}: index corrected`, () => {
        cache.index.deleteBlob(digest);
        cache.index.addBlob({ ...row, size: statSync(file).size });
      });
    }
  }
  for (const digest of rows.keys()) {
    attempt(digest, 'index entry without file: removed', () => cache.index.deleteBlob(digest));
  }
  return report;
}
