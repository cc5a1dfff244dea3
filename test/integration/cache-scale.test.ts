import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cache } from '../../src/cache/cache.js';
import { openDatabase } from '../../src/storage/database.js';
import { cacheStats } from '../../src/cache/maintenance.js';
import { listCache } from '../../src/cli/cache-commands.js';
import { createLogger } from '../../src/core/deps.js';
import { Metrics } from '../../src/core/metrics.js';
import { FakeClock } from '../helpers/fake-clock.js';

const ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const ROWS = 200_000;
const MANIFESTS = 1_000;
const SIZE = 1_000;
const T0 = 1_767_225_600_000;
const digestOf = (i: number): string => `sha256:${i.toString(16).padStart(64, '0')}`;

/** 200,000 rows (the last MANIFESTS of them manifests), written straight into index.db; row i was last read at T0 + i s. */
function writeIndex(root: string): void {
  const db = openDatabase(path.join(root, 'index.db'));
  const blob = db.prepare('INSERT INTO blobs (digest, size, kind, media_type, created_at, last_access) VALUES (?, ?, ?, ?, ?, ?)');
  const link = db.prepare('INSERT INTO links (registry, repository, digest) VALUES (?, ?, ?)');
  const tag = db.prepare('INSERT INTO tags (registry, repository, tag, digest, media_type, validated_at) VALUES (?, ?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (let i = 0; i < ROWS; i++) {
      const manifest = i >= ROWS - MANIFESTS;
      blob.run(digestOf(i), SIZE, manifest ? 'manifest' : 'blob', manifest ? 'application/vnd.oci.image.manifest.v1+json' : null, T0, T0 + i * 1000);
      link.run('r.example', `team/r${i % 100}`, digestOf(i));
    }
    for (let t = 0; t < MANIFESTS; t++) tag.run('r.example', `team/r${t % 100}`, `t${t}`, digestOf(ROWS - 1 - t), 'application/vnd.oci.image.manifest.v1+json', T0);
  })();
  db.close();
}

/** Counts the lines written to it; keeps the first two and the last. */
class LineCounter extends Writable {
  lines = 0;
  first: string[] = [];
  last = '';
  private rest = '';

  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    const parts = (this.rest + chunk.toString()).split('\n');
    this.rest = parts.pop() ?? '';
    for (const line of parts) {
      if (this.first.length < 2) this.first.push(line);
      this.last = line;
      this.lines++;
    }
    done();
  }
}

describe(`cache maintenance on an index of ${ROWS.toLocaleString('en')} rows`, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-scale-'));
  let cache: Cache;
  beforeAll(() => {
    writeIndex(dir);
    cache = new Cache({ root: dir, maxSizeBytes: 2 ** 40, clock: new FakeClock(), logger: createLogger('silent'), metrics: new Metrics() });
    // Writing 200,000 rows takes ~3 s alone and several times that on a busy 2-core CI machine.
  }, 120_000);
  afterAll(async () => {
    await cache.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('cache stats answers from aggregates', async () => {
    const stats = await cacheStats(cache);
    expect(stats).toMatchObject({ blobs: ROWS - MANIFESTS, manifests: MANIFESTS, bytes: ROWS * SIZE, tags: MANIFESTS, oldestAccess: T0, newestAccess: T0 + (ROWS - 1) * 1000 });
  });

  it('cache ls streams every row, header first, most recently used first', async () => {
    const out = new LineCounter();
    await listCache(cache, out);
    expect(out.lines).toBe(ROWS + 1);
    expect(out.first[0]).toBe('DIGEST\tKIND\tSIZE\tLAST ACCESS\tREPOSITORIES');
    expect(out.first[1]).toBe(`${digestOf(ROWS - 1)}\tmanifest\t1000B\t${new Date(T0 + (ROWS - 1) * 1000).toISOString()}\tr.example/team/r99`);
    expect(out.last.startsWith(`${digestOf(0)}\tblob\t`)).toBe(true);
  });

  it('the `cache stats` command prints the counts', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli.ts'), 'cache', 'stats'], {
      cwd: ROOT,
      env: { ...process.env, PULLGATE_CONFIG: '', PULLGATE_STORAGE: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
    expect(stdout).toContain(`blobs:     ${ROWS - MANIFESTS}\n`);
    expect(stdout).toContain(`manifests: ${MANIFESTS}\n`);
  });

  it('an eviction pass over 100,000 rows runs in batches and lets the event loop turn between them', async () => {
    let turns = 0;
    let evicting = true;
    const tick = (): void => {
      turns++;
      if (evicting) setImmediate(tick);
    };
    setImmediate(tick);
    const target = (ROWS - 100_000) * SIZE;
    const pass = cache.evictTo(target);
    // A second call during the pass joins it.
    expect(cache.evictTo(target + SIZE)).toBe(pass);
    const result = await pass;
    evicting = false;
    expect(result).toEqual({ evicted: 100_000, freed: 100_000 * SIZE });
    expect(cache.sizeBytes).toBe(target);
    // The least recently used went first.
    expect(cache.index.blob(digestOf(99_999))).toBeUndefined();
    expect(cache.index.blob(digestOf(100_000))).toBeDefined();
    expect(cache.index.linksOf(digestOf(0))).toEqual([]);
    // 100,000 rows in batches of 64: the loop turned between every two batches.
    expect(turns).toBeGreaterThanOrEqual(Math.floor(100_000 / 64));
    // The pass waited for its checkpoints, so the WAL (whose file keeps its largest size) never grew near
    // journal_size_limit (64 MiB), past which the write that restarts it truncates it on the event loop.
    // (Measured: 5.9 MiB; 553 MiB when the pass did not wait.)
    const wal = statSync(path.join(dir, 'index.db-wal')).size;
    expect(wal, `WAL after the pass: ${(wal / 2 ** 20).toFixed(1)} MiB`).toBeLessThan(32 * 2 ** 20);
  });
});
