import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeRegistry, makeImage, serveBytes, sha256, type FakeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';
import { METADATA_BODY, Recorder } from '../helpers/recorder.js';

/**
 * A compromised or hostile upstream (issue 10 §1): the fake registry listens on 127.0.0.1, and an
 * internal service it points pullgate at (the Recorder) on 127.0.0.2, another loopback address.
 */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const TAG_PATH = '/v2/team/app/manifests/1.0';
const TAG_URL = '/v2/reg.example/team/app/manifests/1.0';

interface Setup {
  fake: FakeRegistry;
  recorder: Recorder;
  pg: Harness;
  image: FakeImage;
}

async function setup(extraRegistryYaml = (_recorder: Recorder): string => ''): Promise<Setup> {
  const clock = new FakeClock();
  const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
  cleanups.push(() => fake.stop());
  const recorder = await new Recorder().start();
  cleanups.push(() => recorder.stop());
  const image = fake.add(makeImage('team/app', '1.0', 1, 4096));
  const pg = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example:\n    url: ${fake.origin}\n${extraRegistryYaml(recorder)}`, { clock });
  cleanups.push(() => pg.close());
  return { fake, recorder, pg, image };
}

function send(res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string>): void {
  res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

function upstreamError(res: { statusCode: number; body: string }): { code: string; message: string } {
  expect(res.statusCode).toBe(502);
  const body = JSON.parse(res.body) as { errors: { code: string; message: string }[] };
  const first = body.errors[0];
  if (first === undefined) throw new Error('no error in the body');
  expect(first.code).toBe('UPSTREAM_ERROR');
  return first;
}

/** Serves the tag as a manifest body of up to `total` bytes, written as fast as the reader takes it; counts what was written. */
function streamBody(fake: FakeRegistry, headers: Record<string, string>, total: number): { ended: Promise<void>; written: () => number } {
  let written = 0;
  let closed: () => void = () => undefined;
  const ended = new Promise<void>((resolve) => (closed = resolve));
  fake.routes.set(TAG_PATH, (_req, res) => {
    res.on('close', () => closed());
    res.writeHead(200, { 'content-type': OCI_MANIFEST, ...headers });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = (): void => {
      while (!res.destroyed && written < total) {
        written += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      if (!res.destroyed) res.end();
    };
    pump();
  });
  return { ended, written: () => written };
}

/** Once the upstream behaves, the same tag is fetched from it again (nothing was cached) and served. */
async function recoversWithoutCache(s: Setup): Promise<void> {
  expect(s.pg.cache.tag('reg.example', 'team/app', '1.0')).toBeUndefined();
  const before = s.fake.count(TAG_PATH);
  s.fake.routes.delete(TAG_PATH);
  const good = await s.pg.app.inject({ url: TAG_URL });
  expect(good.statusCode).toBe(200);
  expect(good.headers['docker-content-digest']).toBe(s.image.digest);
  expect(good.rawPayload.equals(s.image.manifest)).toBe(true);
  expect(s.fake.count(TAG_PATH)).toBe(before + 1);
}

describe('hostile upstream: manifest redirects', () => {
  it('does not follow a tag redirect to another (internal) address: 502, no request reaches it, nothing cached', async () => {
    const s = await setup();
    s.fake.routes.set(TAG_PATH, (_req, res) => send(res, 302, '', { location: `${s.recorder.origin}/latest/meta-data/` }));
    const res = await s.pg.app.inject({ url: TAG_URL });
    const error = upstreamError(res);
    expect(error.message).toContain(s.recorder.origin);
    expect(error.message).toContain('registries.reg.example.redirects');
    expect(res.body).not.toContain('ami-id');
    expect(s.recorder.seen).toHaveLength(0);
    await recoversWithoutCache(s);
  });

  it('refuses a redirect to the registry host on another port too (another origin)', async () => {
    const s = await setup();
    const other = await new Recorder('127.0.0.1').start();
    cleanups.push(() => other.stop());
    s.fake.routes.set(TAG_PATH, (_req, res) => send(res, 307, '', { location: `${other.origin}/v2/team/app/manifests/1.0` }));
    upstreamError(await s.pg.app.inject({ url: TAG_URL }));
    expect(other.seen).toHaveLength(0);
  });

  it('follows a redirect within the registry\'s own origin', async () => {
    const s = await setup();
    s.fake.routes.set('/v2/team/app/manifests/moved', (_req, res) => send(res, 301, '', { location: TAG_PATH }));
    const res = await s.pg.app.inject({ url: '/v2/reg.example/team/app/manifests/moved' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(s.image.digest);
  });

  it('follows a redirect to a prefix listed under redirects, by whole path segments', async () => {
    const s = await setup((recorder) => `    redirects: ["${recorder.origin}/ok"]\n`);
    s.recorder.handler = (_req, res) => send(res, 200, s.image.manifest, { 'content-type': OCI_MANIFEST, 'docker-content-digest': s.image.digest });
    s.fake.routes.set(TAG_PATH, (_req, res) => send(res, 302, '', { location: `${s.recorder.origin}/ok/manifest` }));
    const ok = await s.pg.app.inject({ url: TAG_URL });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['docker-content-digest']).toBe(s.image.digest);
    expect(s.recorder.seen.map((r) => r.path)).toEqual(['/ok/manifest']);
    s.fake.routes.set('/v2/team/app/manifests/2.0', (_req, res) => send(res, 302, '', { location: `${s.recorder.origin}/okay/manifest` }));
    upstreamError(await s.pg.app.inject({ url: '/v2/reg.example/team/app/manifests/2.0' }));
    expect(s.recorder.seen).toHaveLength(1);
  });
});

describe('hostile upstream: manifest bodies', () => {
  it('rejects a text/plain body served for a tag: 502, not cached', async () => {
    const s = await setup();
    s.fake.routes.set(TAG_PATH, (_req, res) => send(res, 200, METADATA_BODY, { 'content-type': 'text/plain', 'docker-content-digest': sha256(Buffer.from(METADATA_BODY)) }));
    const res = await s.pg.app.inject({ url: TAG_URL });
    expect(upstreamError(res).message).toContain('text/plain');
    expect(res.body).not.toContain('ami-id');
    expect(s.pg.cache.manifest(sha256(Buffer.from(METADATA_BODY)))).toBeUndefined();
    await recoversWithoutCache(s);
  });

  it('answers a client\'s tag HEAD with 502 when upstream\'s answer is not a manifest', async () => {
    const s = await setup();
    const digest = sha256(Buffer.from(METADATA_BODY));
    s.fake.routes.set(TAG_PATH, (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(METADATA_BODY)), 'docker-content-digest': digest });
      res.end(req.method === 'HEAD' ? undefined : METADATA_BODY);
    });
    const head = await s.pg.app.inject({ method: 'HEAD', url: TAG_URL });
    expect(head.statusCode).toBe(502);
    expect(head.headers['content-type']).not.toBe('text/plain');
    expect(s.fake.count(TAG_PATH)).toBe(1);
    await recoversWithoutCache(s);
  });

  it('rejects a document with both manifests and layers (CVE-2021-41190) by tag and by digest', async () => {
    const s = await setup();
    const confused = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(Buffer.from('{}')), size: 2 },
        layers: [],
        manifests: [{ mediaType: OCI_MANIFEST, digest: s.image.digest, size: s.image.manifest.length }],
      }),
    );
    const digest = sha256(confused);
    const serve = (_req: unknown, res: ServerResponse): void => send(res, 200, confused, { 'content-type': OCI_MANIFEST, 'docker-content-digest': digest });
    s.fake.routes.set(TAG_PATH, serve);
    s.fake.routes.set(`/v2/team/app/manifests/${digest}`, serve);
    expect(upstreamError(await s.pg.app.inject({ url: TAG_URL })).message).toContain('CVE-2021-41190');
    expect(upstreamError(await s.pg.app.inject({ url: `/v2/reg.example/team/app/manifests/${digest}` })).message).toContain('CVE-2021-41190');
    expect(s.pg.cache.manifest(digest)).toBeUndefined();
    // Asked again, it is asked upstream again: nothing was cached.
    upstreamError(await s.pg.app.inject({ url: `/v2/reg.example/team/app/manifests/${digest}` }));
    expect(s.fake.count(`/v2/team/app/manifests/${digest}`)).toBe(2);
    await recoversWithoutCache(s);
  });

  it('rejects a mediaType that disagrees with the Content-Type', async () => {
    const s = await setup();
    s.fake.routes.set(TAG_PATH, (_req, res) => send(res, 200, s.image.manifest, { 'content-type': OCI_INDEX, 'docker-content-digest': s.image.digest }));
    expect(upstreamError(await s.pg.app.inject({ url: TAG_URL })).message).toContain('disagrees');
    await recoversWithoutCache(s);
  });

  it('rejects a tag whose Docker-Content-Digest is not the body\'s hash, and counts it', async () => {
    const s = await setup();
    const claimed = sha256(Buffer.from('something else'));
    s.fake.routes.set(TAG_PATH, (_req, res) => send(res, 200, s.image.manifest, { 'content-type': OCI_MANIFEST, 'docker-content-digest': claimed }));
    const res = await s.pg.app.inject({ url: TAG_URL });
    upstreamError(res);
    expect(res.body).toContain(claimed);
    expect(res.body).toContain(s.image.digest);
    expect(s.pg.cache.manifest(s.image.digest)).toBeUndefined();
    const metrics = await s.pg.app.inject({ url: '/metrics' });
    expect(metrics.body).toMatch(/pullgate_digest_mismatches_total\{registry="reg.example"\} 1\b/);
    await recoversWithoutCache(s);
  });

  it('rejects a manifest whose Content-Length is over 4 MiB without reading it', async () => {
    const s = await setup();
    const declared = 64 * 1024 * 1024;
    const { ended, written } = streamBody(s.fake, { 'content-length': String(declared) }, declared);
    expect(upstreamError(await s.pg.app.inject({ url: TAG_URL })).message).toContain('larger than 4194304 bytes');
    await ended;
    // The connection was dropped, not drained: far fewer than the declared 64 MiB were taken.
    expect(written()).toBeLessThan(declared);
    await recoversWithoutCache(s);
  });

  it('cuts off an endless manifest body at the limit', async () => {
    const s = await setup();
    const { ended, written } = streamBody(s.fake, {}, Number.POSITIVE_INFINITY);
    expect(upstreamError(await s.pg.app.inject({ url: TAG_URL })).message).toContain('larger than 4194304 bytes');
    await ended;
    // pullgate stopped reading: what was written is the limit plus what socket buffers held, not more and more.
    expect(written()).toBeGreaterThan(4 * 1024 * 1024);
    expect(written()).toBeLessThan(64 * 1024 * 1024);
    await recoversWithoutCache(s);
  });
});

describe('hostile upstream: blob redirects', () => {
  it('refuses a blob redirect to an internal address that is not the registry\'s own', async () => {
    const s = await setup();
    const [digest = ''] = s.image.blobs.keys();
    s.fake.faults.redirectBlobsTo = s.recorder.origin;
    const res = await s.pg.app.inject({ url: `/v2/reg.example/team/app/blobs/${digest}` });
    const error = upstreamError(res);
    expect(error.message).toContain('loopback address (127.0.0.2)');
    expect(s.recorder.seen).toHaveLength(0);
    expect(s.pg.cache.lookup(digest)).toBeUndefined();
  });

  it('follows a blob redirect to an internal address listed under redirects, without Authorization', async () => {
    const s = await setup((recorder) => `    redirects: ["${recorder.origin}/cdn/"]\n`);
    const [digest = '', bytes = Buffer.alloc(0)] = [...s.image.blobs.entries()][0] ?? [];
    s.recorder.handler = (req, res) => send(res, 200, bytes, { 'content-type': 'application/octet-stream' });
    s.fake.faults.redirectBlobsTo = s.recorder.origin;
    const res = await s.pg.app.inject({ url: `/v2/reg.example/team/app/blobs/${digest}` });
    expect(res.statusCode).toBe(200);
    expect(sha256(res.rawPayload)).toBe(digest);
    expect(s.recorder.seen).toHaveLength(1);
    expect(s.recorder.seen[0]?.authorization).toBeUndefined();
  });
});

describe('hostile upstream: ranges of a blob whose bytes do not match its digest (issue 20 §1)', () => {
  /** A 5,000-byte blob starting GENUINE-BLOB-BYTES that upstream answers with EVIL-BLOB-BYTES!!! and the same length. */
  function evilBlob(s: Setup): { digest: string; genuine: Buffer } {
    const genuine = Buffer.concat([Buffer.from('GENUINE-BLOB-BYTES'), randomBytes(5_000 - 18)]);
    const digest = sha256(genuine);
    s.image.blobs.set(digest, genuine);
    const evil = Buffer.concat([Buffer.from('EVIL-BLOB-BYTES!!!'), genuine.subarray(18)]);
    s.fake.routes.set(`/v2/team/app/blobs/${digest}`, (req, res) => serveBytes(req, res, evil));
    return { digest, genuine };
  }

  it('answers a small range of a cold blob with 502, not the unverified bytes, and caches nothing', async () => {
    const s = await setup();
    const { digest } = evilBlob(s);
    const res = await s.pg.app.inject({ url: `/v2/reg.example/team/app/blobs/${digest}`, headers: { range: 'bytes=0-17' } });
    expect(res.body).not.toContain('EVIL');
    const error = upstreamError(res);
    expect(error.message).toMatch(/digest/);
    await s.pg.cache.drain();
    expect(s.pg.cache.lookup(digest)).toBeUndefined();
  });

  it('answers a range joined to a fill in flight only after the fill verified, and serves the genuine bytes once upstream does', async () => {
    const s = await setup();
    const { digest, genuine } = evilBlob(s);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const evilRoute = s.fake.routes.get(`/v2/team/app/blobs/${digest}`);
    s.fake.routes.set(`/v2/team/app/blobs/${digest}`, (req, res) => {
      void held.then(() => evilRoute?.(req, res, ''));
    });
    // The whole GET is cut before its last byte (inject rejects), as before.
    const whole = s.pg.app.inject({ url: `/v2/reg.example/team/app/blobs/${digest}` }).then(
      (res) => ({ statusCode: res.statusCode, rawPayload: res.rawPayload }),
      () => ({ statusCode: 0, rawPayload: Buffer.alloc(0) }),
    );
    const ranged = s.pg.app.inject({ url: `/v2/reg.example/team/app/blobs/${digest}`, headers: { range: 'bytes=100-199' } });
    release();
    const [full, part] = await Promise.all([whole, ranged]);
    expect(full.rawPayload.equals(genuine.subarray(0, full.rawPayload.length)) && full.statusCode === 200 && full.rawPayload.length === genuine.length).toBe(false);
    expect(part.body).not.toContain('EVIL');
    upstreamError(part);
    expect(s.fake.count(`/v2/team/app/blobs/${digest}`, 'GET')).toBe(1);
    s.fake.routes.delete(`/v2/team/app/blobs/${digest}`);
    await s.pg.cache.drain();
    const good = await s.pg.app.inject({ url: `/v2/reg.example/team/app/blobs/${digest}`, headers: { range: 'bytes=0-17' } });
    expect(good.statusCode).toBe(206);
    expect(good.body).toBe('GENUINE-BLOB-BYTES');
  });
});

describe('hostile upstream: answers that trickle (issue 20 §3)', () => {
  const DEADLINE = 'upstream: { deadline: 300ms }\n';

  /** Answers `path` with headers at once, then one byte of `body` every 40 ms; `closed` resolves when pullgate hangs up. */
  function trickle(fake: FakeRegistry, path: string, headers: Record<string, string>, body: Buffer): { closed: Promise<void>; sent: () => number } {
    let sent = 0;
    let closed: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (closed = resolve));
    fake.routes.set(path, (_req, res) => {
      res.writeHead(200, { 'content-length': String(body.length), ...headers });
      const timer = setInterval(() => {
        if (sent < body.length) res.write(body.subarray(sent, ++sent));
        if (sent >= body.length) {
          clearInterval(timer);
          res.end();
        }
      }, 40);
      res.on('close', () => {
        clearInterval(timer);
        closed();
      });
    });
    return { closed: done, sent: () => sent };
  }

  it('answers a manifest whose body trickles with 502 naming the registry at the deadline, and aborts the upstream request', async () => {
    const s = await setup(() => DEADLINE);
    const slow = trickle(s.fake, TAG_PATH, { 'content-type': OCI_MANIFEST }, s.image.manifest);
    const started = Date.now();
    const res = await s.pg.app.inject({ url: TAG_URL });
    const error = upstreamError(res);
    expect(error.message).toContain('reg.example');
    expect(error.message).toContain('upstream.deadline');
    expect(Date.now() - started).toBeLessThan(2_000);
    await slow.closed;
    expect(slow.sent()).toBeLessThan(s.image.manifest.length);
    await recoversWithoutCache(s);
  });

  it('gives tag lists the same deadline', async () => {
    const s = await setup(() => DEADLINE);
    const list = Buffer.from(JSON.stringify({ name: 'team/app', tags: ['1.0'] }));
    const slow = trickle(s.fake, '/v2/team/app/tags/list', { 'content-type': 'application/json' }, list);
    const res = await s.pg.app.inject({ url: '/v2/reg.example/team/app/tags/list' });
    expect(upstreamError(res).message).toContain('upstream.deadline');
    await slow.closed;
    expect(slow.sent()).toBeLessThan(list.length);
  });

  it('gives token answers the same deadline', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'bearer', users: {}, anonymous: true, expiresIn: 300, crossScope403: false }, clock).start();
    cleanups.push(() => fake.stop());
    const image = fake.add(makeImage('team/app', '1.0', 1, 4096));
    const pg = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example:\n    url: ${fake.origin}\n${DEADLINE}`, { clock });
    cleanups.push(() => pg.close());
    const token = Buffer.from(JSON.stringify({ token: 'x'.repeat(64) }));
    const slow = trickle(fake, '/token', { 'content-type': 'application/json' }, token);
    const res = await pg.app.inject({ url: TAG_URL });
    const error = upstreamError(res);
    expect(error.message).toMatch(/reg\.example did not finish answering/);
    await slow.closed;
    expect(slow.sent()).toBeLessThan(token.length);
    expect(image.digest).toMatch(/^sha256:/);
  });

  it('lets a blob body take longer than the deadline: blobs have the idle timeout only', async () => {
    const s = await setup(() => DEADLINE);
    const bytes = randomBytes(16);
    const digest = sha256(bytes);
    s.image.blobs.set(digest, bytes);
    trickle(s.fake, `/v2/team/app/blobs/${digest}`, { 'content-type': 'application/octet-stream' }, bytes);
    const res = await s.pg.app.inject({ url: `/v2/reg.example/team/app/blobs/${digest}` });
    expect(res.statusCode).toBe(200);
    expect(res.rawPayload.equals(bytes)).toBe(true);
  });
});

