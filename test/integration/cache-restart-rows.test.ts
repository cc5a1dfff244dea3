import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Cache } from '../../src/cache/cache.js';
import { createLogger } from '../../src/core/deps.js';
import { Metrics } from '../../src/core/metrics.js';
import { FakeClock } from '../helpers/fake-clock.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function manifest(i: number, padding = 0): { digest: string; mediaType: string; bytes: Buffer } {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { n: i }, layers: [], annotations: { padding: 'x'.repeat(padding) } }));
  return { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes };
}

/** Every digest index.db has a row for, read by a second connection. */
function rows(root: string): string[] {
  const db = new Database(path.join(root, 'index.db'), { readonly: true });
  try {
    return (db.prepare('SELECT digest FROM blobs').all() as { digest: string }[]).map((row) => row.digest);
  } finally {
    db.close();
  }
}

describe('the index and the files after a clean close', () => {
  it('agree when manifests are stored again while an eviction pass unlinks their old files', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'pullgate-restart-rows-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const clock = new FakeClock();
    const logs: string[] = [];
    const logger = createLogger('debug', { write: (line: string) => logs.push(line) });
    const cache = new Cache({ root, maxSizeBytes: 2 ** 40, clock, logger, metrics: new Metrics() });
    const manifests = [0, 1, 2, 3, 4].map(manifest);
    for (const m of manifests) {
      cache.putManifest(m, 'reg.example', 'team/app');
      clock.advance(1_000);
    }
    // A large one, used last: the pass evicts the five before it first.
    const large = manifest(99, 100_000);
    cache.putManifest(large, 'reg.example', 'team/app');
    clock.advance(1_000);
    // The unlinks wait until every manifest was fetched and stored again: the two under way (two lanes) and the
    // three not started yet, as hot tags are while a pass evicts them.
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let reached: () => void = () => undefined;
    const unlinking = new Promise<void>((resolve) => (reached = resolve));
    const unlink = cache.store.delete.bind(cache.store);
    // An unlink that starts while its digest has a row takes the file of that row.
    const unlinkedWithRow: string[] = [];
    vi.spyOn(cache.store, 'delete').mockImplementation(async (digest: string) => {
      if (rows(root).includes(digest)) unlinkedWithRow.push(digest);
      reached();
      await gate;
      return unlink(digest);
    });
    const pass = cache.evictTo(large.bytes.length);
    await unlinking;
    for (const m of manifests) cache.putManifest(m, 'reg.example', 'team/app');
    release();
    await pass;
    await cache.close();

    // Every row left has its file, and a restart over the same storage finds nothing to drop.
    for (const digest of rows(root)) expect(existsSync(cache.store.pathOf(digest)), digest).toBe(true);
    const reopened = new Cache({ root, maxSizeBytes: 2 ** 40, clock, logger, metrics: new Metrics() });
    cleanups.push(() => reopened.close());
    for (const m of manifests) reopened.manifest(m.digest);
    expect(logs.filter((line) => line.includes('index row without file'))).toEqual([]);
    expect(unlinkedWithRow).toEqual([]);
  });
});
