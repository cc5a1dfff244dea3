import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp, buildServices } from '../../src/app/app.js';
import { Cache } from '../../src/cache/cache.js';
import { loadConfigText } from '../../src/config/load.js';
import { createLogger, type Deps } from '../../src/core/deps.js';
import { StorageUnavailable } from '../../src/core/errors.js';
import { Metrics } from '../../src/core/metrics.js';
import { FakeRegistry, makeImage, sha256, type FakeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';

const MiB = 1024 * 1024;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-storage-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs mount(8); returns why it failed, or undefined. */
function mount(args: string[]): string | undefined {
  const result = spawnSync('mount', args, { encoding: 'utf8' });
  if (result.error) return result.error.message;
  return result.status === 0 ? undefined : `mount ${args.join(' ')}: ${result.stderr.trim() || `exit ${result.status}`}`;
}

/** Mounts a tmpfs of `size` at a fresh directory (unmounted after the test); throws when it cannot. */
function tmpfs(size: string): string {
  const dir = tempDir();
  const failed = mount(['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  if (failed !== undefined) throw new Error(failed);
  cleanups.push(() => void spawnSync('umount', ['-l', dir]));
  return dir;
}

function remount(dir: string, mode: 'ro' | 'rw'): void {
  const failed = mount(['-o', `remount,${mode}`, dir]);
  if (failed !== undefined) throw new Error(failed);
}

/**
 * Lays a read-only bind mount of `dir` over itself (a remount would be refused while the index is
 * open for writing): new opens through the path fail with EROFS, as on a disk remounted read-only.
 * Returns the function that lifts it.
 */
function readOnlyOver(dir: string): () => void {
  const failed = mount(['--bind', dir, dir]) ?? mount(['-o', 'remount,bind,ro', dir]);
  if (failed !== undefined) throw new Error(failed);
  let lifted = false;
  const lift = (): void => {
    if (!lifted) spawnSync('umount', [dir]);
    lifted = true;
  };
  cleanups.push(lift);
  return lift;
}

/** Why real mounts cannot be used here (not root, no CAP_SYS_ADMIN, no mount binary), or undefined when they can. */
const cannotMount = ((): string | undefined => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-mount-probe-'));
  try {
    const failed = mount(['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
    if (failed === undefined) spawnSync('umount', [dir]);
    return failed;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();
if (cannotMount !== undefined) {
  console.warn(`storage-failure.test: the read-only and disk-full tests need real mounts and do NOT run here: ${cannotMount}`);
}

interface Mirror {
  fake: FakeRegistry;
  app: FastifyInstance;
  cache: Cache;
  clock: FakeClock;
  logs: string[];
  storage: string;
}

/** pullgate in-process on `storage` (any directory, also a mount point), with a fake upstream. */
async function mirror(storage: string): Promise<Mirror> {
  const clock = new FakeClock();
  const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
  const logs: string[] = [];
  const dispatcher = new Agent({ keepAliveTimeout: 1000 });
  const deps: Deps = { clock, dispatcher, logger: createLogger('debug', { write: (line: string) => logs.push(line) }), env: {} };
  const config = loadConfigText(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\nstorage: { path: ${JSON.stringify(storage)} }\n`, {}, 'test', storage);
  const services = buildServices(config, deps);
  const app = buildApp(config, deps, services);
  cleanups.push(async () => {
    await app.close();
    await dispatcher.close();
    await fake.stop();
  });
  return { fake, app, cache: services.cache, clock, logs, storage };
}

function layerOf(image: FakeImage, size: number): [string, Buffer] {
  const found = [...image.blobs.entries()].find(([, bytes]) => bytes.length === size);
  if (!found) throw new Error(`no ${size}-byte layer`);
  return found;
}

function blobGets(fake: FakeRegistry, digest: string): number {
  return fake.seen.filter((s) => s.method === 'GET' && s.path.endsWith(`/blobs/${digest}`)).length;
}

async function metric(m: Mirror, pattern: RegExp): Promise<string | undefined> {
  const text = (await m.app.pullgate.metricsText()).body;
  return text.split('\n').find((line) => pattern.test(line));
}

describe('storage deleted while running', () => {
  it('recreates the layout and a new index, serves the request that met the hole from upstream, and caches again', async () => {
    const m = await mirror(path.join(tempDir(), 'data'));
    const image = m.fake.add(makeImage('team/app', '1', 2, 300_000));
    const [a, b] = [...image.blobs.keys()].filter((digest) => image.blobs.get(digest)?.length === 300_000);
    if (a === undefined || b === undefined) throw new Error('image too small');
    expect((await m.app.inject({ url: `/v2/team/app/blobs/${a}` })).statusCode).toBe(200);
    await m.cache.drain();

    rmSync(m.storage, { recursive: true, force: true });
    const cold = await m.app.inject({ url: `/v2/team/app/blobs/${b}` });
    expect(cold.statusCode).toBe(200);
    expect(sha256(cold.rawPayload)).toBe(b);
    await m.cache.drain();
    expect(existsSync(path.join(m.storage, 'index.db'))).toBe(true);
    // b was cached in the recreated layout: no second upstream GET.
    expect(sha256((await m.app.inject({ url: `/v2/team/app/blobs/${b}` })).rawPayload)).toBe(b);
    expect(blobGets(m.fake, b)).toBe(1);
    // a went with the directory: fetched again, whole.
    const again = await m.app.inject({ url: `/v2/team/app/blobs/${a}` });
    expect(again.statusCode).toBe(200);
    expect(sha256(again.rawPayload)).toBe(a);
    expect(blobGets(m.fake, a)).toBe(2);
    const manifest = await m.app.inject({ url: '/v2/team/app/manifests/1', headers: { accept: image.mediaType } });
    expect(manifest.statusCode).toBe(200);
    const ready = await m.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(await metric(m, /^pullgate_storage_writable /)).toBe('pullgate_storage_writable 1');
  });

  it('gives a fill in flight its whole body when the directory goes under it, and recovers on the next request', async () => {
    const m = await mirror(path.join(tempDir(), 'data'));
    const image = m.fake.add(makeImage('team/app', '1', 1, 6 * MiB));
    const [digest, bytes] = layerOf(image, 6 * MiB);
    let release = (): void => undefined;
    m.fake.faults.holdBlobs = new Promise<void>((resolve) => (release = resolve));
    const base = await m.app.listen({ host: '127.0.0.1', port: 0 });
    const pending = request(`${base}/v2/team/app/blobs/${digest}`);
    while (m.cache.inflight(digest)?.readers !== 1) await new Promise((resolve) => setImmediate(resolve));
    rmSync(m.storage, { recursive: true, force: true });
    release();
    const res = await pending;
    expect(res.statusCode).toBe(200);
    expect(Buffer.from(await res.body.arrayBuffer()).equals(bytes)).toBe(true);
    await m.cache.drain();
    m.fake.faults.holdBlobs = undefined;
    const next = await m.app.inject({ url: `/v2/team/app/blobs/${digest}` });
    expect(next.rawPayload.equals(bytes)).toBe(true);
    await m.cache.drain();
    expect(m.cache.lookup(digest)).toBeDefined();
    expect((await m.app.inject({ url: '/readyz' })).statusCode).toBe(200);
  });

  it('writes a deleted index.db again from the open index, so the blobs on disk stay known', async () => {
    const m = await mirror(path.join(tempDir(), 'data'));
    const image = m.fake.add(makeImage('team/app', '1', 1, 100_000));
    const [digest] = layerOf(image, 100_000);
    await m.app.inject({ url: `/v2/team/app/blobs/${digest}` });
    await m.cache.drain();
    for (const name of readdirSync(m.storage).filter((n) => n.startsWith('index.db'))) rmSync(path.join(m.storage, name));
    expect((await m.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    expect(existsSync(path.join(m.storage, 'index.db'))).toBe(true);
    await m.app.close();
    // A fresh process on the same directory still knows the blob.
    const reopened = new Cache({ root: m.storage, maxSizeBytes: 1 << 30, clock: m.clock, logger: createLogger('silent'), metrics: new Metrics() });
    expect(reopened.lookup(digest)?.size).toBe(100_000);
    await reopened.close();
  });
});

describe('storage paths that cannot work', () => {
  it('refuses /proc and /sys at once instead of spinning in mkdir', () => {
    const open = (root: string): Cache => new Cache({ root, maxSizeBytes: 1 << 20, clock: new FakeClock(), logger: createLogger('silent'), metrics: new Metrics() });
    expect(() => open('/proc/pullgate-test')).toThrow(/storage.path \/proc\/pullgate-test is on \/proc, a virtual file system/);
    expect(() => open('/sys/pullgate/data')).toThrow(StorageUnavailable);
  });
});

describe.runIf(cannotMount === undefined)('read-only storage (real mounts)', () => {
  it('at run time: serves cold blobs and manifests from upstream, keeps serving cached ones, answers /readyz 503, and recovers', async () => {
    const m = await mirror(tmpfs('64m'));
    const image = m.fake.add(makeImage('team/app', '1', 2, 200_000));
    const [a, b] = [...image.blobs.keys()].filter((digest) => image.blobs.get(digest)?.length === 200_000);
    if (a === undefined || b === undefined) throw new Error('image too small');
    await m.app.inject({ url: `/v2/team/app/blobs/${a}` });
    await m.cache.drain();

    const writable = readOnlyOver(m.storage);
    const cold = await m.app.inject({ url: `/v2/team/app/blobs/${b}` });
    expect(cold.statusCode).toBe(200);
    expect(sha256(cold.rawPayload)).toBe(b);
    const manifest = await m.app.inject({ url: '/v2/team/app/manifests/1', headers: { accept: image.mediaType } });
    expect(manifest.statusCode).toBe(200);
    expect(manifest.headers['docker-content-digest']).toBe(image.digest);
    expect(sha256((await m.app.inject({ url: `/v2/team/app/blobs/${a}` })).rawPayload)).toBe(a);
    expect(blobGets(m.fake, a)).toBe(1);
    await m.cache.drain();
    expect(m.cache.lookup(b)).toBeUndefined();
    const ready = await m.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ status: 'storage not writable', storage: { writable: false, error: { code: 'EROFS', reason: 'read-only file system' } } });
    expect((await m.app.inject({ method: 'HEAD', url: '/readyz' })).statusCode).toBe(503);
    expect(await metric(m, /^pullgate_storage_writable /)).toBe('pullgate_storage_writable 0');
    expect(await metric(m, /^pullgate_storage_errors_total\{op="fill"\}/)).toBe('pullgate_storage_errors_total{op="fill"} 1');
    expect(m.logs.filter((line) => line.includes('storage is not writable'))).toHaveLength(1);

    writable();
    m.clock.advance(30_000);
    expect((await m.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    await m.app.inject({ url: `/v2/team/app/blobs/${b}` });
    await m.cache.drain();
    await m.app.inject({ url: `/v2/team/app/blobs/${b}` });
    expect(blobGets(m.fake, b)).toBe(2);
    expect(await metric(m, /^pullgate_storage_writable /)).toBe('pullgate_storage_writable 1');
  });

  it('at start: says the path is not writable, serves from upstream, and starts caching once it is writable', async () => {
    const mountPoint = tmpfs('16m');
    remount(mountPoint, 'ro');
    const storage = path.join(mountPoint, 'data');
    // The cache commands refuse with a clear message.
    expect(() => new Cache({ root: storage, maxSizeBytes: 1 << 20, clock: new FakeClock(), logger: createLogger('silent'), metrics: new Metrics() })).toThrow(
      `storage.path ${storage} is not writable (read-only file system)`,
    );
    const m = await mirror(storage);
    expect(m.logs.some((line) => line.includes(`storage.path ${storage} is not writable (read-only file system)`))).toBe(true);
    const image = m.fake.add(makeImage('team/app', '1', 1, 100_000));
    const [digest] = layerOf(image, 100_000);
    const cold = await m.app.inject({ url: `/v2/team/app/blobs/${digest}` });
    expect(cold.statusCode).toBe(200);
    expect(sha256(cold.rawPayload)).toBe(digest);
    expect((await m.app.inject({ url: '/readyz' })).statusCode).toBe(503);

    remount(mountPoint, 'rw');
    m.clock.advance(30_000);
    expect((await m.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    expect(existsSync(path.join(storage, 'index.db'))).toBe(true);
    await m.app.inject({ url: `/v2/team/app/blobs/${digest}` });
    await m.cache.drain();
    await m.app.inject({ url: `/v2/team/app/blobs/${digest}` });
    expect(blobGets(m.fake, digest)).toBe(2);
  });
});

describe.runIf(cannotMount === undefined)('disk full during a fill (8 MiB tmpfs)', () => {
  it('streams the whole blob to every client of the fill, caches nothing, evicts, reports it, stays full while the disk is, and resumes when space returns', async () => {
    const mountPoint = tmpfs('8m');
    // Someone else's data on the same filesystem: 5 of its 8 MiB.
    const other = path.join(mountPoint, 'other-data');
    writeFileSync(other, Buffer.alloc(5 * MiB, 1));
    const m = await mirror(path.join(mountPoint, 'data'));
    const small = m.fake.add(makeImage('team/small', '1', 1, 1 * MiB));
    const [smallDigest] = layerOf(small, 1 * MiB);
    await m.app.inject({ url: `/v2/team/small/blobs/${smallDigest}` });
    await m.cache.drain();
    expect(m.cache.lookup(smallDigest)).toBeDefined();

    // 3 MiB do not fit in what is left (about 2 MiB), nor after the small blob is evicted (about 3 MiB less the index).
    const image = m.fake.add(makeImage('team/big', '1', 1, 3 * MiB));
    const [digest, bytes] = layerOf(image, 3 * MiB);
    let release = (): void => undefined;
    m.fake.faults.holdBlobs = new Promise<void>((resolve) => (release = resolve));
    const base = await m.app.listen({ host: '127.0.0.1', port: 0 });
    const clients = Array.from({ length: 3 }, () => request(`${base}/v2/team/big/blobs/${digest}`));
    while (m.cache.inflight(digest)?.readers !== 3) await new Promise((resolve) => setImmediate(resolve));
    release();
    const bodies = await Promise.all(
      clients.map(async (pending) => {
        const res = await pending;
        expect(res.statusCode).toBe(200);
        return Buffer.from(await res.body.arrayBuffer());
      }),
    );
    for (const body of bodies) expect(body.equals(bytes)).toBe(true);
    expect(blobGets(m.fake, digest)).toBe(1);
    await m.cache.drain();
    expect(m.cache.lookup(digest)).toBeUndefined();
    expect(readdirSync(path.join(m.storage, 'tmp'))).toEqual([]);
    // Eviction was tried: the small blob made room.
    expect(m.cache.lookup(smallDigest)).toBeUndefined();
    expect(await metric(m, /^pullgate_evictions_total /)).toBe('pullgate_evictions_total 1');
    const ready = await m.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ storage: { writable: false, error: { code: 'ENOSPC', op: 'fill' } } });
    expect(await metric(m, /^pullgate_storage_errors_total\{op="fill"\}/)).toBe('pullgate_storage_errors_total{op="fill"} 1');
    expect(m.logs.filter((line) => line.includes('storage is not writable'))).toHaveLength(1);

    // While storage is failing a new pull is passed through at once, whole.
    const during = await m.app.inject({ url: `/v2/team/big/blobs/${digest}` });
    expect(during.rawPayload.equals(bytes)).toBe(true);
    expect(blobGets(m.fake, digest)).toBe(2);

    // The retry interval passes, but the disk still has less free than the blob that failed: a probe file
    // would fit, yet /readyz keeps saying full instead of flipping to ready until the next fill fails.
    m.clock.advance(30_000);
    const still = await m.app.inject({ url: '/readyz' });
    expect(still.statusCode).toBe(503);
    expect(still.json()).toMatchObject({ storage: { writable: false, error: { code: 'ENOSPC' } } });
    expect(m.logs.filter((line) => line.includes('storage is writable again'))).toHaveLength(0);

    // Space returns: the next probe finds it, and the blob is cached on its next pull.
    rmSync(other);
    m.clock.advance(30_000);
    expect((await m.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    expect(m.logs.filter((line) => line.includes('storage is writable again'))).toHaveLength(1);
    await m.app.inject({ url: `/v2/team/big/blobs/${digest}` });
    await m.cache.drain();
    expect(m.cache.lookup(digest)).toBeDefined();
  });

  it('streams a blob larger than the whole filesystem without writing it, and storage stays ready', async () => {
    const m = await mirror(path.join(tmpfs('8m'), 'data'));
    // The default storage.maxSize (20 GiB) is larger than this filesystem: said at start.
    expect(m.logs.some((line) => line.includes('storage.maxSize is larger than the filesystem holding storage.path'))).toBe(true);
    const image = m.fake.add(makeImage('team/huge', '1', 1, 20 * MiB));
    const [digest, bytes] = layerOf(image, 20 * MiB);
    const res = await m.app.inject({ url: `/v2/team/huge/blobs/${digest}` });
    expect(res.statusCode).toBe(200);
    expect(res.rawPayload.equals(bytes)).toBe(true);
    await m.cache.drain();
    expect(m.cache.lookup(digest)).toBeUndefined();
    expect(readdirSync(path.join(m.storage, 'tmp'))).toEqual([]);
    expect(m.logs.some((line) => line.includes('blob larger than the filesystem holding storage.path: streamed, not kept'))).toBe(true);
    expect((await m.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    expect(await metric(m, /^pullgate_storage_errors_total/)).toBeUndefined();
  });
});

describe('health probes', () => {
  it('answers 200 concurrent /readyz probes on healthy storage with 200', async () => {
    const m = await mirror(path.join(tempDir(), 'data'));
    const answers = await Promise.all(Array.from({ length: 200 }, () => m.app.inject({ url: '/readyz' })));
    expect(answers.map((a) => a.statusCode).filter((status) => status !== 200)).toEqual([]);
    expect(readdirSync(path.join(m.storage, 'tmp'))).toEqual([]);
  });

  it('answers HEAD /healthz and HEAD /readyz like GET, without a body', async () => {
    const m = await mirror(path.join(tempDir(), 'data'));
    for (const url of ['/healthz', '/readyz']) {
      const head = await m.app.inject({ method: 'HEAD', url });
      expect(head.statusCode).toBe(200);
      expect(head.headers['content-type']).toBe('application/json');
      expect(head.headers['content-length']).toBe(String('{"status":"ok"}'.length));
      expect(head.rawPayload.length).toBe(0);
    }
  });

  it('reports a storage directory that cannot be recreated as not writable, with the reason, and still serves', async () => {
    const parent = tempDir();
    const m = await mirror(path.join(parent, 'data'));
    rmSync(m.storage, { recursive: true, force: true });
    // A file where the directory was: recreating it fails (ENOTDIR), whoever runs the test.
    writeFileSync(m.storage, 'x');
    const ready = await m.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ status: 'storage not writable', storage: { writable: false, error: { op: 'probe' } } });
    const image = m.fake.add(makeImage('team/app', '1', 1, 50_000));
    const [digest] = layerOf(image, 50_000);
    const cold = await m.app.inject({ url: `/v2/team/app/blobs/${digest}` });
    expect(cold.statusCode).toBe(200);
    expect(sha256(cold.rawPayload)).toBe(digest);
  });
});
