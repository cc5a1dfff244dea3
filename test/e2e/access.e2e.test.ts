// Real peers: who may pull what. The Docker Engine logs in as a user of clients.htpasswd (bcrypt) that clients.access
// allows one repository and denies another; and a real `pullgate serve` whose listen host it cannot tell is loopback
// refuses anonymous clients the registry behind credentials (the safe default).
import { lookup } from 'node:dns/promises';
import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { logsOf } from '../../support/diagnostics.js';
import { runOk } from '../../support/proc.js';
import { PULLGATE_CLI, renderPullgateConfig, startFlags, startPullgate } from '../../support/pullgate.js';
import { startRegistry } from '../../support/registry.js';
import { skopeoInspectRaw, skopeoPush } from '../../support/skopeo.js';
import { startDockerd } from './support/dockerd.js';
import { waitForPullgateRequest } from './support/pullgate-log.js';
import { buildRunnableImage, readStaticBusybox } from './support/runnable-image.js';
import { useSuite } from './support/suite.js';

const KEY = 'ghcr.io';
const ALLOWED = 'team/app';
const DENIED = 'other/app';
const TAG = '1';
const USER = { username: 'bob', password: 'bob-login-secret-31f7' };
const DENY_RULE = `${KEY}/other/**`;

describe('docker login + pull as a user that clients.access allows one repository and denies another', () => {
  const suite = useSuite('access', async (ws) => {
    const seeder = { username: 'seeder', password: 'push-secret-access-0a9c' };
    const puller = { username: 'alice', password: 'pull-secret-access-6b2e' };
    const registry = await startRegistry(ws, 'registry', { type: 'htpasswd', users: { [seeder.username]: seeder.password, [puller.username]: puller.password } });
    const image = await buildRunnableImage(ws.path('layout'), TAG, 'access', await readStaticBusybox());
    for (const repository of [ALLOWED, DENIED]) {
      await skopeoPush(image.dir, TAG, `${registry.host}/${repository}:${TAG}`, `${seeder.username}:${seeder.password}`);
    }
    const htpasswd = ws.path('htpasswd');
    await writeFile(htpasswd, `${USER.username}:${bcrypt.hashSync(USER.password, 10)}\n`);
    const registries = [{ key: KEY, url: registry.url, ...puller }];
    const pg = await startPullgate(ws, 'pullgate', {
      defaultRegistry: KEY,
      registries,
      clients: {
        htpasswd,
        access: [
          { subjects: [USER.username], allow: [`${KEY}/team/**`] },
          { subjects: [USER.username], deny: [DENY_RULE] },
        ],
      },
    });
    const daemonJson = ws.path('daemon.json');
    await writeFile(daemonJson, '{}\n');
    const dockerd = await startDockerd(ws, daemonJson);
    return { registry, registries, image, pg, dockerd };
  });

  it('docker login with the htpasswd user succeeds', async () => {
    const { pg, dockerd } = suite().value;
    const res = await dockerd.docker(['login', '--username', USER.username, '--password', USER.password, pg.host]);
    expect(res.code, `${res.stderr}\n${logsOf(pg.daemon)}`).toBe(0);
    expect(res.stdout.toString('utf8')).toContain('Login Succeeded');
  });

  it('the allowed repository pulls, digest as pushed, and the log names the user', async () => {
    const { pg, dockerd, image, registry } = suite().value;
    const ref = `${pg.host}/${ALLOWED}:${TAG}`;
    const res = await dockerd.docker(['pull', ref], { timeoutMs: 60_000 });
    expect(res.code, `${res.stderr}\n${logsOf(pg.daemon, registry.daemon)}`).toBe(0);
    const digests = await dockerd.dockerOk(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref]);
    expect(JSON.parse(digests.stdout.toString('utf8'))).toEqual([`${pg.host}/${ALLOWED}@${image.manifestDigest}`]);
    const byDigest = `/v2/${ALLOWED}/manifests/${image.manifestDigest}`;
    const lines = await waitForPullgateRequest(pg.daemon.logPath, `GET ${byDigest}`, (r) => r.path === byDigest && r.status === 200);
    const mine = lines.filter((r) => r.path.startsWith(`/v2/${ALLOWED}/`));
    expect(mine.length).toBeGreaterThan(0);
    for (const r of mine) expect(r, JSON.stringify(r)).toMatchObject({ user: USER.username, registry: KEY, repository: ALLOWED, denied: undefined });
  });

  it('the denied repository fails with docker saying denied, and the log names the user and the rule', async () => {
    const { pg, dockerd } = suite().value;
    const res = await dockerd.docker(['pull', `${pg.host}/${DENIED}:${TAG}`], { timeoutMs: 60_000 });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/denied/i);
    process.stderr.write(`e2e access: docker said: ${res.stderr.trim()}\n`);
    const lines = await waitForPullgateRequest(pg.daemon.logPath, `a refusal of ${DENIED}`, (r) => r.repository === DENIED && r.status === 403);
    const refused = lines.filter((r) => r.repository === DENIED);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r, JSON.stringify(r)).toMatchObject({ user: USER.username, status: 403, denied: 'rule' });
      expect(r.rule, JSON.stringify(r)).toContain(DENY_RULE);
    }
  });

  it('a blob of the denied repository by digest is refused too, although the allowed pull cached it', async () => {
    const { pg, image } = suite().value;
    const layer = image.layers[0];
    if (layer === undefined) throw new Error('image without layers');
    const auth = `Basic ${Buffer.from(`${USER.username}:${USER.password}`).toString('base64')}`;
    const allowed = await fetch(`${pg.url}/v2/${ALLOWED}/blobs/${layer.digest}`, { method: 'HEAD', headers: { authorization: auth } });
    expect(allowed.status).toBe(200);
    const denied = await fetch(`${pg.url}/v2/${DENIED}/blobs/${layer.digest}`, { headers: { authorization: auth } });
    expect(denied.status).toBe(403);
    const body = (await denied.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]?.code).toBe('DENIED');
    expect(JSON.stringify(body)).not.toContain(`${KEY}/team/**`);
  });

  it('after docker logout the mirror asks for a login again', async () => {
    const { pg, dockerd } = suite().value;
    await dockerd.dockerOk(['logout', pg.host]);
    const res = await dockerd.docker(['pull', `${pg.host}/${ALLOWED}:${TAG}`], { timeoutMs: 60_000 });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/no basic auth credentials|unauthorized/i);
  });

  describe('the safe default on a listener pullgate cannot tell is loopback', () => {
    /**
     * Tests listen on 127.0.0.0/8 only, so no test here binds a truly non-loopback socket. pullgate decides
     * exposure from the configured host, not from what it resolves to: the machine's own name (which resolves to
     * 127.0.0.0/8 on this machine) counts as exposed, so a real `serve` applies the safe default on a loopback socket.
     */
    const machineName = async (): Promise<string | undefined> => {
      const name = hostname();
      try {
        const addresses = await lookup(name, { all: true });
        return addresses.length > 0 && addresses.every((a) => a.family === 4 && a.address.startsWith('127.')) ? name : undefined;
      } catch {
        return undefined;
      }
    };

    it('config check with listen 0.0.0.0 prints the SAFE DEFAULT line and the policy without the registry behind credentials', async () => {
      const { ws, value } = suite();
      const file = ws.path('exposed.yaml');
      await writeFile(file, renderPullgateConfig({ listen: '0.0.0.0:5000', storagePath: ws.path('exposed-data'), defaultRegistry: KEY, registries: value.registries }));
      const out = (await runOk(process.execPath, [...startFlags(), PULLGATE_CLI, 'config', 'check', file])).stdout.toString('utf8');
      expect(out).toMatch(/SAFE DEFAULT: .*anonymous pulls from ghcr\.io are refused/);
      expect(out).toMatch(/allow\s+authenticated\s+\*\*/);
      expect(out).not.toMatch(/^#\s+\d+\s+allow\s+anonymous/m);
    });

    it('a real serve on the machine name refuses anonymous pulls and says why; the same config on 127.0.0.1 does not', async (context) => {
      const { ws, value } = suite();
      const name = await machineName();
      if (name === undefined) {
        // Said loudly and reported as skipped, never passed: tests may only listen on 127.0.0.0/8, and a machine
        // whose name resolves elsewhere cannot host this check. The refusal itself is covered in-process
        // (access-control.test.ts, `exposed`) and by the config check test above.
        process.stderr.write(`e2e access: NOT RUN: the machine name ${hostname()} does not resolve to 127.0.0.0/8 only, and tests may not listen elsewhere\n`);
        context.skip();
        return;
      }
      const config = { defaultRegistry: KEY, registries: value.registries };
      const exposed = await startPullgate(ws, 'pullgate-exposed', config, { listenHost: name });
      const loopback = await startPullgate(ws, 'pullgate-loopback', config);
      process.stderr.write(`e2e access: safe default checked on a real listener at ${exposed.host} (socket on loopback; pullgate judges the name)\n`);

      const refusedPull = await skopeoInspectRaw(`${exposed.host}/${ALLOWED}:${TAG}`);
      expect(refusedPull.code).not.toBe(0);
      expect(refusedPull.stderr).toMatch(/denied/i);
      const res = await fetch(`${exposed.url}/v2/${ALLOWED}/manifests/${TAG}`);
      expect(res.status).toBe(403);
      expect(await res.text()).toMatch(/safe default/);
      expect(exposed.daemon.logTail(200)).toMatch(/SAFE DEFAULT: pullgate listens on .* which is not loopback/);

      const servedPull = await skopeoInspectRaw(`${loopback.host}/${ALLOWED}:${TAG}`);
      expect(servedPull.code, `${servedPull.stderr}\n${logsOf(loopback.daemon)}`).toBe(0);
      expect(loopback.daemon.logTail(200)).not.toMatch(/SAFE DEFAULT/);
      // Request lines reach the log within about a second: wait for the refusal's.
      await waitForPullgateRequest(exposed.daemon.logPath, 'an anonymous refusal (no_rule)', (r) => r.status === 403 && r.user === 'anonymous' && r.denied === 'no_rule');
    });
  });
});
