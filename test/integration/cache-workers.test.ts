import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { Cache } from '../../src/cache/cache.js';
import { CacheIndex } from '../../src/storage/cache-index.js';
import { openDatabase, SCHEMA_VERSION } from '../../src/storage/database.js';
import { IndexLease } from '../../src/cache/index-lease.js';
import { createLogger } from '../../src/core/logging.js';
import { Metrics } from '../../src/core/metrics.js';
import { FakeClock } from '../helpers/fake-clock.js';

// Two Cache instances over one storage directory in one process stand for two workers of `serve --workers`:
// they share index.db (and so its usage row and eviction lease) and nothing else.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const KB = 1000;

function tempRoot(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-cache-workers-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Worker {
  cache: Cache;
  metrics: Metrics;
  logs: string[];
}

function worker(root: string, maxSizeBytes: number, clock: FakeClock): Worker {
  const metrics = new Metrics();
  const logs: string[] = [];
  const cache = new Cache({ root, maxSizeBytes, clock, logger: createLogger('info', { write: (line: string) => logs.push(line) }), metrics });
  cleanups.push(() => cache.close());
  return { cache, metrics, logs };
}

/** Stores `count` distinct 1 kB manifests through `cache`, a clock tick apart (so the LRU order is the order of storing). */
function fill(cache: Cache, clock: FakeClock, name: string, count: number): string[] {
  const digests: string[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = Buffer.alloc(KB, `${name}-${i}-`);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    cache.putManifest({ digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes }, 'reg.example', 'team/app');
    digests.push(digest);
    clock.advance(1);
  }
  return digests;
}

async function counter(metrics: Metrics, name: string): Promise<number> {
  const found = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  return found?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
}

/** SUM(size) over the blob rows, the figure the usage row must always equal. */
function scanned(root: string): number {
  const db = new Database(path.join(root, 'index.db'), { readonly: true });
  try {
    return (db.prepare('SELECT COALESCE(SUM(size), 0) AS bytes FROM blobs').get() as { bytes: number }).bytes;
  } finally {
    db.close();
  }
}

describe('two workers over one index', () => {
  it('leave the running fills\' temp files to a worker that replaces a dead one; a first start clears a crash\'s', () => {
    const root = tempRoot();
    worker(root, 2 ** 40, new FakeClock());
    const running = path.join(root, 'tmp', 'sha256-0123.fill-of-a-running-worker');
    writeFileSync(running, 'partial');
    // The replacement of a dead worker starts while the other worker writes its fill.
    const replacement = new Cache({ root, maxSizeBytes: 2 ** 40, clock: new FakeClock(), logger: createLogger('silent'), metrics: new Metrics(), keepTemps: true });
    cleanups.push(() => replacement.close());
    expect(existsSync(running)).toBe(true);
    // A whole server starting again (every worker) clears what a crash left.
    worker(root, 2 ** 40, new FakeClock());
    expect(existsSync(running)).toBe(false);
  });
  it('count the host total: the fill that takes the shared total over the budget starts a pass that brings it under', async () => {
    const root = tempRoot();
    const clock = new FakeClock();
    const a = worker(root, 150 * KB, clock);
    const b = worker(root, 150 * KB, clock);
    fill(a.cache, clock, 'a', 100);
    // B sees A's fills: each worker reads the host's total, not a count of its own fills.
    expect(b.cache.sizeBytes).toBe(100 * KB);
    fill(b.cache, clock, 'b', 60);
    await Promise.all([a.cache.drain(), b.cache.drain()]);
    // With a count per worker, B (60 kB of its own) would never have evicted and the host would hold 160 kB.
    expect(a.cache.sizeBytes).toBe(b.cache.sizeBytes);
    expect(b.cache.sizeBytes).toBeLessThanOrEqual(150 * KB);
    expect(b.cache.sizeBytes).toBe(scanned(root));
    expect(await counter(b.metrics, 'pullgate_evictions_total')).toBe(10);
    expect(await counter(a.metrics, 'pullgate_evictions_total')).toBe(0);
  });

  it('run one eviction pass at a time: the other finds the lease taken and evicts nothing', async () => {
    const root = tempRoot();
    const clock = new FakeClock();
    const a = worker(root, 1 << 30, clock);
    const b = worker(root, 1 << 30, clock);
    const first = fill(a.cache, clock, 'a', 100);
    fill(b.cache, clock, 'b', 100);
    expect(a.cache.sizeBytes).toBe(200 * KB);
    // Both ask for a pass at once (as two workers whose fills crossed the budget would): A takes the lease and
    // deletes a first batch of 64 rows; B still sees the total over the target, finds the lease taken and returns.
    const [byA, byB] = await Promise.all([a.cache.evictTo(50 * KB), b.cache.evictTo(50 * KB)]);
    expect(byA).toEqual({ evicted: 150, freed: 150 * KB });
    expect(byB).toEqual({ evicted: 0, freed: 0, busy: true });
    expect(b.cache.sizeBytes).toBe(50 * KB);
    expect(scanned(root)).toBe(50 * KB);
    // Least recently used first, across both workers' fills: all of A's and half of B's are gone.
    for (const digest of first) expect(b.cache.lookup(digest)).toBeUndefined();
    expect(a.logs.filter((line) => line.includes('evicted least recently used blobs'))).toHaveLength(1);
    expect(b.logs.filter((line) => line.includes('evicted least recently used blobs'))).toHaveLength(0);
    // The lease was released: B's next pass runs.
    fill(a.cache, clock, 'c', 10);
    expect(await b.cache.evictTo(50 * KB)).toEqual({ evicted: 10, freed: 10 * KB });
  });

  it('let a pass run once the lease of a holder that died has expired, by the injected clock', async () => {
    const root = tempRoot();
    const clock = new FakeClock();
    const b = worker(root, 1 << 30, clock);
    fill(b.cache, clock, 'b', 20);
    // A worker that took the lease and was killed before releasing it.
    const db = openDatabase(path.join(root, 'index.db'));
    cleanups.push(() => {
      db.close();
    });
    const dead = new IndexLease('eviction', 30_000, clock);
    expect(dead.take(new CacheIndex(db))).toBe(true);
    expect(await b.cache.evictTo(10 * KB)).toEqual({ evicted: 0, freed: 0, busy: true });
    expect(b.cache.sizeBytes).toBe(20 * KB);
    clock.advance(29_999);
    expect(await b.cache.evictTo(10 * KB)).toMatchObject({ evicted: 0, busy: true });
    clock.advance(1);
    expect(await b.cache.evictTo(10 * KB)).toEqual({ evicted: 10, freed: 10 * KB });
    expect(b.cache.sizeBytes).toBe(10 * KB);
  });
});

describe('the eviction lease', () => {
  it('is held by one holder, renewed while it works, and lost once it stalls past the expiry', () => {
    const clock = new FakeClock();
    const db = openDatabase(':memory:');
    cleanups.push(() => {
      db.close();
    });
    const index = new CacheIndex(db);
    const a = new IndexLease('eviction', 30_000, clock);
    const b = new IndexLease('eviction', 30_000, clock);
    expect(a.take(index)).toBe(true);
    expect(b.take(index)).toBe(false);
    // A renews every third of the lease while its pass goes on: B cannot take it however long the pass runs.
    for (let i = 0; i < 10; i++) {
      clock.advance(10_000);
      expect(a.keep(index)).toBe(true);
      expect(b.take(index)).toBe(false);
    }
    a.release(index);
    expect(b.take(index)).toBe(true);
    // B stalls past the expiry; A takes the lease, and B finds out at its next renewal.
    clock.advance(30_000);
    expect(a.take(index)).toBe(true);
    expect(b.keep(index)).toBe(false);
    b.release(index);
    expect(b.take(index)).toBe(false);
  });
});

describe('the usage row', () => {
  it('is filled from the rows of an index made by an older pullgate, and kept by every insert and delete after (bytes, rows, manifests, tags)', () => {
    const root = tempRoot();
    const file = path.join(root, 'index.db');
    // Schema version 1, as pullgate wrote it before the usage row existed, with two rows.
    const old = new Database(file);
    old.exec(`CREATE TABLE blobs (digest TEXT PRIMARY KEY, size INTEGER NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
                media_type TEXT, created_at INTEGER NOT NULL, last_access INTEGER NOT NULL);
              CREATE INDEX blobs_last_access ON blobs (last_access);
              CREATE TABLE links (registry TEXT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL REFERENCES blobs (digest) ON DELETE CASCADE,
                PRIMARY KEY (registry, repository, digest)) WITHOUT ROWID;
              CREATE INDEX links_digest ON links (digest);
              CREATE TABLE tags (registry TEXT NOT NULL, repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL,
                validated_at INTEGER NOT NULL, PRIMARY KEY (registry, repository, tag)) WITHOUT ROWID;
              INSERT INTO blobs VALUES ('sha256:aa', 1000, 'blob', NULL, 1, 1), ('sha256:bb', 234, 'manifest', 'x', 2, 2);
              INSERT INTO tags VALUES ('r.example', 'team/app', 'v1', 'sha256:bb', 'x', 2);
              PRAGMA user_version = 1;`);
    old.close();
    const db = openDatabase(file);
    cleanups.push(() => {
      db.close();
    });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    const index = new CacheIndex(db);
    expect(index.usage()).toEqual({ bytes: 1234, count: 2 });
    expect(index.summary()).toMatchObject({ blobs: 1, manifests: 1, bytes: 1234, oldestAccess: 1, newestAccess: 2 });
    expect(index.tagCount()).toBe(1);
    index.addBlob({ digest: 'sha256:dd', size: 10, kind: 'manifest', media_type: 'x', created_at: 3 });
    index.putTag('r.example', 'team/app', 'v2', { digest: 'sha256:dd', media_type: 'x', validated_at: 3 });
    // Revalidating a tag, or pointing it elsewhere, updates its row: not a new tag.
    index.putTag('r.example', 'team/app', 'v1', { digest: 'sha256:dd', media_type: 'x', validated_at: 4 });
    expect(index.summary()).toMatchObject({ blobs: 1, manifests: 2, bytes: 1244 });
    expect(index.tagCount()).toBe(2);
    index.deleteBlobs(['sha256:dd']);
    expect(index.summary()).toMatchObject({ blobs: 1, manifests: 1, bytes: 1234 });
    index.addBlob({ digest: 'sha256:cc', size: 66, kind: 'blob', media_type: null, created_at: 3 });
    // Recording a digest again (a second fill of it) changes nothing.
    index.addBlob({ digest: 'sha256:cc', size: 66, kind: 'blob', media_type: null, created_at: 4 });
    expect(index.usage()).toEqual({ bytes: 1300, count: 3 });
    index.deleteBlobs(['sha256:aa', 'sha256:zz']);
    expect(index.usage()).toEqual({ bytes: 300, count: 2 });
    expect(index.usage().bytes).toBe(index.totals().bytes);
    // Opening it again migrates nothing more.
    openDatabase(file).close();
    expect(index.usage()).toEqual({ bytes: 300, count: 2 });
  });
});
