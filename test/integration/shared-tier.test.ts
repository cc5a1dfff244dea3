import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, buildServices } from '../../src/app/app.js';
import { cacheStats, verifyCache } from '../../src/cache/maintenance.js';
import { loadConfigText } from '../../src/config/load.js';
import { createLogger, type Deps } from '../../src/core/deps.js';
import type { ByteRange, ContentInfo, ContentPage, ContentStore, PutOutcome } from '../../src/storage/content-store.js';
import { listAll } from '../../src/storage/content-store.js';
import { MemoryContentStore } from '../helpers/memory-store.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeRegistry, makeImage, sha256, type FakeImage } from '../helpers/fake-registry.js';
import { Cache } from '../../src/cache/cache.js';
import { SharedTier } from '../../src/cache/shared-tier.js';
import { Metrics } from '../../src/core/metrics.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanups.reverse()) await step();
  cleanups.length = 0;
});

interface Replica {
  base: string;
  services: ReturnType<typeof buildServices>;
}

/** One pullgate with its own empty local disk over `shared`. */
async function replica(upstream: FakeRegistry, shared: ContentStore, clock: FakeClock, maxSize = '1GiB', s3Yaml = ''): Promise<Replica> {
  const storage = mkdtempSync(path.join(tmpdir(), 'pullgate-tier-'));
  const dispatcher = new Agent({ keepAliveTimeout: 1000 });
  const deps: Deps = { clock, dispatcher, logger: createLogger('silent'), env: {} };
  const config = loadConfigText(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${upstream.origin} }\nstorage: { path: ${JSON.stringify(storage)}, maxSize: ${maxSize}${s3Yaml} }\n`, {}, 'test', storage);
  const services = buildServices(config, deps, undefined, { sharedStore: shared });
  const app = buildApp(config, deps, services);
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(async () => {
    await app.close();
    await dispatcher.close();
    rmSync(storage, { recursive: true, force: true });
  });
  return { base, services };
}

async function get(url: string): Promise<{ status: number; body: Buffer }> {
  const res = await request(url, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) };
}

async function pull(r: Replica, image: FakeImage, reference: string, repository = image.repository): Promise<void> {
  const manifest = await get(`${r.base}/v2/${repository}/manifests/${reference}`);
  expect(manifest.status).toBe(200);
  expect(manifest.body.equals(image.manifest)).toBe(true);
  for (const [digest, bytes] of image.blobs) {
    const blob = await get(`${r.base}/v2/${repository}/blobs/${digest}`);
    expect(blob.status).toBe(200);
    expect(blob.body.equals(bytes)).toBe(true);
  }
  await r.services.cache.drain();
}

async function setup(): Promise<{ upstream: FakeRegistry; clock: FakeClock; image: FakeImage }> {
  const clock = new FakeClock();
  const upstream = await new FakeRegistry({ kind: 'none' }, clock).start();
  cleanups.push(() => upstream.stop());
  const image = upstream.add(makeImage('team/app', '1', 2, 256 * 1024));
  return { upstream, clock, image };
}

function requests(upstream: FakeRegistry, from: number): string[] {
  return upstream.seen.slice(from).map((seen) => `${seen.method} ${seen.path}`);
}

describe('local disk in front of a shared store', () => {
  it('uploads what one replica pulled; another with an empty disk serves it by digest with no upstream request and keeps a copy', async () => {
    const { upstream, clock, image } = await setup();
    const shared = new MemoryContentStore(clock);
    const a = await replica(upstream, shared, clock);
    await pull(a, image, '1');
    const stored = [];
    for await (const item of listAll(shared)) stored.push(item.digest);
    expect(stored.sort()).toEqual([image.digest, ...image.blobs.keys()].sort());

    const before = upstream.seen.length;
    const b = await replica(upstream, shared, clock);
    await pull(b, image, image.digest);
    expect(requests(upstream, before)).toEqual([]);
    for (const digest of image.blobs.keys()) expect(b.services.cache.lookup(digest)).toBeDefined();
    expect(b.services.cache.manifest(image.digest)).toBeDefined();
    const metrics = (await b.services.metricsText()).body;
    const total = [...image.blobs.values()].reduce((sum, bytes) => sum + bytes.length, 0);
    expect(metrics).toContain(`pullgate_bytes_served_total{source="shared"} ${total}`);
    expect(metrics).not.toMatch(/pullgate_upstream_bytes_total\{[^}]*\} [1-9]/);
  });

  it('serves another repository from the shared store only after an upstream HEAD confirms it may see the blob', async () => {
    const { upstream, clock, image } = await setup();
    const other = upstream.add({ ...image, repository: 'team/other', tag: '1' });
    const shared = new MemoryContentStore(clock);
    await pull(await replica(upstream, shared, clock), image, '1');
    const b = await replica(upstream, shared, clock);
    const before = upstream.seen.length;
    const [digest, bytes] = [...other.blobs][0] ?? ['', Buffer.alloc(0)];
    const blob = await get(`${b.base}/v2/team/other/blobs/${digest}`);
    expect(blob.status).toBe(200);
    expect(blob.body.equals(bytes)).toBe(true);
    expect(requests(upstream, before)).toEqual([`HEAD /v2/team/other/blobs/${digest}`]);
    upstream.images.splice(upstream.images.indexOf(other), 1);
    const denied = await get(`${b.base}/v2/team/nobody/blobs/${digest}`);
    expect(denied.status).toBe(404);
  });

  it('removes a shared blob that does not match its digest, and the next pull fetches it upstream', async () => {
    const { upstream, clock, image } = await setup();
    const shared = new MemoryContentStore(clock);
    await pull(await replica(upstream, shared, clock), image, '1');
    const [digest, bytes] = [...image.blobs][1] ?? ['', Buffer.alloc(0)];
    await shared.delete(digest);
    await shared.putBytes(digest, Buffer.from(bytes).fill(1, 0, 8));
    const b = await replica(upstream, shared, clock);
    const first = await get(`${b.base}/v2/team/app/blobs/${digest}`).catch((err: unknown) => ({ status: 0, body: Buffer.from(String(err)) }));
    expect(first.status === 200 && first.body.equals(bytes)).toBe(false);
    await b.services.cache.drain();
    expect(await shared.stat(digest)).toBeUndefined();
    const before = upstream.seen.length;
    const second = await get(`${b.base}/v2/team/app/blobs/${digest}`);
    expect(second.status).toBe(200);
    expect(second.body.equals(bytes)).toBe(true);
    expect(requests(upstream, before)).toEqual([`GET /v2/team/app/blobs/${digest}`]);
  });

  // Issue 20 §1: a ranged client cannot check its bytes, so a range is answered only from verified content.
  for (const [label, poison] of [
    ['of the right size', (bytes: Buffer): Buffer => Buffer.concat([Buffer.from('POISONED-BYTES!!'), bytes.subarray(16)])],
    ['of another size (5,000 bytes)', (): Buffer => Buffer.alloc(5_000, 'POISONED-')],
    ['of another size (2,000,000 bytes)', (): Buffer => Buffer.alloc(2_000_000, 'POISONED-')],
  ] as const) {
    it(`answers a range of a poisoned shared object ${label} with an error, never the planted bytes`, async () => {
      const { upstream, clock, image } = await setup();
      const shared = new MemoryContentStore(clock);
      await pull(await replica(upstream, shared, clock), image, '1');
      const [digest, bytes] = [...image.blobs][1] ?? ['', Buffer.alloc(0)];
      await shared.delete(digest);
      await shared.putBytes(digest, poison(bytes));
      const b = await replica(upstream, shared, clock);
      const ranged = await request(`${b.base}/v2/team/app/blobs/${digest}`, { headers: { range: 'bytes=0-15' } });
      const body = Buffer.from(await ranged.body.arrayBuffer());
      expect(body.toString('latin1')).not.toContain('POISONED');
      expect(ranged.statusCode).toBe(502);
      expect((JSON.parse(body.toString('utf8')) as { errors: { code: string }[] }).errors[0]?.code).toBe('UPSTREAM_ERROR');
      await b.services.cache.drain();
      expect(await shared.stat(digest)).toBeUndefined();
      // The next ranged pull fetches the genuine bytes upstream.
      const again = await request(`${b.base}/v2/team/app/blobs/${digest}`, { headers: { range: 'bytes=0-15' } });
      expect(again.statusCode).toBe(206);
      expect(Buffer.from(await again.body.arrayBuffer()).equals(bytes.subarray(0, 16))).toBe(true);
    });
  }

  it('with storage.s3.redirect, redirects whole GETs to the bucket but serves a range here, verified', async () => {
    const { upstream, clock, image } = await setup();
    /** A store that presigns, as S3 does. */
    class PresigningStore extends MemoryContentStore {
      presignedUrl(digest: string): Promise<string> {
        return Promise.resolve(`http://bucket.invalid/${digest}`);
      }
    }
    const shared = new PresigningStore(clock);
    await pull(await replica(upstream, shared, clock), image, '1');
    const [digest, bytes] = [...image.blobs][1] ?? ['', Buffer.alloc(0)];
    await shared.delete(digest);
    await shared.putBytes(digest, Buffer.concat([Buffer.from('POISONED-BYTES!!'), bytes.subarray(16)]));
    const b = await replica(upstream, shared, clock, '1GiB', ', s3: { bucket: test-bucket, redirect: true }');
    const whole = await request(`${b.base}/v2/team/app/blobs/${digest}`);
    await whole.body.dump();
    expect(whole.statusCode).toBe(307);
    const ranged = await request(`${b.base}/v2/team/app/blobs/${digest}`, { headers: { range: 'bytes=0-15' } });
    const body = Buffer.from(await ranged.body.arrayBuffer());
    expect(ranged.statusCode).toBe(502);
    expect(body.toString('latin1')).not.toContain('POISONED');
  });

  it('cache stats and verify cover the shared store: a corrupt object is deleted, the rest pass', async () => {
    const { upstream, clock, image } = await setup();
    const shared = new MemoryContentStore(clock);
    const a = await replica(upstream, shared, clock);
    await pull(a, image, '1');
    const stats = await cacheStats(a.services.cache);
    expect(stats.shared).toMatchObject({ location: 'memory', objects: image.blobs.size + 1 });
    expect((await verifyCache(a.services.cache)).problems).toEqual([]);
    const [digest, bytes] = [...image.blobs][0] ?? ['', Buffer.alloc(0)];
    await shared.delete(digest);
    await shared.putBytes(digest, Buffer.from(bytes).fill(3, 0, 4));
    const report = await verifyCache(a.services.cache);
    expect(report.sharedChecked).toBe(image.blobs.size + 1);
    expect(report.problems).toEqual([{ digest, problem: expect.stringContaining('memory: content hashes to') as unknown, repaired: true }]);
    expect(await shared.stat(digest)).toBeUndefined();
  });

  it('a blob larger than the local budget is streamed, not kept locally, and still stored in the shared store', async () => {
    const { upstream, clock, image } = await setup();
    const shared = new MemoryContentStore(clock);
    const a = await replica(upstream, shared, clock, '100KiB');
    await pull(a, image, '1');
    const [digest, bytes] = [...image.blobs].find(([, blob]) => blob.length > 100 * 1024) ?? ['', Buffer.alloc(0)];
    expect(a.services.cache.lookup(digest)).toBeUndefined();
    expect((await shared.stat(digest))?.size).toBe(bytes.length);
    expect(readdirSync(path.join(a.services.config.storage.path, 'tmp'))).toEqual([]);
  });

  it('uploads fills from upstream only: a fill streamed from a cluster owner is kept locally, not uploaded again', async () => {
    const clock = new FakeClock();
    const shared = new MemoryContentStore(clock);
    const root = mkdtempSync(path.join(tmpdir(), 'pullgate-tier-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const logger = createLogger('silent');
    const cache = new Cache({ root, maxSizeBytes: 1 << 30, clock, logger, metrics: new Metrics(), shared: new SharedTier(shared, clock, logger, undefined) });
    cleanups.push(() => cache.close());
    const fromOwner = randomBytes(70_000);
    const fromUpstream = randomBytes(80_000);
    cache.beginFill(sha256(fromOwner), Readable.from([fromOwner]), fromOwner.length, 'reg.example', 'team/app', 'peer');
    cache.beginFill(sha256(fromUpstream), Readable.from([fromUpstream]), fromUpstream.length, 'reg.example', 'team/app');
    await cache.drain();
    expect(cache.lookup(sha256(fromOwner))).toBeDefined();
    expect(await shared.stat(sha256(fromOwner))).toBeUndefined();
    expect(await shared.isLinked('reg.example', 'team/app', sha256(fromOwner))).toBe(true);
    expect((await shared.stat(sha256(fromUpstream)))?.size).toBe(fromUpstream.length);
  });

  it('pulls go on from upstream while the shared store fails, and nothing is stored there', async () => {
    const { upstream, clock, image } = await setup();
    const broken = new FailingStore();
    const a = await replica(upstream, broken, clock);
    await pull(a, image, '1');
    expect(broken.calls).toBeGreaterThan(0);
    const before = upstream.seen.length;
    await pull(a, image, image.digest);
    expect(requests(upstream, before)).toEqual([]);
    const ready = await get(`${a.base}/readyz`);
    expect(ready.status).toBe(200);
    // With something to report, the body also says how each upstream is doing (this one answered).
    expect(JSON.parse(ready.body.toString())).toEqual({
      status: 'shared store unreachable',
      shared: { location: 'unreachable', reachable: false, reason: 'connect ECONNREFUSED 127.0.0.1:7480' },
      upstreams: { 'reg.example': { state: 'ok', since: expect.any(String) as unknown } },
    });
  });

  it('/readyz stays plain while the shared store answers', async () => {
    const { upstream, clock } = await setup();
    const a = await replica(upstream, new MemoryContentStore(clock), clock);
    const ready = await get(`${a.base}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body.toString())).toEqual({ status: 'ok' });
  });
});

/** A shared store that is down: every call rejects. */
class FailingStore implements ContentStore {
  calls = 0;
  readonly location = 'unreachable';
  private fail<T>(): Promise<T> {
    this.calls++;
    return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:7480'));
  }
  putFile(): Promise<PutOutcome> {
    return this.fail();
  }
  putBytes(): Promise<PutOutcome> {
    return this.fail();
  }
  openRead(_digest: string, _range?: ByteRange): Promise<Readable | undefined> {
    return this.fail();
  }
  stat(): Promise<ContentInfo | undefined> {
    return this.fail();
  }
  refresh(): Promise<boolean> {
    return this.fail();
  }
  delete(): Promise<void> {
    return this.fail();
  }
  list(): Promise<ContentPage> {
    return this.fail();
  }
  isLinked(): Promise<boolean> {
    return this.fail();
  }
  link(): Promise<void> {
    return this.fail();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
