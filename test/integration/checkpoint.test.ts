import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { Cache } from '../../src/cache/cache.js';
import { createLogger } from '../../src/core/deps.js';
import { Metrics } from '../../src/core/metrics.js';
import { FakeClock } from '../helpers/fake-clock.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function openCache(): { cache: Cache; root: string } {
  const root = mkdtempSync(path.join(tmpdir(), 'pullgate-checkpoint-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const cache = new Cache({ root, maxSizeBytes: 2 ** 40, clock: new FakeClock(), logger: createLogger('silent'), metrics: new Metrics() });
  return { cache, root };
}

/** Rows enough to fill well over SQLite's default auto-checkpoint of 1,000 WAL pages. */
function addRows(cache: Cache, from: number, count: number): void {
  for (let i = from; i < from + count; i++) {
    cache.index.addBlob({ digest: `sha256:${i.toString(16).padStart(64, '0')}`, size: 1_000, kind: 'blob', media_type: null, created_at: i });
  }
}

function countRows(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM blobs').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('index checkpoints', () => {
  it('once started, leaves the WAL to the checkpoint thread, which copies every committed frame into index.db', async () => {
    const { cache } = openCache();
    cleanups.push(() => cache.close());
    // The thread starts with the first eviction pass or an explicit checkpoint, not with the cache.
    await cache.checkpoint();
    addRows(cache, 0, 20_000);
    const first = await cache.checkpoint();
    // The serving connection did not checkpoint on its own (SQLite's default would have at 1,000 pages).
    expect(first?.log).toBeGreaterThan(1_000);
    expect(first?.checkpointed).toBe(first?.log);
    expect(first?.busy).toBe(0);
  });

  it('loses no committed row when the process dies between checkpoints', async () => {
    const { cache, root } = openCache();
    cleanups.push(() => cache.close());
    addRows(cache, 0, 5_000);
    await cache.checkpoint();
    addRows(cache, 5_000, 5_000);
    // A copy of index.db and its WAL as they are now is what a crash leaves: rows checkpointed and rows only in the WAL.
    const crashed = mkdtempSync(path.join(tmpdir(), 'pullgate-crashed-'));
    cleanups.push(() => rmSync(crashed, { recursive: true, force: true }));
    copyFileSync(path.join(root, 'index.db'), path.join(crashed, 'index.db'));
    copyFileSync(path.join(root, 'index.db-wal'), path.join(crashed, 'index.db-wal'));
    expect(countRows(path.join(crashed, 'index.db'))).toBe(10_000);
  });

  it('stops its thread on close, with every row in index.db and the WAL gone', async () => {
    const { cache, root } = openCache();
    addRows(cache, 0, 3_000);
    await cache.close();
    expect(await cache.checkpoint()).toBeUndefined();
    expect(existsSync(path.join(root, 'index.db-wal'))).toBe(false);
    expect(countRows(path.join(root, 'index.db'))).toBe(3_000);
  });
});
