import { afterEach, describe, expect, it } from 'vitest';
import { FakeRegistry, makeImage, type FakeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';
import { BREAKER_FAILURES, BREAKER_FIRST_BACKOFF_MS } from '../../src/upstream/endpoint-breaker.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function fake(clock: FakeClock, auth: ConstructorParameters<typeof FakeRegistry>[0] = { kind: 'none' }): Promise<FakeRegistry> {
  const registry = await new FakeRegistry(auth, clock).start();
  cleanups.push(() => registry.stop());
  return registry;
}

function start(yaml: string[], clock: FakeClock): Harness {
  const pg = harness([...yaml, 'clients: { anonymous: true }'].join('\n'), { clock });
  cleanups.push(() => pg.close());
  return pg;
}

/** Pulls the manifest (by `reference`) and every blob; returns the statuses. */
async function pull(pg: Harness, image: FakeImage, reference: string): Promise<number[]> {
  const manifest = await pg.app.inject({ url: `/v2/${image.repository}/manifests/${reference}`, headers: { accept: image.mediaType } });
  const statuses = [manifest.statusCode];
  for (const digest of image.blobs.keys()) {
    const blob = await pg.app.inject({ url: `/v2/${image.repository}/blobs/${digest}` });
    statuses.push(blob.statusCode);
    if (blob.statusCode === 200) expect(blob.rawPayload.equals(image.blobs.get(digest) ?? Buffer.alloc(0))).toBe(true);
  }
  return statuses;
}

/** pullgate_upstream_endpoint_up as `endpoint` → value. */
async function endpointUp(pg: Harness): Promise<Record<string, number>> {
  const metric = await pg.app.pullgate.metrics.registry.getSingleMetric('pullgate_upstream_endpoint_up')?.get();
  const out: Record<string, number> = {};
  for (const value of metric?.values ?? []) out[String(value.labels.endpoint)] = value.value;
  return out;
}

describe('fallback endpoints: registries.<host>.mirrors', () => {
  it('pulls by tag and by digest through a mirror with tags: true, with its own credentials, while url is unreachable', async () => {
    const clock = new FakeClock();
    const mirror = await fake(clock, { kind: 'bearer', users: { mirror: 'mirror-secret' }, anonymous: false, expiresIn: 300, crossScope403: false });
    const image = mirror.add(makeImage('library/app', '1'));
    const pg = start(
      [
        'registries:',
        '  hub.example:',
        '    url: "http://127.0.0.1:9"',
        '    auth: { type: basic, username: me, password: "url-secret" }',
        `    mirrors: [{ url: ${mirror.origin}, auth: { type: basic, username: mirror, password: "mirror-secret" }, tags: true }]`,
        'defaultRegistry: hub.example',
      ],
      clock,
    );

    expect(await pull(pg, image, '1')).toEqual([200, 200, 200]);
    const other = mirror.add(makeImage('library/other', '2'));
    expect(await pull(pg, other, other.digest)).toEqual([200, 200, 200]);
    // The mirror's token came from its own credentials: the url's password never reached it.
    expect(mirror.tokenRequests().every((seen) => seen.authorization === `Basic ${Buffer.from('mirror:mirror-secret').toString('base64')}`)).toBe(true);
    expect(mirror.tokenRequests().length).toBeGreaterThan(0);
  });

  it('asks a mirror without tags: true for content by digest only: with url answering 503 a digest pull succeeds and a tag pull fails saying why', async () => {
    const clock = new FakeClock();
    const url = await fake(clock);
    const mirror = await fake(clock);
    const image = mirror.add(makeImage('library/app', '1'));
    url.add(image);
    url.faults.manifestStatuses = Array.from({ length: 20 }, () => 503);
    url.faults.blobStatuses = Array.from({ length: 20 }, () => 503);
    const pg = start(['registries:', `  hub.example: { url: ${url.origin}, mirrors: [{ url: ${mirror.origin} }] }`, 'defaultRegistry: hub.example'], clock);

    expect(await pull(pg, image, image.digest)).toEqual([200, 200, 200]);
    const byTag = await pg.app.inject({ url: '/v2/library/app/manifests/1', headers: { accept: image.mediaType } });
    // url failed three times (the manifest, two blobs): its breaker is open, so it is not even asked.
    expect(byTag.statusCode).toBe(503);
    expect(byTag.body).toContain(`skipped while failing: ${url.origin}`);
    expect(byTag.body).toContain(`not asked for tags: ${mirror.origin}`);
    // Before the breaker opens, url's own answer is named.
    const fresh = start(['registries:', `  hub.example: { url: ${url.origin}, mirrors: [{ url: ${mirror.origin} }] }`, 'defaultRegistry: hub.example'], clock);
    const first = await fresh.app.inject({ url: '/v2/library/app/manifests/1', headers: { accept: image.mediaType } });
    expect(first.statusCode).toBe(502);
    expect(first.body).toContain('answered 503');
    expect(first.body).toContain(`not asked for tags: ${mirror.origin}`);
    expect(mirror.count('/v2/library/app/manifests/1')).toBe(0);
  });

  it('moves on from a mirror that answers 404 by digest to the next one', async () => {
    const clock = new FakeClock();
    const partial = await fake(clock);
    const full = await fake(clock);
    const image = full.add(makeImage('library/app', '1'));
    const pg = start(['registries:', `  hub.example: { url: "http://127.0.0.1:9", mirrors: [{ url: ${partial.origin} }, { url: ${full.origin} }] }`, 'defaultRegistry: hub.example'], clock);

    expect(await pull(pg, image, image.digest)).toEqual([200, 200, 200]);
    expect(partial.count(`/v2/library/app/manifests/${image.digest}`)).toBe(1);
  });

  it('skips an endpoint after repeated failures, retries it with one request when the back-off ends, and doubles the back-off while it fails', async () => {
    const clock = new FakeClock();
    const url = await fake(clock);
    const mirror = await fake(clock);
    const images = Array.from({ length: 8 }, (_, i) => mirror.add(makeImage('library/app', String(i), 0)));
    url.faults.manifestStatuses = Array.from({ length: 50 }, () => 503);
    const pg = start(['registries:', `  hub.example: { url: ${url.origin}, mirrors: [{ url: ${mirror.origin} }] }`, 'defaultRegistry: hub.example'], clock);
    const byDigest = async (image: FakeImage): Promise<number> => (await pg.app.inject({ url: `/v2/library/app/manifests/${image.digest}` })).statusCode;
    const urlAsked = (): number => url.count('/v2/library/app/manifests/');

    let n = 0;
    const next = (): FakeImage => images[n++] as FakeImage;
    for (let i = 0; i < BREAKER_FAILURES; i++) expect(await byDigest(next())).toBe(200);
    expect(urlAsked()).toBe(BREAKER_FAILURES);
    expect(await endpointUp(pg)).toEqual({ [url.origin]: 0, [mirror.origin]: 1 });
    // Skipped: answered by the mirror without asking url.
    expect(await byDigest(next())).toBe(200);
    expect(urlAsked()).toBe(BREAKER_FAILURES);
    expect(pg.logs.some((line) => line.includes('upstream endpoint failing'))).toBe(true);

    // The back-off ends: one trial request, which fails, and the back-off doubles.
    clock.advance(BREAKER_FIRST_BACKOFF_MS);
    expect(await endpointUp(pg)).toEqual({ [url.origin]: 1, [mirror.origin]: 1 });
    expect(await byDigest(next())).toBe(200);
    expect(urlAsked()).toBe(BREAKER_FAILURES + 1);
    clock.advance(BREAKER_FIRST_BACKOFF_MS);
    expect(await byDigest(next())).toBe(200);
    expect(urlAsked()).toBe(BREAKER_FAILURES + 1);

    // Healthy again: the trial succeeds and url answers from then on.
    url.faults.manifestStatuses = [];
    for (const image of images) url.add(image);
    clock.advance(BREAKER_FIRST_BACKOFF_MS);
    expect(await byDigest(next())).toBe(200);
    expect(urlAsked()).toBe(BREAKER_FAILURES + 2);
    expect(await endpointUp(pg)).toEqual({ [url.origin]: 1, [mirror.origin]: 1 });
    const mirrorAsked = mirror.count('/v2/library/app/manifests/');
    expect(await byDigest(next())).toBe(200);
    expect(mirror.count('/v2/library/app/manifests/')).toBe(mirrorAsked);
  });
});
