import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { FakeCdn, FakeRegistry, makeImage, sha256, type AuthMode } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function setup(auth: AuthMode, registryYaml: (origin: string) => string, clock = new FakeClock()): Promise<{ fake: FakeRegistry; pg: Harness }> {
  const fake = await new FakeRegistry(auth, clock).start();
  cleanups.push(() => fake.stop());
  const pg = harness(registryYaml(fake.origin), { clock });
  cleanups.push(() => pg.close());
  return { fake, pg };
}

const bearer = (extra: Partial<Extract<AuthMode, { kind: 'bearer' }>> = {}): AuthMode => ({
  kind: 'bearer',
  users: { alice: 's3cret-pw' },
  anonymous: false,
  expiresIn: 300,
  crossScope403: false,
  ...extra,
});

const withUser = (key: string) => (origin: string) =>
  `defaultRegistry: ${key}\nregistries:\n  ${key}:\n    url: ${origin}\n    auth: { type: basic, username: alice, password: s3cret-pw }\n`;

describe('core mirror against a fake upstream', () => {
  it('pulls a manifest and its blobs with one token per scope, anonymous to the client', async () => {
    const { fake, pg } = await setup(bearer(), withUser('reg.example'));
    const image = fake.add(makeImage('team/app', '1.0', 2));
    const manifest = await pg.app.inject({ url: '/v2/reg.example/team/app/manifests/1.0', headers: { accept: image.mediaType } });
    expect(manifest.statusCode).toBe(200);
    expect(manifest.headers['docker-content-digest']).toBe(image.digest);
    expect(manifest.headers['content-type']).toBe(image.mediaType);
    expect(Number(manifest.headers['content-length'])).toBe(image.manifest.length);
    expect(manifest.rawPayload.equals(image.manifest)).toBe(true);
    for (const [digest, bytes] of image.blobs) {
      const blob = await pg.app.inject({ url: `/v2/reg.example/team/app/blobs/${digest}` });
      expect(blob.statusCode).toBe(200);
      expect(sha256(blob.rawPayload)).toBe(digest);
      expect(blob.rawPayload.length).toBe(bytes.length);
    }
    const tokens = fake.tokenRequests();
    expect(tokens).toHaveLength(1);
    expect(tokens[0]?.query.getAll('scope')).toEqual(['repository:team/app:pull']);
    expect(tokens[0]?.query.get('service')).toBe('fake-registry');
    expect(tokens[0]?.authorization).toMatch(/^Basic /);
  });

  it('adds library/ for one-segment Docker Hub names and routes ?ns= like containerd', async () => {
    const { fake, pg } = await setup({ kind: 'none' }, (origin) => `registries:\n  docker.io: { url: ${origin} }\n`);
    const image = fake.add(makeImage('library/alpine', '3.20'));
    const plain = await pg.app.inject({ url: '/v2/alpine/manifests/3.20' });
    expect(plain.statusCode).toBe(200);
    const viaNs = await pg.app.inject({ url: '/v2/library/alpine/manifests/3.20?ns=docker.io' });
    expect(viaNs.statusCode).toBe(200);
    expect(viaNs.headers['docker-content-digest']).toBe(image.digest);
    expect(fake.seen.filter((s) => s.path === '/v2/library/alpine/manifests/3.20').length).toBeGreaterThanOrEqual(1);
    expect(fake.seen.some((s) => s.path.startsWith('/v2/alpine/'))).toBe(false);
  });

  it('sends no request upstream for an unconfigured ?ns= registry', async () => {
    const { fake, pg } = await setup({ kind: 'none' }, (origin) => `registries:\n  docker.io: { url: ${origin} }\n`);
    const res = await pg.app.inject({ url: '/v2/org/app/manifests/1?ns=evil.example' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ errors: [{ code: 'NAME_UNKNOWN' }] });
    expect(fake.seen).toHaveLength(0);
  });

  it('reuses a ghcr-style token without expires_in for most of 60 s, then exchanges again', async () => {
    const clock = new FakeClock();
    const { fake, pg } = await setup(bearer({ anonymous: true, expiresIn: undefined }), (origin) => `defaultRegistry: ghcr.io\nregistries:\n  ghcr.io: { url: ${origin}, auth: { type: anonymous } }\n`, clock);
    const image = fake.add(makeImage('org/tool', 'v1', 3));
    const digests = [...image.blobs.keys()];
    await pg.app.inject({ url: `/v2/ghcr.io/org/tool/blobs/${digests[0] ?? ''}` });
    clock.advance(40_000);
    await pg.app.inject({ url: `/v2/ghcr.io/org/tool/blobs/${digests[1] ?? ''}` });
    expect(fake.tokenRequests()).toHaveLength(1);
    clock.advance(20_000);
    const late = await pg.app.inject({ url: `/v2/ghcr.io/org/tool/blobs/${digests[2] ?? ''}` });
    expect(late.statusCode).toBe(200);
    expect(fake.tokenRequests()).toHaveLength(2);
    expect(fake.tokenRequests().every((t) => t.authorization === undefined)).toBe(true);
  });

  it('never reuses a token across scopes (cgr.dev answers 403 to that)', async () => {
    const { fake, pg } = await setup(bearer({ crossScope403: true }), withUser('cgr.dev'));
    const a = fake.add(makeImage('chainguard/static', 'latest'));
    const b = fake.add(makeImage('chainguard/busybox', 'latest'));
    for (const image of [a, b, a, b]) {
      const res = await pg.app.inject({ url: `/v2/cgr.dev/${image.repository}/blobs/${[...image.blobs.keys()][0] ?? ''}` });
      expect(res.statusCode).toBe(200);
    }
    const scopes = fake.tokenRequests().map((t) => t.query.getAll('scope').join(' '));
    expect(scopes.sort()).toEqual(['repository:chainguard/busybox:pull', 'repository:chainguard/static:pull']);
    expect(fake.seen.filter((s) => s.method !== 'GET' || s.path.includes('push'))).toHaveLength(0);
  });

  it('explains cgr.dev anonymous limits on a tag other than latest', async () => {
    const { fake, pg } = await setup(bearer({ anonymous: true, crossScope403: true, anonymousTags: ['latest', 'latest-dev'] }), (origin) => `defaultRegistry: cgr.dev\nregistries:\n  cgr.dev: { url: ${origin}, auth: { type: anonymous } }\n`);
    fake.add(makeImage('chainguard/node', 'latest'));
    fake.add(makeImage('chainguard/node', '20'));
    expect((await pg.app.inject({ url: '/v2/cgr.dev/chainguard/node/manifests/latest' })).statusCode).toBe(200);
    const denied = await pg.app.inject({ url: '/v2/cgr.dev/chainguard/node/manifests/20' });
    expect(denied.statusCode).toBe(403);
    const body = denied.json<{ errors: { code: string; detail: { hint: string } }[] }>();
    expect(body.errors[0]?.code).toBe('DENIED');
    expect(body.errors[0]?.detail.hint).toContain(':latest-dev');
    expect(denied.headers['www-authenticate']).toBeUndefined();
  });

  it('answers an ECR-style Basic challenge with Basic credentials and no token exchange', async () => {
    const { fake, pg } = await setup({ kind: 'basic', username: 'AWS', password: 'ecr-pass' }, (origin) => `defaultRegistry: ecr.example\nregistries:\n  ecr.example: { url: ${origin}, auth: { type: basic, username: AWS, password: ecr-pass } }\n`);
    const image = fake.add(makeImage('repo', 'v1'));
    const res = await pg.app.inject({ url: '/v2/ecr.example/repo/manifests/v1' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(image.digest);
    expect(fake.count('/token')).toBe(0);
    const again = await pg.app.inject({ url: `/v2/ecr.example/repo/blobs/${[...image.blobs.keys()][0] ?? ''}` });
    expect(again.statusCode).toBe(200);
    // The challenge is remembered: the second request goes out with Basic at once.
    expect(fake.seen.filter((s) => s.path.includes('/blobs/')).map((s) => s.authorization?.slice(0, 6))).toEqual(['Basic ']);
  });

  it('follows blob redirects without Authorization (S3 answers 400 to a second auth mechanism)', async () => {
    const { fake, pg } = await setup(bearer(), withUser('reg.example'));
    const image = fake.add(makeImage('team/app', '1.0', 2));
    const cdn = await new FakeCdn(() => image.blobs).start();
    cleanups.push(() => cdn.stop());
    fake.faults.redirectBlobsTo = cdn.origin;
    for (const [digest, bytes] of image.blobs) {
      const res = await pg.app.inject({ url: `/v2/reg.example/team/app/blobs/${digest}` });
      expect(res.statusCode).toBe(200);
      expect(res.rawPayload.equals(bytes)).toBe(true);
    }
    expect(cdn.seen.length).toBeGreaterThanOrEqual(image.blobs.size);
    expect(cdn.seen.filter((s) => s.authorization !== undefined)).toHaveLength(0);
  });

  it('re-exchanges once when a token is revoked mid-pull', async () => {
    const clock = new FakeClock();
    const { fake, pg } = await setup(bearer({ expiresIn: 300 }), withUser('reg.example'), clock);
    const image = fake.add(makeImage('team/app', '1.0', 2));
    const [first = '', second = '', third = ''] = [...image.blobs.keys()];
    expect((await pg.app.inject({ url: `/v2/reg.example/team/app/blobs/${first}` })).statusCode).toBe(200);
    clock.advance(60_000);
    fake.revokeTokens();
    expect(fake.count('/token')).toBe(1);
    const res = await pg.app.inject({ url: `/v2/reg.example/team/app/blobs/${second}` });
    expect(res.statusCode).toBe(200);
    expect(fake.count('/token')).toBe(2);
    const blobGets = fake.seen.filter((s) => s.path.endsWith(second));
    expect(blobGets.map((s) => s.authorization !== undefined)).toEqual([true, true]);
    // Revoked again and the fresh token refused too: one retry only, then a clear 401.
    fake.revokeTokens();
    fake.auth = bearer({ users: {} });
    const refused = await pg.app.inject({ url: `/v2/reg.example/team/app/blobs/${third}` });
    expect(refused.statusCode).toBe(401);
    expect(fake.count('/token')).toBe(3);
  });

  it('learns the challenge from the /v2/ ping when a 401 carries no WWW-Authenticate (gcr.io)', async () => {
    const { fake, pg } = await setup(bearer({ bareResource401: true }), withUser('gcr.example'));
    const image = fake.add(makeImage('proj/img', 'v1'));
    const res = await pg.app.inject({ url: '/v2/gcr.example/proj/img/manifests/v1' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(image.digest);
    expect(fake.count('/v2/', 'GET')).toBeGreaterThanOrEqual(1);
    expect(fake.seen.some((s) => s.path === '/v2/')).toBe(true);
  });

  it('reports refused credentials as UNAUTHORIZED with the source, never the secret or the upstream challenge', async () => {
    const { fake, pg } = await setup(bearer(), (origin) => `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${origin}, auth: { type: basic, username: alice, password: wrong-Pa55word } }\n`);
    fake.add(makeImage('team/app', '1.0'));
    const res = await pg.app.inject({ url: '/v2/reg.example/team/app/manifests/1.0' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBeUndefined();
    const body = res.json<{ errors: { code: string; message: string; detail: { registry: string; hint: string } }[] }>();
    expect(body.errors[0]?.code).toBe('UNAUTHORIZED');
    expect(body.errors[0]?.detail.registry).toBe('reg.example');
    expect(res.body).toContain('registries.reg.example.auth');
    expect(res.body).not.toContain('wrong-Pa55word');
    expect(pg.logs.join('\n')).not.toContain('wrong-Pa55word');
  });

  it('refuses to send credentials to a realm on an unrelated host', async () => {
    const { fake, pg } = await setup(bearer({ realmOrigin: 'http://localhost:9' }), withUser('reg.example'));
    fake.add(makeImage('team/app', '1.0'));
    const res = await pg.app.inject({ url: '/v2/reg.example/team/app/manifests/1.0' });
    expect(res.statusCode).toBe(502);
    expect(res.body).toContain('realm');
    expect(fake.count('/token')).toBe(0);
  });

  it('maps upstream failures: 404, 429 with Retry-After, 5xx, unreachable', async () => {
    const { fake, pg } = await setup({ kind: 'none' }, (origin) => `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${origin} }\n  down.example: { url: "http://127.0.0.1:9" }\n`);
    fake.add(makeImage('team/app', '1.0'));
    const missing = await pg.app.inject({ url: '/v2/reg.example/team/app/manifests/nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ errors: [{ code: 'MANIFEST_UNKNOWN' }] });
    const missingBlob = await pg.app.inject({ url: `/v2/reg.example/team/app/blobs/sha256:${'0'.repeat(64)}` });
    expect(missingBlob.json()).toMatchObject({ errors: [{ code: 'BLOB_UNKNOWN' }] });
    fake.faults = { manifestStatuses: [429], retryAfter: '17' };
    const limited = await pg.app.inject({ url: '/v2/reg.example/team/app/manifests/1.0' });
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBe('17');
    fake.faults = { manifestStatuses: [503] };
    const broken = await pg.app.inject({ url: '/v2/reg.example/team/app/manifests/1.0' });
    expect(broken.statusCode).toBe(502);
    const down = await pg.app.inject({ url: '/v2/down.example/team/app/manifests/1.0' });
    expect(down.statusCode).toBe(503);
    expect(down.json()).toMatchObject({ errors: [{ code: 'UNAVAILABLE', detail: { registry: 'down.example' } }] });
  });

  it('passes Range through and answers HEAD without a body', async () => {
    const { fake, pg } = await setup({ kind: 'none' }, (origin) => `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${origin} }\n`);
    const image = fake.add(makeImage('team/app', '1.0', 1, 1000));
    const layer = [...image.blobs.entries()].find(([, bytes]) => bytes.length === 1000);
    if (!layer) throw new Error('no layer');
    const [digest, bytes] = layer;
    const part = await pg.app.inject({ url: `/v2/reg.example/team/app/blobs/${digest}`, headers: { range: 'bytes=100-199' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe('bytes 100-199/1000');
    expect(part.rawPayload.equals(bytes.subarray(100, 200))).toBe(true);
    const head = await pg.app.inject({ method: 'HEAD', url: '/v2/reg.example/team/app/manifests/1.0' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['docker-content-digest']).toBe(image.digest);
    expect(Number(head.headers['content-length'])).toBe(image.manifest.length);
    expect(head.rawPayload.length).toBe(0);
    const headBlob = await pg.app.inject({ method: 'HEAD', url: `/v2/reg.example/team/app/blobs/${digest}` });
    expect(headBlob.statusCode).toBe(200);
    expect(Number(headBlob.headers['content-length'])).toBe(1000);
  });

  it('rewrites tag-list pagination to the client-side name', async () => {
    const { fake, pg } = await setup({ kind: 'none' }, (origin) => `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${origin} }\n`);
    for (const tag of ['a', 'b', 'c']) fake.add(makeImage('team/app', tag));
    const page = await pg.app.inject({ url: '/v2/reg.example/team/app/tags/list?n=2' });
    expect(page.statusCode).toBe(200);
    expect(page.json()).toEqual({ name: 'team/app', tags: ['a', 'b'] });
    expect(page.headers.link).toBe('</v2/reg.example/team/app/tags/list?n=2&last=b>; rel="next"');
    const bad = await pg.app.inject({ url: '/v2/reg.example/team/app/tags/list?n=abc' });
    expect(bad.statusCode).toBe(400);
  });

  it('aborts the client response when upstream cuts a blob short (never a complete-looking 200)', async () => {
    const { fake, pg } = await setup({ kind: 'none' }, (origin) => `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${origin} }\n`);
    const image = fake.add(makeImage('team/app', '1.0', 1, 256 * 1024));
    const digest = [...image.blobs.entries()].find(([, bytes]) => bytes.length === 256 * 1024)?.[0] ?? '';
    fake.faults.cutBlobAt = 1000;
    const base = await pg.listen();
    const res = await request(`${base}/v2/reg.example/team/app/blobs/${digest}`);
    if (res.statusCode === 200) {
      // Headers went out before the cut: the body must fail, not end as if complete.
      await expect(res.body.arrayBuffer()).rejects.toThrow();
    } else {
      expect(res.statusCode).toBe(502);
      expect(await res.body.json()).toMatchObject({ errors: [{ code: 'UPSTREAM_ERROR' }] });
    }
    // Nothing was cached: the next request goes upstream again and gets the whole blob.
    fake.faults.cutBlobAt = undefined;
    const again = await pg.app.inject({ url: `/v2/reg.example/team/app/blobs/${digest}` });
    expect(again.statusCode).toBe(200);
    expect(sha256(again.rawPayload)).toBe(digest);
    expect(fake.seen.filter((s) => s.path.endsWith(digest))).toHaveLength(2);
  });

  it('relays referrers with the artifactType filter', async () => {
    const { fake, pg } = await setup({ kind: 'none' }, (origin) => `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${origin} }\n`);
    const subject = `sha256:${'a'.repeat(64)}`;
    const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ artifactType: 'application/vnd.example.sbom', digest: `sha256:${'b'.repeat(64)}`, size: 10 }] };
    fake.routes.set(`/v2/team/app/referrers/${subject}`, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json', 'oci-filters-applied': 'artifactType' });
      res.end(JSON.stringify(index));
    });
    const res = await pg.app.inject({ url: `/v2/team/app/referrers/${subject}?artifactType=application/vnd.example.sbom` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(index);
    expect(res.headers['oci-filters-applied']).toBe('artifactType');
    const seen = fake.seen.find((s) => s.path.includes('/referrers/'));
    expect(seen?.query.get('artifactType')).toBe('application/vnd.example.sbom');
    const bad = await pg.app.inject({ url: '/v2/team/app/referrers/sha256:short' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ errors: [{ code: 'DIGEST_INVALID' }] });
  });

  it('answers referrers from the sha256-<hex> fallback tag when upstream has no referrers API (issue 20 §17)', async () => {
    const { fake, pg } = await setup({ kind: 'none' }, (origin) => `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${origin} }\n`);
    const subject = fake.add(makeImage('team/app', '1', 1, 1000));
    const sbom = { mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.example.sbom', digest: `sha256:${'b'.repeat(64)}`, size: 10 };
    const signature = { mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', digest: `sha256:${'c'.repeat(64)}`, size: 20 };
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [sbom, signature] }));
    const tag = `sha256-${subject.digest.slice('sha256:'.length)}`;
    fake.add({ repository: 'team/app', tag, manifest: index, digest: sha256(index), mediaType: 'application/vnd.oci.image.index.v1+json', blobs: new Map() });
    // The fake has no referrers endpoint: it answers 404 there, as registries without the API do.
    const all = await pg.app.inject({ url: `/v2/team/app/referrers/${subject.digest}` });
    expect(all.statusCode).toBe(200);
    expect(all.headers['content-type']).toBe('application/vnd.oci.image.index.v1+json');
    expect(all.json()).toEqual({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [sbom, signature] });
    expect(all.headers['oci-filters-applied']).toBeUndefined();
    expect(fake.seen.filter((s) => s.path === `/v2/team/app/manifests/${tag}`)).toHaveLength(1);
    const filtered = await pg.app.inject({ url: `/v2/team/app/referrers/${subject.digest}?artifactType=application/vnd.example.sbom` });
    expect(filtered.statusCode).toBe(200);
    expect(filtered.json()).toEqual({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [sbom] });
    expect(filtered.headers['oci-filters-applied']).toBe('artifactType');
    // A subject without a fallback tag has no referrers: an empty index, not 404.
    const none = await pg.app.inject({ url: `/v2/team/app/referrers/sha256:${'d'.repeat(64)}?artifactType=application/vnd.example.sbom` });
    expect(none.statusCode).toBe(200);
    expect(none.headers['content-type']).toBe('application/vnd.oci.image.index.v1+json');
    expect(none.json()).toEqual({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] });
    expect(none.headers['oci-filters-applied']).toBe('artifactType');
  });

  it('writes one JSON log line per request with route, registry, status, bytes and duration', async () => {
    const { fake, pg } = await setup({ kind: 'none' }, (origin) => `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${origin} }\n`);
    const image = fake.add(makeImage('team/app', '1', 1, 5000));
    const [digest] = [...image.blobs.entries()].find(([, bytes]) => bytes.length === 5000) ?? [''];
    pg.logs.length = 0;
    await pg.app.inject({ url: `/v2/team/app/blobs/${digest}` });
    const lines = pg.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === 'request');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ method: 'GET', endpoint: 'blob', registry: 'reg.example', repository: 'team/app', status: 200, bytes: 5000, source: 'upstream' });
    expect(typeof lines[0]?.durationMs).toBe('number');
  });

  it('answers the probes and exposes metrics without secrets', async () => {
    const { fake, pg } = await setup(bearer(), withUser('reg.example'));
    const image = fake.add(makeImage('team/app', '1'));
    await pg.app.inject({ url: `/v2/team/app/manifests/${image.digest}` });
    expect((await pg.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await pg.app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ok' });
    const metrics = await pg.app.inject({ url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toMatch(/pullgate_cache_misses_total\{kind="manifest"\} 1/);
    expect(metrics.body).toMatch(/pullgate_token_exchanges 1/);
    expect(metrics.body).not.toContain('s3cret-pw');
    const base = await pg.app.inject({ url: '/v2/' });
    expect(base.json()).toEqual({});
    expect(base.headers['docker-distribution-api-version']).toBe('registry/2.0');
  });
});
