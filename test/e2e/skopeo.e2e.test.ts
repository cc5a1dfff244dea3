// Real peers: skopeo pulls anonymously through pullgate from a distribution registry that needs credentials.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { readAccessLog } from '../../support/access-log.js';
import { logsOf } from '../../support/diagnostics.js';
import { diffBlobs, readLayout } from '../../support/oci-compare.js';
import { OCI_MANIFEST, sha256Digest } from '../../support/oci-layout.js';
import { startPullgate } from '../../support/pullgate.js';
import { skopeoInspectRaw, skopeoPull } from '../../support/skopeo.js';
import { useSuite } from './support/suite.js';
import { type AuthFlavour, startUpstream } from './support/upstream.js';

const ALIAS = 'up';
const MANIFEST_ACCEPT = `${OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json`;

interface OciErrorBody {
  errors: { code: string; message: string; detail?: unknown }[];
}

function isOciErrorBody(value: unknown): value is OciErrorBody {
  if (typeof value !== 'object' || value === null) return false;
  const errors = (value as { errors?: unknown }).errors;
  return (
    Array.isArray(errors) &&
    errors.length > 0 &&
    errors.every((e: unknown) => typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string')
  );
}

describe.each<AuthFlavour>(['htpasswd', 'token'])('skopeo through pullgate, upstream with %s auth', (flavour) => {
  const suite = useSuite(`skopeo-${flavour}`, async (ws) => {
    const up = await startUpstream(ws, flavour);
    const tokenMark = up.tokenServer?.requests.length ?? 0;
    const pg = await startPullgate(ws, 'pullgate', {
      defaultRegistry: up.registry.host,
      registries: [{ key: up.registry.host, url: up.registry.url, username: up.puller.username, password: up.puller.password }],
      aliases: { [ALIAS]: up.registry.host },
    });
    return { up, pg, tokenMark };
  });

  it('the upstream refuses anonymous pulls, so pullgate has to inject the credentials', async () => {
    const { up } = suite().value;
    const ref = `${up.registry.host}/${up.repository}:${up.tag}`;
    const anon = await skopeoInspectRaw(ref);
    expect(anon.code, `anonymous skopeo inspect of ${ref} should fail`).not.toBe(0);
    const res = await fetch(`${up.registry.url}/v2/${up.repository}/manifests/${up.tag}`, { headers: { accept: MANIFEST_ACCEPT } });
    expect(res.status).toBe(401);
  });

  it('skopeo inspect --raw returns the pushed manifest bytes via an alias prefix and via defaultRegistry', async () => {
    const { up, pg } = suite().value;
    for (const ref of [`${pg.host}/${ALIAS}/${up.repository}:${up.tag}`, `${pg.host}/${up.repository}:${up.tag}`]) {
      const res = await skopeoInspectRaw(ref);
      expect(res.code, `skopeo inspect --raw ${ref}\n${res.stderr}\n${logsOf(pg.daemon, up.registry.daemon)}`).toBe(0);
      expect(sha256Digest(res.stdout), ref).toBe(up.image.manifestDigest);
      expect(res.stdout.equals(up.image.manifest), ref).toBe(true);
    }
  });

  it('skopeo copy yields byte-identical manifest, config and layers', async () => {
    const { ws, value } = suite();
    const { up, pg } = value;
    const out = ws.path('skopeo-out');
    const ref = `${pg.host}/${ALIAS}/${up.repository}:${up.tag}`;
    const res = await skopeoPull(ref, out, up.tag);
    expect(res.code, `skopeo copy ${ref}\n${res.stderr}\n${logsOf(pg.daemon, up.registry.daemon)}`).toBe(0);
    const layout = await readLayout(out, up.tag);
    expect(layout.manifestDigest).toBe(up.image.manifestDigest);
    expect(diffBlobs(up.image, layout.blobs)).toEqual([]);
  });

  it('the registry-key prefix and the containerd ?ns= route serve the same manifest and blobs', async () => {
    const { up, pg } = suite().value;
    const bases = [
      { name: `${pg.url}/v2/${up.registry.host}/${up.repository}`, query: '' },
      { name: `${pg.url}/v2/${up.repository}`, query: `?ns=${encodeURIComponent(up.registry.host)}` },
    ];
    for (const base of bases) {
      const manifestUrl = `${base.name}/manifests/${up.tag}${base.query}`;
      const res = await fetch(manifestUrl, { headers: { accept: MANIFEST_ACCEPT } });
      const body = Buffer.from(await res.arrayBuffer());
      expect(res.status, `GET ${manifestUrl}: ${body.toString('utf8')}\n${logsOf(pg.daemon)}`).toBe(200);
      expect(body.equals(up.image.manifest), manifestUrl).toBe(true);
      expect(res.headers.get('docker-content-digest'), manifestUrl).toBe(up.image.manifestDigest);
      for (const layer of up.image.layers) {
        const blobUrl = `${base.name}/blobs/${layer.digest}${base.query}`;
        const blob = await fetch(blobUrl);
        const bytes = Buffer.from(await blob.arrayBuffer());
        expect(blob.status, `GET ${blobUrl}\n${logsOf(pg.daemon)}`).toBe(200);
        expect(sha256Digest(bytes), blobUrl).toBe(layer.digest);
      }
    }
  });

  it('a blob Range request returns exactly the requested bytes', async () => {
    const { up, pg } = suite().value;
    const big = up.image.layers[0];
    if (big === undefined) throw new Error('seed image has no layers');
    const expected = up.image.blobs.get(big.digest);
    if (expected === undefined) throw new Error('seed layer bytes missing');
    const url = `${pg.url}/v2/${up.registry.host}/${up.repository}/blobs/${big.digest}`;
    const res = await fetch(url, { headers: { range: 'bytes=1000-1999' } });
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(res.status, `GET ${url} Range: bytes=1000-1999\n${logsOf(pg.daemon)}`).toBe(206);
    expect(bytes.equals(expected.subarray(1000, 2000))).toBe(true);
  });

  it("the upstream saw pullgate's reads and never a write", async () => {
    const { up } = suite().value;
    const entries = (await readAccessLog(up.registry.daemon.logPath)).filter((e) => !e.userAgent.startsWith('skopeo/'));
    expect(entries.length, 'pullgate made no request to the upstream').toBeGreaterThan(0);
    const writes = entries.filter((e) => !['GET', 'HEAD'].includes(e.method));
    expect(writes).toEqual([]);
  });

  if (flavour === 'token') {
    it('pullgate asked the token server for pull scopes only, with its own credentials', () => {
      const { up, pg, tokenMark } = suite().value;
      const ts = up.tokenServer;
      if (ts === undefined) throw new Error('token flavour without a token server');
      const fromPuller = ts.requests.slice(tokenMark).filter((r) => r.user === up.puller.username);
      expect(fromPuller.length, `no token request from pullgate\n${logsOf(pg.daemon)}`).toBeGreaterThan(0);
      for (const r of fromPuller) {
        expect(r.authenticated, JSON.stringify(r)).toBe(true);
        expect(r.service).toBe(ts.service);
        expect(r.scopes.length, JSON.stringify(r)).toBeGreaterThan(0);
        for (const scope of r.scopes) expect(scope).toBe(`repository:${up.repository}:pull`);
      }
      const pushScopes = ts.requests.slice(tokenMark).filter((r) => r.scopes.some((s) => s.includes('push')));
      expect(pushScopes).toEqual([]);
    });

    it('pullgate reuses one token per scope instead of asking per request', () => {
      const { up, tokenMark } = suite().value;
      const ts = up.tokenServer;
      if (ts === undefined) throw new Error('token flavour without a token server');
      const fromPuller = ts.requests.slice(tokenMark).filter((r) => r.user === up.puller.username && r.authenticated);
      const perScope = new Map<string, number>();
      for (const r of fromPuller) {
        const key = [...r.scopes].sort().join(' ');
        perScope.set(key, (perScope.get(key) ?? 0) + 1);
      }
      expect(Object.fromEntries(perScope)).toEqual({ [`repository:${up.repository}:pull`]: 1 });
    });
  }

  it("pullgate's log never contains the upstream password", async () => {
    const { up, pg } = suite().value;
    const log = await readFile(pg.daemon.logPath, 'utf8');
    expect(log.includes(up.puller.password)).toBe(false);
    expect(log.includes(Buffer.from(`${up.puller.username}:${up.puller.password}`).toString('base64'))).toBe(false);
  });

  it('a wrong upstream password fails clearly: skopeo exits non-zero, the OCI error names no secret', async () => {
    const { ws, value: v } = suite();
    const { up } = v;
    const wrongPassword = `wrong-password-${flavour}-5d1e9c`;
    const bad = await startPullgate(ws, 'pullgate-wrong-password', {
      defaultRegistry: up.registry.host,
      registries: [{ key: up.registry.host, url: up.registry.url, username: up.puller.username, password: wrongPassword }],
    });
    const inspect = await skopeoInspectRaw(`${bad.host}/${up.repository}:${up.tag}`);
    expect(inspect.code, 'skopeo should fail through a pullgate holding a wrong password').not.toBe(0);
    expect(inspect.stderr.includes(wrongPassword)).toBe(false);

    const url = `${bad.url}/v2/${up.registry.host}/${up.repository}/manifests/${up.tag}`;
    const res = await fetch(url, { headers: { accept: MANIFEST_ACCEPT } });
    const text = await res.text();
    expect([401, 403], `GET ${url} -> ${res.status} ${text}\n${logsOf(bad.daemon)}`).toContain(res.status);
    expect(res.headers.get('content-type') ?? '').toMatch(/json/);
    const body: unknown = JSON.parse(text);
    expect(isOciErrorBody(body), text).toBe(true);
    if (isOciErrorBody(body)) expect(['UNAUTHORIZED', 'DENIED']).toContain(body.errors[0]?.code);
    expect(text.includes(wrongPassword)).toBe(false);
    expect(text.includes(up.puller.password)).toBe(false);
    // The upstream's challenge must not be forwarded: the client would then ask its user for credentials.
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge.includes(up.tokenServer?.realm ?? 'realm="pullgate-e2e"')).toBe(false);
    const log = await readFile(bad.daemon.logPath, 'utf8');
    expect(log.includes(wrongPassword)).toBe(false);
  });
});
