import { afterEach, describe, expect, it } from 'vitest';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const TAG_TTL_MS = 5 * 60_000;

async function setup(reserve: number): Promise<{ clock: FakeClock; upstream: FakeRegistry; pg: Harness }> {
  const clock = new FakeClock();
  const upstream = await new FakeRegistry({ kind: 'none' }, clock).start();
  cleanups.push(() => upstream.stop());
  const pg = harness(['registries:', `  hub.example: { url: ${upstream.origin}, rateLimit: { reserve: ${reserve} } }`, 'defaultRegistry: hub.example', 'clients: { anonymous: true }'].join('\n'), { clock });
  cleanups.push(() => pg.close());
  return { clock, upstream, pg };
}

async function gauge(pg: Harness, name: string): Promise<number | undefined> {
  const metric = await pg.app.pullgate.metrics.registry.getSingleMetric(name)?.get();
  return metric?.values.find((value) => value.labels.registry === 'hub.example')?.value;
}

const manifestGets = (upstream: FakeRegistry): number => upstream.count('/v2/library/app/manifests/', 'GET');

describe('rationing against upstream rate limits: rateLimit.reserve', () => {
  it('within the reserve, a tag that moved upstream is answered with its cached digest and no manifest GET; by digest the client still gets what it asks', async () => {
    const { clock, upstream, pg } = await setup(5);
    const first = upstream.add(makeImage('library/app', 'latest', 0));
    upstream.faults.manifestHeaders = { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '2;w=21600' };

    const pulled = await pg.app.inject({ url: '/v2/library/app/manifests/latest', headers: { accept: first.mediaType } });
    expect(pulled.headers['docker-content-digest']).toBe(first.digest);
    expect(await gauge(pg, 'pullgate_upstream_ratelimit_remaining')).toBe(2);
    expect(await gauge(pg, 'pullgate_upstream_ratelimit_limit')).toBe(100);
    expect(manifestGets(upstream)).toBe(1);

    // The tag moves upstream.
    upstream.images.splice(0);
    const second = upstream.add(makeImage('library/app', 'latest', 0));
    clock.advance(TAG_TTL_MS);
    const held = await pg.app.inject({ url: '/v2/library/app/manifests/latest', headers: { accept: first.mediaType } });
    expect(held.statusCode).toBe(200);
    expect(held.headers['docker-content-digest']).toBe(first.digest);
    expect(manifestGets(upstream)).toBe(1);
    expect(upstream.count('/v2/library/app/manifests/latest', 'HEAD')).toBe(1);
    expect(pg.logs.filter((line) => line.includes('within its reserve')).length).toBe(1);
    // Logged once per window.
    await pg.app.inject({ url: '/v2/library/app/manifests/latest', headers: { accept: first.mediaType } });
    expect(pg.logs.filter((line) => line.includes('within its reserve')).length).toBe(1);

    const byDigest = await pg.app.inject({ url: `/v2/library/app/manifests/${second.digest}`, headers: { accept: second.mediaType } });
    expect(byDigest.headers['docker-content-digest']).toBe(second.digest);
    expect(manifestGets(upstream)).toBe(2);

    // Allowance back above the reserve: the moved tag is fetched.
    upstream.faults.manifestHeaders = { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '90;w=21600' };
    const moved = await pg.app.inject({ url: '/v2/library/app/manifests/latest', headers: { accept: first.mediaType } });
    expect(moved.headers['docker-content-digest']).toBe(second.digest);
  });

  it('without a reserve the moved tag is fetched even with few pulls left', async () => {
    const { clock, upstream, pg } = await setup(0);
    upstream.add(makeImage('library/app', 'latest', 0));
    upstream.faults.manifestHeaders = { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '2;w=21600' };
    await pg.app.inject({ url: '/v2/library/app/manifests/latest' });
    upstream.images.splice(0);
    const second = upstream.add(makeImage('library/app', 'latest', 0));
    clock.advance(TAG_TTL_MS);
    const moved = await pg.app.inject({ url: '/v2/library/app/manifests/latest' });
    expect(moved.headers['docker-content-digest']).toBe(second.digest);
    expect(manifestGets(upstream)).toBe(2);
  });

  it('a 429 holds the registry until its Retry-After: cached tags are served stale without asking, then revalidated', async () => {
    const { clock, upstream, pg } = await setup(0);
    const image = upstream.add(makeImage('library/app', 'latest', 0));
    upstream.add({ ...makeImage('library/app', 'other', 0) });
    await pg.app.inject({ url: '/v2/library/app/manifests/latest' });
    upstream.faults.retryAfter = '3600';
    upstream.faults.manifestStatuses = [429];
    expect((await pg.app.inject({ url: '/v2/library/app/manifests/other' })).statusCode).toBe(429);

    // Well past the 30 s down window and the tag TTL, but within Retry-After: not asked.
    clock.advance(20 * 60_000);
    const asked = upstream.count('/v2/library/app/manifests/');
    const stale = await pg.app.inject({ url: '/v2/library/app/manifests/latest' });
    expect(stale.statusCode).toBe(200);
    expect(stale.headers['docker-content-digest']).toBe(image.digest);
    expect(upstream.count('/v2/library/app/manifests/')).toBe(asked);

    clock.advance(60 * 60_000);
    await pg.app.inject({ url: '/v2/library/app/manifests/latest' });
    expect(upstream.count('/v2/library/app/manifests/latest', 'HEAD')).toBe(1);
  });
});
