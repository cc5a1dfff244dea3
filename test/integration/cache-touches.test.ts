import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { Cache } from '../../src/cache/cache.js';
import { CacheIndex, TOUCH_BATCH, TOUCH_RESOLUTION_MS } from '../../src/storage/cache-index.js';
import { openDatabase } from '../../src/storage/database.js';
import { createLogger } from '../../src/core/deps.js';
import { Metrics } from '../../src/core/metrics.js';
import { FakeClock } from '../helpers/fake-clock.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Access times as index.db holds them, read by a second connection (what another worker or `cache ls` sees). */
function lastAccess(root: string): Map<string, number> {
  const db = new Database(path.join(root, 'index.db'), { readonly: true });
  try {
    const rows = db.prepare('SELECT digest, last_access FROM blobs').all() as { digest: string; last_access: number }[];
    return new Map(rows.map((row) => [row.digest, row.last_access]));
  } finally {
    db.close();
  }
}

describe('access times', () => {
  it('are written in a batch of their own once TOUCH_BATCH wait, not held for the flush tick', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'pullgate-touches-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const clock = new FakeClock();
    const cache = new Cache({ root, maxSizeBytes: 2 ** 40, clock, logger: createLogger('silent'), metrics: new Metrics() });
    cleanups.push(() => cache.close());
    const digests: string[] = [];
    for (let i = 0; i < TOUCH_BATCH; i++) {
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, i }));
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      cache.putManifest({ digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes }, 'r.example', 'team/app');
      digests.push(digest);
    }
    const stored = clock.now();
    clock.advance(60_000);
    // One short of a batch: buffered (the 5 s tick would write them; no timer runs in this test).
    for (const digest of digests.slice(1)) expect(cache.manifest(digest)).toBeDefined();
    await turn();
    expect([...lastAccess(root).values()].every((at) => at === stored)).toBe(true);
    // The batch is full: written right after this turn of the event loop.
    expect(cache.manifest(digests[0] as string)).toBeDefined();
    await turn();
    const after = lastAccess(root);
    expect(digests.every((digest) => after.get(digest) === stored + 60_000)).toBe(true);
  });

  it('of a manifest held in memory are written once per TOUCH_RESOLUTION_MS of hits', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'pullgate-touches-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const clock = new FakeClock();
    const cache = new Cache({ root, maxSizeBytes: 2 ** 40, clock, logger: createLogger('silent'), metrics: new Metrics() });
    cleanups.push(() => cache.close());
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, held: true }));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    cache.putManifest({ digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes }, 'r.example', 'team/app');
    const stored = clock.now();
    const hitAt = (ms: number): number | undefined => {
      clock.advance(ms - clock.now());
      expect(cache.manifest(digest)?.bytes.equals(bytes)).toBe(true);
      cache.index.flushTouches();
      return lastAccess(root).get(digest);
    };
    expect(hitAt(stored + TOUCH_RESOLUTION_MS - 1)).toBe(stored);
    expect(hitAt(stored + TOUCH_RESOLUTION_MS)).toBe(stored + TOUCH_RESOLUTION_MS);
    expect(hitAt(stored + 2 * TOUCH_RESOLUTION_MS - 1)).toBe(stored + TOUCH_RESOLUTION_MS);
    expect(hitAt(stored + 2 * TOUCH_RESOLUTION_MS)).toBe(stored + 2 * TOUCH_RESOLUTION_MS);
  });

  it('are written again for a digest only once TOUCH_RESOLUTION_MS have passed since the last written one', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'pullgate-touches-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const db = openDatabase(path.join(root, 'index.db'));
    cleanups.push(() => {
      db.close();
    });
    const index = new CacheIndex(db);
    const digest = `sha256:${'a'.repeat(64)}`;
    const t0 = 1_767_225_600_000;
    index.addBlob({ digest, size: 10, kind: 'blob', media_type: null, created_at: t0 });
    const readAt = (at: number): number => {
      index.touch(digest, at);
      index.flushTouches();
      return index.blob(digest)?.last_access ?? Number.NaN;
    };
    expect(readAt(t0 + 1_000)).toBe(t0 + 1_000);
    // Read again soon after: the row keeps the access time it has.
    expect(readAt(t0 + 1_000 + TOUCH_RESOLUTION_MS - 1)).toBe(t0 + 1_000);
    expect(readAt(t0 + 1_000 + TOUCH_RESOLUTION_MS)).toBe(t0 + 1_000 + TOUCH_RESOLUTION_MS);
    // A forgotten digest stored again starts over.
    index.deleteBlob(digest);
    index.addBlob({ digest, size: 10, kind: 'blob', media_type: null, created_at: t0 });
    expect(readAt(t0 + 2_000 + TOUCH_RESOLUTION_MS)).toBe(t0 + 2_000 + TOUCH_RESOLUTION_MS);
  });
});
