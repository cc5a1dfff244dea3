import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeRegistry, makeImage, type FakeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';
import type { StatusReport } from '../../src/status/status-report.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** A port nothing listens on: a registry that is down. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Docker Hub's way: the manifest answer carries `ratelimit-limit` / `ratelimit-remaining` with the window. */
function withRateLimitHeaders(fake: FakeRegistry, image: FakeImage): void {
  fake.routes.set(`/v2/${image.repository}/manifests/${image.tag}`, (req, res) => {
    res.writeHead(200, {
      'content-type': image.mediaType,
      'content-length': image.manifest.length,
      'docker-content-digest': image.digest,
      'ratelimit-limit': '100;w=21600',
      'ratelimit-remaining': '42;w=21600',
    });
    res.end(req.method === 'HEAD' ? undefined : image.manifest);
  });
}

async function pull(pg: Harness, name: string, image: FakeImage): Promise<void> {
  const manifest = await pg.app.inject({ url: `/v2/${name}/manifests/${image.tag}`, headers: { accept: image.mediaType } });
  expect(manifest.statusCode).toBe(200);
  for (const digest of image.blobs.keys()) {
    const blob = await pg.app.inject({ url: `/v2/${name}/blobs/${digest}` });
    expect(blob.statusCode).toBe(200);
  }
  await pg.cache.drain();
}

async function status(pg: Harness): Promise<StatusReport> {
  const res = await pg.app.inject({ url: '/api/status' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return res.json<StatusReport>();
}

const SECRETS = ['s3cret-pw', 'alice', 'ci-pass'];

describe('status page and /api/status', () => {
  it('after three pulls: cache figures, hits, the repository on top, the rate limit (API and metric), a down registry’s last error', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'basic', username: 'alice', password: 's3cret-pw' }, clock).start();
    cleanups.push(() => fake.stop());
    const image = fake.add(makeImage('library/app', '1.0', 2));
    withRateLimitHeaders(fake, image);
    const down = await closedPort();
    const pg = harness(
      `defaultRegistry: docker.io\nregistries:\n  docker.io: { url: ${fake.origin}, auth: { type: basic, username: alice, password: s3cret-pw } }\n  down.example: { url: "http://127.0.0.1:${down}" }\n`,
      { clock },
    );
    cleanups.push(() => pg.close());

    for (let i = 0; i < 3; i++) await pull(pg, 'docker.io/library/app', image);
    const failed = await pg.app.inject({ url: '/v2/down.example/org/tool/manifests/1' });
    expect(failed.statusCode).toBeGreaterThanOrEqual(500);

    const report = await status(pg);
    expect(report.cache.bytes).toBeGreaterThan(0);
    expect(report.cache.blobs).toBe(image.blobs.size);
    expect(report.cache.manifests).toBe(1);
    expect(report.cache.tags).toBe(1);
    // Pull 1: the manifest and every blob from upstream; pulls 2 and 3 from the cache.
    const perPull = 1 + image.blobs.size;
    expect(report.requests).toMatchObject({ total: 3 * perPull, hits: 2 * perPull, misses: perPull });
    expect(report.requests.hitRatio).toBeGreaterThan(0);
    expect(report.requests.hitRatio).toBeLessThan(1);
    const blobBytes = [...image.blobs.values()].reduce((n, b) => n + b.length, 0);
    expect(report.bytes).toMatchObject({ served: 3 * blobBytes, fromUpstream: blobBytes, saved: 2 * blobBytes });
    expect(report.topRepositories[0]).toEqual({ name: 'docker.io/library/app', pulls: 3, bytes: 3 * blobBytes });
    const hub = report.registries.find((r) => r.name === 'docker.io');
    expect(hub).toMatchObject({ healthy: true, lastError: null, credential: { kind: 'config' }, rateLimit: { limit: 100, remaining: 42, windowSeconds: 21600 } });
    expect(hub?.lastSuccess).toBe(new Date(clock.now()).toISOString());
    const gone = report.registries.find((r) => r.name === 'down.example');
    expect(gone?.healthy).toBe(false);
    expect(gone?.lastError?.reason).toMatch(/down\.example is unreachable/);
    expect(report.recent[0]).toMatchObject({ kind: 'upstream', registry: 'down.example' });
    expect(report.history).toHaveLength(60);
    expect(report.history.at(-1)).toMatchObject({ hits: 2 * perPull, misses: perPull });
    expect(report.workers).toHaveLength(1);

    const metrics = await pg.app.inject({ url: '/metrics' });
    expect(metrics.body).toMatch(/^pullgate_upstream_ratelimit_remaining\{registry="docker.io"\} 42$/m);
    expect(metrics.body).toMatch(/^pullgate_upstream_ratelimit_limit\{registry="docker.io"\} 100$/m);

    const page = await pg.app.inject({ url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('docker.io/library/app');
    expect(page.body).toContain('66.7%');
    expect(page.body).toContain('data-figure="ratelimit-remaining:docker.io" data-value="42"');
    expect(page.body).not.toMatch(/<script|https?:\/\/(?!127\.0\.0\.1)/);
    for (const secret of SECRETS) {
      expect(JSON.stringify(report)).not.toContain(secret);
      expect(page.body).not.toContain(secret);
    }
  });

  it('records refusals among the recent events, with the user and never the password', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => fake.stop());
    const pg = harness(`registries:\n  ghcr.io: { url: ${fake.origin}, repositories: { allow: ["org/**"] } }\n`, { clock });
    cleanups.push(() => pg.close());
    const refused = await pg.app.inject({ url: '/v2/ghcr.io/other/app/manifests/1' });
    expect(refused.statusCode).toBe(403);
    const report = await status(pg);
    expect(report.recent[0]).toMatchObject({ kind: 'refused', reason: 'registry_policy', registry: 'ghcr.io', repository: 'other/app' });
    expect(fake.seen).toHaveLength(0);
  });

  it('is served on metrics.listen too, and that listener still answers 404 for the rest', async () => {
    const port = await closedPort();
    const pg = harness(`registries:\n  docker.io: {}\nmetrics: { listen: 127.0.0.1:${port} }\n`);
    cleanups.push(() => pg.close());
    await pg.listen();
    const api = await fetch(`http://127.0.0.1:${port}/api/status`);
    expect(api.status).toBe(200);
    expect(((await api.json()) as StatusReport).registries.map((r) => r.name)).toEqual(['docker.io']);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('data-registry="docker.io"');
    expect((await fetch(`http://127.0.0.1:${port}/v2/`)).status).toBe(404);
  });

  describe('who may see it on an exposed listener', () => {
    function exposed(statusYaml: string): Harness {
      const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-status-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const file = path.join(dir, 'htpasswd');
      writeFileSync(file, `ci:${bcrypt.hashSync('ci-pass', 4)}\nbob:${bcrypt.hashSync('bob-pass', 4)}\n`);
      const pg = harness(`registries:\n  ghcr.io: {}\nclients:\n  htpasswd: ${JSON.stringify(file)}\n  groups: { ops: [bob] }\n${statusYaml}`, { exposed: true });
      cleanups.push(() => pg.close());
      return pg;
    }
    const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    const remote = '10.1.2.3';

    it('refuses the page and the JSON to anonymous clients when status.allow is not set, and shows them to loopback peers', async () => {
      const pg = exposed('');
      for (const url of ['/', '/api/status']) {
        const res = await pg.app.inject({ url, remoteAddress: remote });
        expect(res.statusCode).toBe(403);
        expect(res.json()).toMatchObject({ errors: [{ code: 'DENIED' }] });
        expect(res.body).toMatch(/status\.allow/);
        const logged = await pg.app.inject({ url, remoteAddress: remote, headers: { authorization: basic('ci', 'ci-pass') } });
        expect(logged.statusCode).toBe(403);
      }
      expect((await pg.app.inject({ url: '/api/status', remoteAddress: '127.0.0.1' })).statusCode).toBe(200);
    });

    it('asks anonymous clients to log in when status.allow names users, and lets listed subjects (and groups) in', async () => {
      const pg = exposed('status:\n  allow: [ops]\n');
      const anonymous = await pg.app.inject({ url: '/', remoteAddress: remote });
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.headers['www-authenticate']).toBe('Basic realm="pullgate"');
      const wrong = await pg.app.inject({ url: '/', remoteAddress: remote, headers: { authorization: basic('bob', 'nope') } });
      expect(wrong.statusCode).toBe(401);
      const notListed = await pg.app.inject({ url: '/', remoteAddress: remote, headers: { authorization: basic('ci', 'ci-pass') } });
      expect(notListed.statusCode).toBe(403);
      const member = await pg.app.inject({ url: '/', remoteAddress: remote, headers: { authorization: basic('bob', 'bob-pass') } });
      expect(member.statusCode).toBe(200);
      expect(member.body).not.toContain('bob-pass');
    });

    it('lets anyone in with status.allow: [anonymous]', async () => {
      const pg = exposed('status:\n  allow: [anonymous]\n');
      expect((await pg.app.inject({ url: '/api/status', remoteAddress: remote })).statusCode).toBe(200);
    });
  });
});
