import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { Cache } from '../../src/cache/cache.js';
import { verifyCache } from '../../src/cache/maintenance.js';
import { FakeRegistry, makeImage, sha256, type FakeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const MiB = 1024 * 1024;

async function setup(extraYaml = '', clock = new FakeClock()): Promise<{ fake: FakeRegistry; pg: Harness; cache: Cache }> {
  const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
  cleanups.push(() => fake.stop());
  const pg = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n${extraYaml}`, { clock });
  cleanups.push(() => pg.close());
  const cache = pg.cache;
  return { fake, pg, cache };
}

function layerOf(image: FakeImage, size: number): [string, Buffer] {
  const found = [...image.blobs.entries()].find(([, bytes]) => bytes.length === size);
  if (!found) throw new Error(`no ${size}-byte layer`);
  return found;
}

function blobGets(fake: FakeRegistry, digest: string): number {
  return fake.seen.filter((s) => s.method === 'GET' && s.path.endsWith(`/blobs/${digest}`)).length;
}

describe('blob cache', () => {
  it('fans N concurrent clients out of one upstream GET, every body whole', async () => {
    const { fake, pg, cache } = await setup();
    const image = fake.add(makeImage('team/app', '1', 1, 4 * MiB));
    const [digest, bytes] = layerOf(image, 4 * MiB);
    let release = (): void => undefined;
    fake.faults.holdBlobs = new Promise<void>((resolve) => (release = resolve));
    const base = await pg.listen();
    const clients = Array.from({ length: 12 }, () => request(`${base}/v2/team/app/blobs/${digest}`));
    // Every client is attached before upstream sends a byte.
    while (fake.seen.filter((s) => s.path.endsWith(digest)).length === 0 || cache.inflight(digest)?.readers !== 12) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    release();
    const bodies = await Promise.all(clients.map(async (c) => Buffer.from(await (await c).body.arrayBuffer())));
    for (const body of bodies) expect(body.equals(bytes)).toBe(true);
    expect(blobGets(fake, digest)).toBe(1);
    expect(await pg.app.pullgate.metricsText().then((m) => /pullgate_coalesced_followers_total 11/.test(m.body))).toBe(true);
    const hit = await pg.app.inject({ url: `/v2/team/app/blobs/${digest}` });
    expect(hit.rawPayload.equals(bytes)).toBe(true);
    expect(blobGets(fake, digest)).toBe(1);
  });

  it('finishes the fetch when the first client disconnects, so the next client gets a hit', async () => {
    const { fake, pg, cache } = await setup();
    const image = fake.add(makeImage('team/app', '1', 1, 8 * MiB));
    const [digest, bytes] = layerOf(image, 8 * MiB);
    const base = await pg.listen();
    const controller = new AbortController();
    const first = await request(`${base}/v2/team/app/blobs/${digest}`, { signal: controller.signal });
    for await (const chunk of first.body) {
      expect((chunk as Buffer).length).toBeGreaterThan(0);
      controller.abort();
      break;
    }
    while (cache.inflight(digest) === undefined && cache.lookup(digest) === undefined) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    await cache.drain();
    const second = await pg.app.inject({ url: `/v2/team/app/blobs/${digest}` });
    expect(second.rawPayload.equals(bytes)).toBe(true);
    expect(blobGets(fake, digest)).toBe(1);
  });

  it('aborts the response and caches nothing when upstream content does not match its digest', async () => {
    const { fake, pg, cache } = await setup();
    const image = fake.add(makeImage('team/app', '1', 1, 512 * 1024));
    const [digest] = layerOf(image, 512 * 1024);
    fake.faults.corruptBlob = true;
    const base = await pg.listen();
    const res = await request(`${base}/v2/team/app/blobs/${digest}`);
    if (res.statusCode === 200) {
      await expect(res.body.arrayBuffer()).rejects.toThrow();
    } else {
      expect(res.statusCode).toBe(502);
      await res.body.dump();
    }
    await cache.drain();
    expect(cache.lookup(digest)).toBeUndefined();
    expect(readdirSync(path.join(pg.storage, 'tmp'))).toEqual([]);
    expect((await pg.app.pullgate.metricsText()).body).toMatch(/pullgate_digest_mismatches_total\{registry="reg.example"\} 1/);
  });

  it('answers Range and HEAD from the cache without upstream traffic', async () => {
    const { fake, pg } = await setup();
    const image = fake.add(makeImage('team/app', '1', 1, 100_000));
    const [digest, bytes] = layerOf(image, 100_000);
    await pg.app.inject({ url: `/v2/team/app/blobs/${digest}` });
    const before = fake.seen.length;
    const part = await pg.app.inject({ url: `/v2/team/app/blobs/${digest}`, headers: { range: 'bytes=1000-1999' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe('bytes 1000-1999/100000');
    expect(part.rawPayload.equals(bytes.subarray(1000, 2000))).toBe(true);
    const suffix = await pg.app.inject({ url: `/v2/team/app/blobs/${digest}`, headers: { range: 'bytes=-10' } });
    expect(suffix.rawPayload.equals(bytes.subarray(99_990))).toBe(true);
    const head = await pg.app.inject({ method: 'HEAD', url: `/v2/team/app/blobs/${digest}` });
    expect(Number(head.headers['content-length'])).toBe(100_000);
    const beyond = await pg.app.inject({ url: `/v2/team/app/blobs/${digest}`, headers: { range: 'bytes=200000-' } });
    expect(beyond.statusCode).toBe(416);
    expect(beyond.headers['content-range']).toBe('bytes */100000');
    expect(fake.seen.length).toBe(before);
  });

  it('serves a blob cached for repository A to repository B only after upstream confirms B may see it', async () => {
    const { fake, pg, cache } = await setup();
    const image = fake.add(makeImage('team/a', '1', 1, 10_000));
    const [digest, bytes] = layerOf(image, 10_000);
    await pg.app.inject({ url: `/v2/team/a/blobs/${digest}` });
    // The cache write is detached from the response: wait for it, so B meets a cached blob (the case under test).
    await cache.drain();
    const denied = await pg.app.inject({ url: `/v2/team/b/blobs/${digest}` });
    expect(denied.statusCode).toBe(404);
    expect(denied.json()).toMatchObject({ errors: [{ code: 'BLOB_UNKNOWN' }] });
    fake.add({ ...image, repository: 'team/b' });
    const allowed = await pg.app.inject({ url: `/v2/team/b/blobs/${digest}` });
    expect(allowed.rawPayload.equals(bytes)).toBe(true);
    const heads = (): number => fake.seen.filter((s) => s.method === 'HEAD' && s.path === `/v2/team/b/blobs/${digest}`).length;
    expect(heads()).toBe(2);
    await pg.app.inject({ url: `/v2/team/b/blobs/${digest}` });
    expect(heads()).toBe(2);
    expect(blobGets(fake, digest)).toBe(1);
  });

  it('evicts least recently used blobs to stay within maxSize, and streams without keeping a blob over budget', async () => {
    const clock = new FakeClock();
    const { fake, pg, cache } = await setup('', clock);
    cache['options'].maxSizeBytes = 350_000;
    const image = fake.add(makeImage('team/app', '1', 4, 100_000));
    const layers = [...image.blobs.entries()].filter(([, bytes]) => bytes.length === 100_000).map(([digest]) => digest);
    const [a = '', b = '', c = '', d = ''] = layers;
    for (const digest of [a, b, c]) {
      await pg.app.inject({ url: `/v2/team/app/blobs/${digest}` });
      await cache.drain();
      clock.advance(1000);
    }
    await pg.app.inject({ url: `/v2/team/app/blobs/${a}` }); // a is now the most recently used
    clock.advance(1000);
    await pg.app.inject({ url: `/v2/team/app/blobs/${d}` });
    await cache.drain();
    expect(cache.lookup(b)).toBeUndefined();
    for (const kept of [a, c, d]) expect(cache.lookup(kept)).toBeDefined();
    expect(cache.sizeBytes).toBeLessThanOrEqual(350_000);
    const big = fake.add(makeImage('team/big', '1', 1, 400_000));
    const [bigDigest, bigBytes] = layerOf(big, 400_000);
    const streamed = await pg.app.inject({ url: `/v2/team/big/blobs/${bigDigest}` });
    expect(streamed.rawPayload.equals(bigBytes)).toBe(true);
    await cache.drain();
    expect(cache.lookup(bigDigest)).toBeUndefined();
    expect(readdirSync(path.join(pg.storage, 'tmp'))).toEqual([]);
  });

  it('re-fetches a blob whose file went missing, and verify repairs the index', async () => {
    const { fake, pg, cache } = await setup();
    const image = fake.add(makeImage('team/app', '1', 2, 20_000));
    const [first, second] = [...image.blobs.keys()];
    if (first === undefined || second === undefined) throw new Error('image too small');
    await pg.app.inject({ url: `/v2/team/app/blobs/${first}` });
    await pg.app.inject({ url: `/v2/team/app/blobs/${second}` });
    await cache.drain();
    rmSync(cache.store.pathOf(first));
    const again = await pg.app.inject({ url: `/v2/team/app/blobs/${first}` });
    expect(sha256(again.rawPayload)).toBe(first);
    expect(blobGets(fake, first)).toBe(2);
    await cache.drain();
    writeFileSync(cache.store.pathOf(second), 'corrupted');
    rmSync(cache.store.pathOf(first));
    const report = await verifyCache(cache);
    expect(report.problems.map((p) => [p.digest, p.repaired])).toEqual(
      expect.arrayContaining([
        [second, true],
        [first, true],
      ]),
    );
    expect(cache.index.blob(first)).toBeUndefined();
    expect(cache.index.blob(second)).toBeUndefined();
    expect(existsSync(cache.store.pathOf(second))).toBe(false);
    expect((await verifyCache(cache)).problems).toEqual([]);
  });
});

/**
 * A manifest by digest stored by one process, its file then damaged by `damage` while no process runs, and a
 * new process over the same storage (its memory empty, the index still holding the row).
 */
async function restartedWithDamagedManifest(damage: (file: string, image: FakeImage) => void): Promise<{ fake: FakeRegistry; image: FakeImage; url: string; file: string; again: Harness }> {
  const clock = new FakeClock();
  const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
  cleanups.push(() => fake.stop());
  const yaml = `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n`;
  const first = harness(yaml, { clock });
  cleanups.push(async () => {
    await first.deps.dispatcher.close();
    rmSync(first.storage, { recursive: true, force: true });
  });
  const image = fake.add(makeImage('team/app', '1'));
  const url = `/v2/team/app/manifests/${image.digest}`;
  expect((await first.app.inject({ url, headers: { accept: image.mediaType } })).statusCode).toBe(200);
  await first.cache.drain();
  const file = first.cache.store.pathOf(image.digest);
  await first.app.close();
  damage(file, image);
  const again = harness(yaml, { clock, storage: first.storage });
  cleanups.push(() => again.close());
  return { fake, image, url, file, again };
}

function manifestGets(fake: FakeRegistry, digest: string, since: number): number {
  return fake.seen.slice(since).filter((s) => s.method === 'GET' && s.path.endsWith(`/manifests/${digest}`)).length;
}

describe('manifest cache', () => {
  it('after a restart, a manifest whose file went missing is dropped from the index and fetched again, not answered', async () => {
    const { fake, image, url, file, again } = await restartedWithDamagedManifest((path) => rmSync(path));
    expect(again.cache.index.blob(image.digest)?.kind).toBe('manifest');
    const before = fake.seen.length;
    const res = await again.app.inject({ url, headers: { accept: image.mediaType } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(image.digest);
    expect(manifestGets(fake, image.digest, before)).toBe(1);
    expect(again.logs.some((line) => line.includes('index row without file: dropped'))).toBe(true);
    expect(existsSync(file)).toBe(true);
  });

  it('after a restart, a manifest whose file was cut short is dropped and fetched again, never answered short', async () => {
    const { fake, image, url, again } = await restartedWithDamagedManifest((path, stored) => writeFileSync(path, stored.manifest.subarray(0, stored.manifest.length - 7)));
    const before = fake.seen.length;
    const res = await again.app.inject({ url, headers: { accept: image.mediaType } });
    expect(res.statusCode).toBe(200);
    expect(res.rawPayload.equals(image.manifest)).toBe(true);
    expect(manifestGets(fake, image.digest, before)).toBe(1);
    expect(again.logs.some((line) => line.includes('index row with a file shorter than its size: dropped'))).toBe(true);
    // Stored whole again: the next answer comes from the cache.
    await again.cache.drain();
    const seen = fake.seen.length;
    expect((await again.app.inject({ url, headers: { accept: image.mediaType } })).rawPayload.equals(image.manifest)).toBe(true);
    expect(fake.seen.length).toBe(seen);
  });

  it('answers tags from the cache within tagTTL, revalidates with HEAD after it, and caches digests for good', async () => {
    const clock = new FakeClock();
    const { fake, pg } = await setup('cache: { tagTTL: 5m, staleIfError: 1h }\n', clock);
    const image = fake.add(makeImage('team/app', '1'));
    const get = (): Promise<{ statusCode: number; headers: Record<string, unknown> }> => pg.app.inject({ url: '/v2/team/app/manifests/1', headers: { accept: image.mediaType } });
    expect((await get()).headers['docker-content-digest']).toBe(image.digest);
    const afterFirst = fake.seen.length;
    clock.advance(4 * 60_000);
    await get();
    await pg.app.inject({ method: 'HEAD', url: '/v2/team/app/manifests/1' });
    expect(fake.seen.length).toBe(afterFirst);
    clock.advance(2 * 60_000);
    expect((await get()).statusCode).toBe(200);
    const revalidations = fake.seen.slice(afterFirst);
    expect(revalidations.map((s) => s.method)).toEqual(['HEAD']);
    const byDigest = await pg.app.inject({ url: `/v2/team/app/manifests/${image.digest}` });
    expect(byDigest.statusCode).toBe(200);
    expect(fake.seen.length).toBe(afterFirst + 1);
  });

  it('picks up a moved tag on revalidation', async () => {
    const clock = new FakeClock();
    const { fake, pg } = await setup('cache: { tagTTL: 1m }\n', clock);
    const v1 = fake.add(makeImage('team/app', 'latest'));
    expect((await pg.app.inject({ url: '/v2/team/app/manifests/latest' })).headers['docker-content-digest']).toBe(v1.digest);
    fake.images.splice(fake.images.indexOf(v1), 1);
    const v2 = fake.add(makeImage('team/app', 'latest'));
    clock.advance(61_000);
    expect((await pg.app.inject({ url: '/v2/team/app/manifests/latest' })).headers['docker-content-digest']).toBe(v2.digest);
  });

  it('serves a stale tag at once when upstream is down or answers 429, within staleIfError', async () => {
    const clock = new FakeClock();
    const { fake, pg } = await setup('cache: { tagTTL: 1m, staleIfError: 1h }\n', clock);
    const image = fake.add(makeImage('team/app', '1'));
    await pg.app.inject({ url: '/v2/team/app/manifests/1' });
    clock.advance(2 * 60_000);
    fake.faults = { manifestStatuses: [429], retryAfter: '60' };
    const limited = await pg.app.inject({ url: '/v2/team/app/manifests/1' });
    expect(limited.statusCode).toBe(200);
    expect(limited.headers['docker-content-digest']).toBe(image.digest);
    await fake.stop();
    clock.advance(60_000);
    const started = performance.now();
    for (let i = 0; i < 5; i++) {
      const res = await pg.app.inject({ url: '/v2/team/app/manifests/1' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['docker-content-digest']).toBe(image.digest);
    }
    expect(performance.now() - started).toBeLessThan(2000);
    expect((await pg.app.pullgate.metricsText()).body).toMatch(/pullgate_stale_serves_total\{registry="reg.example"\} 6/);
    clock.advance(2 * 60 * 60_000);
    const tooOld = await pg.app.inject({ url: '/v2/team/app/manifests/1' });
    expect(tooOld.statusCode).toBe(503);
  });

  it('serves a cached manifest type only to clients whose Accept allows it', async () => {
    const { fake, pg } = await setup();
    const image = fake.add(makeImage('team/app', '1'));
    await pg.app.inject({ url: `/v2/team/app/manifests/${image.digest}`, headers: { accept: image.mediaType } });
    const before = fake.seen.length;
    const other = await pg.app.inject({ url: `/v2/team/app/manifests/${image.digest}`, headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    expect(fake.seen.length).toBe(before + 1);
    expect(other.statusCode).toBe(200);
  });
});
