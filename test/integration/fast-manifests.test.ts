import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { Htpasswd } from '../../src/client-auth/htpasswd.js';
import { ClientAuth } from '../../src/client-auth/client-auth.js';
import { AccessSampling } from '../../src/http/access-sampling.js';
import { fastManifestHandler } from '../../src/http/fast-manifests.js';
import { Preflight } from '../../src/http/preflight.js';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** Status a bare server answers when the hot path declined a request. */
const FELL_THROUGH = 599;
const ACCEPT_OCI = 'application/vnd.oci.image.manifest.v1+json';

async function setup(extraYaml = '', clock = new FakeClock()): Promise<{ fake: FakeRegistry; pg: Harness }> {
  const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
  cleanups.push(() => fake.stop());
  const pg = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n${extraYaml}`, { clock });
  cleanups.push(() => pg.close());
  return { fake, pg };
}

/** A server with only the hot path: what it declines is answered FELL_THROUGH, so a test sees which path served. */
async function hotPathOnly(pg: Harness, auth?: ClientAuth): Promise<string> {
  const services = pg.app.pullgate;
  const preflight = new Preflight({ router: services.router, access: services.access, auth, metrics: services.metrics, challengeBase: false });
  const fast = fastManifestHandler({ services, logger: pg.deps.logger, preflight, requestId: () => 'req-hot', open: () => true, sampling: new AccessSampling('all') });
  const server = createServer((req, res) => {
    if (fast(req, res)) return;
    res.writeHead(FELL_THROUGH).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function fetchRaw(url: string, init: { method?: 'GET' | 'HEAD'; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  const res = await request(url, { method: init.method ?? 'GET', headers: init.headers });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

/** The headers a response's meaning depends on (not Date or keep-alive bookkeeping). */
function meaningful(headers: IncomingHttpHeaders): Record<string, unknown> {
  const { date: _date, connection: _connection, 'keep-alive': _keepAlive, ...rest } = headers;
  return rest;
}

function requestLines(pg: Harness): Record<string, unknown>[] {
  return pg.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.msg === 'request');
}

describe('manifest hot path', () => {
  it('answers a fresh tag and a linked digest with the headers, body and log line of the ordinary path, without upstream', async () => {
    const { fake, pg } = await setup('cache: { tagTTL: 5m }\n');
    const image = fake.add(makeImage('team/app', '1'));
    const base = await pg.listen();
    const hot = await hotPathOnly(pg);
    const tagPath = '/v2/team/app/manifests/1';

    const first = await fetchRaw(`${base}${tagPath}`, { headers: { accept: ACCEPT_OCI } });
    expect(first.status).toBe(200);
    const upstreamAfterFill = fake.seen.length;
    const again = await fetchRaw(`${base}${tagPath}`, { headers: { accept: ACCEPT_OCI } });
    const direct = await fetchRaw(`${hot}${tagPath}`, { headers: { accept: ACCEPT_OCI } });
    for (const res of [again, direct]) {
      expect(res.status).toBe(200);
      expect(meaningful(res.headers)).toEqual(meaningful(first.headers));
      expect(res.body.equals(image.manifest)).toBe(true);
    }
    const head = await fetchRaw(`${hot}${tagPath}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(image.manifest.length));
    expect(head.body.length).toBe(0);
    const byDigest = await fetchRaw(`${hot}/v2/team/app/manifests/${image.digest}`);
    expect(byDigest.status).toBe(200);
    expect(byDigest.body.equals(image.manifest)).toBe(true);
    expect(fake.seen.length).toBe(upstreamAfterFill);

    const lines = requestLines(pg);
    expect(lines).toHaveLength(5);
    const [fill, cached] = lines;
    expect(Object.keys(cached ?? {}).sort()).toEqual(Object.keys(fill ?? {}).sort());
    expect(fill).toMatchObject({ endpoint: 'manifest', registry: 'reg.example', repository: 'team/app', source: 'upstream', status: 200 });
    expect(cached).toMatchObject({ method: 'GET', path: tagPath, endpoint: 'manifest', source: 'cache', status: 200, bytes: image.manifest.length, aborted: false });
    expect(lines[3]).toMatchObject({ method: 'HEAD', bytes: 0 });
    expect((await pg.app.pullgate.metricsText()).body).toMatch(/pullgate_cache_hits_total\{kind="tag"\} 3/);
  });

  it('declines every request it cannot answer alone, leaving it to the ordinary path', async () => {
    const clock = new FakeClock();
    const { fake, pg } = await setup('cache: { tagTTL: 1m }\n', clock);
    const image = fake.add(makeImage('team/app', '1'));
    const hot = await hotPathOnly(pg);
    const declined = async (url: string, init: { method?: 'GET' | 'HEAD'; headers?: Record<string, string> } = {}): Promise<number> => (await fetchRaw(`${hot}${url}`, init)).status;

    expect(await declined('/v2/team/app/manifests/1')).toBe(FELL_THROUGH); // not cached yet
    expect((await pg.app.inject({ url: '/v2/team/app/manifests/1' })).statusCode).toBe(200);
    expect(await declined('/v2/team/app/manifests/1')).toBe(200);
    expect(await declined('/v2/team/app/manifests/1', { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } })).toBe(FELL_THROUGH);
    expect(await declined(`/v2/team/other/manifests/${image.digest}`)).toBe(FELL_THROUGH); // cached via team/app only
    expect(await declined('/v2/team/app/manifests/no..such!tag')).toBe(FELL_THROUGH);
    expect(await declined('/v2/Team/App/manifests/1')).toBe(FELL_THROUGH);
    expect(await declined(`/v2/team/app/blobs/${image.digest}`)).toBe(FELL_THROUGH);
    expect(await declined('/v2/team/app/manifests/1?ns=unconfigured.example')).toBe(FELL_THROUGH);
    const post = await request(`${hot}/v2/team/app/manifests/1`, { method: 'PUT', body: '{}' });
    await post.body.dump();
    expect(post.statusCode).toBe(FELL_THROUGH);
    clock.advance(61_000);
    expect(await declined('/v2/team/app/manifests/1')).toBe(FELL_THROUGH); // past tagTTL: needs a revalidation
  });

  it('serves only Authorization headers that already passed the htpasswd check when clients must authenticate', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-htpasswd-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'htpasswd');
    writeFileSync(file, `ci:${bcrypt.hashSync('ci-pass', 4)}\n`);
    const { fake, pg } = await setup(`clients: { anonymous: false, htpasswd: ${JSON.stringify(file)} }\n`);
    fake.add(makeImage('team/app', '1'));
    const good = `Basic ${Buffer.from('ci:ci-pass').toString('base64')}`;
    const wrong = `Basic ${Buffer.from('ci:guess').toString('base64')}`;
    const base = await pg.listen();
    expect((await fetchRaw(`${base}/v2/team/app/manifests/1`, { headers: { authorization: good } })).status).toBe(200);
    // Cached now; through the server, anonymous and wrong credentials are still refused.
    expect((await fetchRaw(`${base}/v2/team/app/manifests/1`)).status).toBe(401);
    expect((await fetchRaw(`${base}/v2/team/app/manifests/1`, { headers: { authorization: wrong } })).status).toBe(401);
    expect((await fetchRaw(`${base}/v2/team/app/manifests/1`, { headers: { authorization: good } })).status).toBe(200);

    const auth = new ClientAuth(Htpasswd.load(file));
    const hot = await hotPathOnly(pg, auth);
    expect((await fetchRaw(`${hot}/v2/team/app/manifests/1`, { headers: { authorization: good } })).status).toBe(FELL_THROUGH);
    expect(await auth.verify(good)).toBe(true);
    expect((await fetchRaw(`${hot}/v2/team/app/manifests/1`, { headers: { authorization: good } })).status).toBe(200);
    expect((await fetchRaw(`${hot}/v2/team/app/manifests/1`)).status).toBe(FELL_THROUGH);
    expect((await fetchRaw(`${hot}/v2/team/app/manifests/1`, { headers: { authorization: wrong } })).status).toBe(FELL_THROUGH);
  });
});
