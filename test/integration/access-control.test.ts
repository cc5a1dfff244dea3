import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import type { LightMyRequestResponse } from 'fastify';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientAuth } from '../../src/client-auth/client-auth.js';
import { Htpasswd } from '../../src/client-auth/htpasswd.js';
import { exposureWarnings } from '../../src/access/exposure.js';
import { AccessSampling } from '../../src/http/access-sampling.js';
import { fastManifestHandler } from '../../src/http/fast-manifests.js';
import { Preflight } from '../../src/http/preflight.js';
import { FakeRegistry, makeImage, type FakeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const USERS = { alice: 'alice-pw', bob: 'bob-pw', 'ci-bot': 'ci-pw' } as const;
type User = keyof typeof USERS;
const login = (user: User): string => basic(user, USERS[user]);

function htpasswdFile(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-access-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'htpasswd');
  writeFileSync(file, Object.entries(USERS).map(([user, password]) => `${user}:${bcrypt.hashSync(password, 4)}\n`).join(''));
  return file;
}

interface Setup {
  pg: Harness;
  fake: FakeRegistry;
  app: FakeImage;
  secret: FakeImage;
  pub: FakeImage;
  htpasswd: string;
}

/**
 * reg.example holds team/app, team/secret/app (the same layers as team/app) and public/app;
 * filtered.example may fetch only ok/** but not ok/bad/**. alice is denied team/secret/**, the ci
 * group (ci-bot) and alice may pull team/**, anonymous clients public/*; bob has no rule.
 */
async function setup(): Promise<Setup> {
  const clock = new FakeClock();
  const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
  cleanups.push(() => fake.stop());
  const app = fake.add(makeImage('team/app', '1'));
  const secret = fake.add({ ...app, repository: 'team/secret/app' });
  const pub = fake.add(makeImage('public/app', '1'));
  fake.add(makeImage('ok/bad/app', '1'));
  fake.add(makeImage('ok/app', '1'));
  const htpasswd = htpasswdFile();
  const pg = harness(
    [
      'defaultRegistry: reg.example',
      'registries:',
      `  reg.example: { url: ${fake.origin} }`,
      `  filtered.example: { url: ${fake.origin}, repositories: { allow: ["ok/**"], deny: ["ok/bad/**"] } }`,
      'clients:',
      `  htpasswd: ${JSON.stringify(htpasswd)}`,
      '  groups: { ci: [ci-bot] }',
      '  access:',
      '    - { subjects: [alice], deny: ["reg.example/team/secret/**"] }',
      '    - { subjects: [ci, alice], allow: ["reg.example/team/**", "filtered.example/**"] }',
      '    - { subjects: [anonymous], allow: ["reg.example/public/*"] }',
    ].join('\n'),
    { clock },
  );
  cleanups.push(() => pg.close());
  return { pg, fake, app, secret, pub, htpasswd };
}

function get(pg: Harness, url: string, user?: User, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET'): Promise<LightMyRequestResponse> {
  return pg.app.inject({ method, url, headers: { ...headers, ...(user === undefined ? {} : { authorization: login(user) }) } });
}

function firstError(res: LightMyRequestResponse): { code: string; message: string; detail: Record<string, unknown> } {
  const body = res.json<{ errors: { code: string; message: string; detail: Record<string, unknown> }[] }>();
  const error = body.errors[0];
  if (error === undefined) throw new Error('no error in body');
  return error;
}

const layerOf = (image: FakeImage): string => [...image.blobs.keys()].find((digest) => image.blobs.get(digest)?.length === 64 * 1024) ?? '';

describe('clients.access on every request', () => {
  it('allows and denies by user, group and anonymous; 401 with a Basic challenge only when a login could help', async () => {
    const { pg } = await setup();
    expect((await get(pg, '/v2/public/app/manifests/1')).statusCode).toBe(200);
    expect((await get(pg, '/v2/team/app/manifests/1', 'ci-bot')).statusCode).toBe(200);
    expect((await get(pg, '/v2/team/app/manifests/1', 'alice')).statusCode).toBe(200);

    const anonymous = await get(pg, '/v2/team/app/manifests/1');
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toBe('Basic realm="pullgate"');
    expect(firstError(anonymous).code).toBe('UNAUTHORIZED');

    // Nobody could be allowed it: a login would not help, so no challenge.
    const nowhere = await get(pg, '/v2/elsewhere/app/manifests/1');
    expect(nowhere.statusCode).toBe(403);
    expect(nowhere.headers['www-authenticate']).toBeUndefined();
    expect(firstError(nowhere).code).toBe('DENIED');

    const alice = await get(pg, '/v2/team/secret/app/manifests/1', 'alice');
    expect(alice.statusCode).toBe(403);
    expect(alice.headers['www-authenticate']).toBeUndefined();
    const error = firstError(alice);
    expect(error.code).toBe('DENIED');
    expect(error.detail.rule).toBe('clients.access[0]: deny reg.example/team/secret/** for alice');
    // The deciding rule only, never the others.
    expect(alice.body).not.toContain('public');
    expect(alice.body).not.toContain('ci-bot');

    const bob = await get(pg, '/v2/team/app/manifests/1', 'bob');
    expect(bob.statusCode).toBe(403);
    expect(firstError(bob).detail.rule).toMatch(/no rule of clients.access matched/);
  });

  it('a pull by digest cannot bypass a rule: manifests, blobs (GET, HEAD, Range), tags and referrers, with no upstream request', async () => {
    const { pg, fake, secret } = await setup();
    const layer = layerOf(secret);
    const urls = [
      `/v2/team/secret/app/manifests/${secret.digest}`,
      `/v2/team/secret/app/blobs/${layer}`,
      '/v2/team/secret/app/tags/list',
      `/v2/team/secret/app/referrers/${secret.digest}`,
    ];
    for (const url of urls) expect((await get(pg, url, 'alice')).statusCode, url).toBe(403);
    expect((await get(pg, `/v2/team/secret/app/blobs/${layer}`, 'alice', {}, 'HEAD')).statusCode).toBe(403);
    expect((await get(pg, `/v2/team/secret/app/blobs/${layer}`, 'alice', { range: 'bytes=0-9' })).statusCode).toBe(403);
    expect(fake.count('/v2/team/secret')).toBe(0);
  });

  it('a blob cached through an allowed repository is not served through a denied one', async () => {
    const { pg, fake, app } = await setup();
    const layer = layerOf(app);
    const allowed = await get(pg, `/v2/team/app/blobs/${layer}`, 'alice');
    expect(allowed.statusCode).toBe(200);
    const before = fake.seen.length;
    expect((await get(pg, `/v2/team/secret/app/blobs/${layer}`, 'alice')).statusCode).toBe(403);
    expect((await get(pg, `/v2/team/app/blobs/${layer}`)).statusCode).toBe(401);
    expect((await get(pg, `/v2/public/app/blobs/${layer}`, 'bob')).statusCode).toBe(403);
    expect(fake.seen.length).toBe(before);
  });

  it('registries.<host>.repositories refuses names without any upstream request, saying the registry policy refused them', async () => {
    const { pg, fake } = await setup();
    const bad = await get(pg, '/v2/filtered.example/ok/bad/app/manifests/1', 'ci-bot');
    expect(bad.statusCode).toBe(403);
    const error = firstError(bad);
    expect(error.code).toBe('DENIED');
    expect(error.message).toContain("the mirror's policy for registry filtered.example refuses ok/bad/app");
    expect(error.message).toContain('registries.filtered.example.repositories.deny has "ok/bad/**"');
    const unlisted = await get(pg, '/v2/filtered.example/other/app/manifests/1', 'ci-bot');
    expect(firstError(unlisted).message).toContain('repositories.allow does not list it');
    expect(fake.count('/v2/ok/bad')).toBe(0);
    expect(fake.count('/v2/other')).toBe(0);
    expect((await get(pg, '/v2/filtered.example/ok/app/manifests/1', 'ci-bot')).statusCode).toBe(200);
  });

  it('/v2/ asks a client without credentials to log in when clients.htpasswd is set (docker sends its login only then)', async () => {
    const { pg } = await setup();
    const anonymous = await get(pg, '/v2/');
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toBe('Basic realm="pullgate"');
    expect((await get(pg, '/v2/', 'bob')).statusCode).toBe(200);
  });

  it('takes empty Basic credentials (skopeo and podman without a login send "Basic Og==") as anonymous, not as a failed login', async () => {
    const { pg, pub } = await setup();
    const empty = { authorization: `Basic ${Buffer.from(':').toString('base64')}` };
    // skopeo: GET /v2/ without credentials is challenged, then every request carries ":" as its login.
    expect((await get(pg, '/v2/')).statusCode).toBe(401);
    for (let i = 0; i < 8; i++) {
      const allowed = await get(pg, '/v2/public/app/manifests/1', undefined, empty);
      expect(allowed.statusCode).toBe(200);
      expect(allowed.headers['docker-content-digest']).toBe(pub.digest);
    }
    // Refused as anonymous (a login could help: 401 with the challenge), not as a wrong password.
    const refused = await get(pg, '/v2/team/app/manifests/1', undefined, empty);
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['www-authenticate']).toBe('Basic realm="pullgate"');
    expect(firstError(refused).message).toContain('carried none');
    expect((await get(pg, '/v2/team/app/manifests/1', undefined, { authorization: 'Basic ' })).statusCode).toBe(401);
    // Nine empty logins from one address are no failed logins: no lockout for the real one after them.
    expect((await get(pg, '/v2/team/app/manifests/1', 'alice')).statusCode).toBe(200);
    const lines = pg.logs.map((line) => JSON.parse(line) as { msg: string; user?: string; path?: string });
    expect(lines.filter((line) => line.msg === 'request' && line.path === '/v2/public/app/manifests/1').every((line) => line.user === 'anonymous')).toBe(true);
  });

  it('/v2/ answers 200 without credentials when anonymous clients may pull something and a login would add nothing', async () => {
    const fake = await new FakeRegistry({ kind: 'none' }, new FakeClock()).start();
    cleanups.push(() => fake.stop());
    fake.add(makeImage('public/app', '1'));
    const htpasswd = htpasswdFile();
    const statusOfBase = async (clients: string, exposed?: boolean): Promise<number> => {
      const pg = harness(
        `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n  private.example: { url: ${fake.origin}, auth: { type: basic, username: u, password: p } }\nclients:\n  htpasswd: ${JSON.stringify(htpasswd)}\n${clients}`,
        exposed === undefined ? {} : { exposed },
      );
      cleanups.push(() => pg.close());
      return (await pg.app.inject({ url: '/v2/' })).statusCode;
    };
    // The issue's case: only an anonymous rule (the htpasswd users have none), so docker can pull anonymously.
    expect(await statusOfBase('  access:\n    - { subjects: [anonymous], allow: ["reg.example/public/*"] }\n')).toBe(200);
    expect(await statusOfBase('  anonymous: true\n')).toBe(200);
    // Anonymous clients may pull everything (nothing said, loopback): a login adds nothing.
    expect(await statusOfBase('')).toBe(200);
    // A login could let the client pull more: docker must be asked, or it never sends its login.
    expect(await statusOfBase('  anonymous: false\n')).toBe(401);
    expect(await statusOfBase('', true)).toBe(401); // the safe default: private.example for users only
    expect(
      await statusOfBase('  access:\n    - { subjects: [authenticated], allow: ["**"] }\n    - { subjects: [anonymous], allow: ["reg.example/public/*"] }\n'),
    ).toBe(401);
    expect(await statusOfBase('  access:\n    - { subjects: [anonymous], deny: ["reg.example/x/**"] }\n    - { subjects: [anonymous, alice], allow: ["**"] }\n')).toBe(401);
  });

  it('logs the subject on every line (never the password), the deciding rule of a refusal, and counts refusals by reason', async () => {
    const { pg } = await setup();
    await get(pg, '/v2/team/app/manifests/1', 'alice');
    await get(pg, '/v2/team/secret/app/manifests/1', 'alice');
    await get(pg, '/v2/team/app/manifests/1', 'bob');
    await get(pg, '/v2/team/app/manifests/1');
    await get(pg, '/v2/filtered.example/ok/bad/app/manifests/1', 'ci-bot');
    await pg.app.inject({ url: '/v2/team/app/manifests/1', headers: { authorization: basic('alice', 'wrong-pw') } });
    const lines = pg.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.msg === 'request');
    expect(lines.map((l) => [l.user, l.status, l.denied ?? null])).toEqual([
      ['alice', 200, null],
      ['alice', 403, 'rule'],
      ['bob', 403, 'no_rule'],
      ['anonymous', 401, 'no_rule'],
      ['ci-bot', 403, 'registry_policy'],
      ['anonymous', 401, 'unauthenticated'],
    ]);
    expect(lines[1]?.rule).toBe('clients.access[0]: deny reg.example/team/secret/** for alice');
    expect(lines[4]?.rule).toContain('registries.filtered.example.repositories.deny');
    const all = pg.logs.join('\n');
    for (const password of [...Object.values(USERS), 'wrong-pw']) expect(all).not.toContain(password);
    const metrics = (await pg.app.inject({ url: '/metrics' })).body;
    expect(metrics).toContain('pullgate_requests_denied_total{reason="rule"} 1');
    expect(metrics).toContain('pullgate_requests_denied_total{reason="no_rule"} 2');
    expect(metrics).toContain('pullgate_requests_denied_total{reason="registry_policy"} 1');
    expect(metrics).toContain('pullgate_requests_denied_total{reason="unauthenticated"} 1');
  });
});

describe('one preflight for the hot path and the ordinary path', () => {
  it('answers a matrix of requests with the same statuses through a listening server (hot path) and app.inject(), and the hot path alone never serves what the ordinary path refuses', async () => {
    const { pg, app, secret, pub, htpasswd } = await setup();
    // Warm every manifest (by tag and digest) as ci-bot and alice, so the hot path can answer them.
    for (const user of ['alice', 'ci-bot', 'bob'] as const) {
      for (const url of ['/v2/team/app/manifests/1', `/v2/team/app/manifests/${app.digest}`]) await get(pg, url, user);
    }
    await get(pg, '/v2/public/app/manifests/1');
    const base = await pg.listen();
    // A server with only the hot path; it answers FELL_THROUGH for what it declines.
    const FELL_THROUGH = 599;
    const services = pg.app.pullgate;
    const auth = new ClientAuth(Htpasswd.load(htpasswd));
    cleanups.push(() => auth.close());
    for (const user of Object.keys(USERS) as User[]) await auth.verify(login(user));
    const preflight = new Preflight({ router: services.router, access: services.access, auth, metrics: services.metrics, challengeBase: true });
    const fast = fastManifestHandler({ services, logger: pg.deps.logger, preflight, requestId: () => 'hot', open: () => true, sampling: new AccessSampling('all') });
    const hotOnly = createServer((req, res) => {
      if (!fast(req, res)) res.writeHead(FELL_THROUGH).end();
    });
    await new Promise<void>((resolve) => hotOnly.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => hotOnly.close(() => resolve())));
    const hot = `http://127.0.0.1:${(hotOnly.address() as AddressInfo).port}`;

    const urls = [
      '/v2/team/app/manifests/1',
      `/v2/team/app/manifests/${app.digest}`,
      `/v2/team/secret/app/manifests/${secret.digest}`,
      '/v2/team/secret/app/manifests/1',
      '/v2/public/app/manifests/1',
      `/v2/public/app/manifests/${pub.digest}`,
      '/v2/filtered.example/ok/bad/app/manifests/1',
      `/v2/team/app/blobs/${layerOf(app)}`,
      `/v2/team/secret/app/blobs/${layerOf(app)}`,
    ];
    let servedHot = 0;
    for (const user of [undefined, 'alice', 'bob', 'ci-bot'] as const) {
      for (const url of urls) {
        for (const method of ['GET', 'HEAD'] as const) {
          const headers = user === undefined ? {} : { authorization: login(user) };
          const injected = (await get(pg, url, user, {}, method)).statusCode;
          const listening = await request(`${base}${url}`, { method, headers });
          await listening.body.dump();
          expect(listening.statusCode, `${method} ${url} as ${user ?? 'anonymous'}`).toBe(injected);
          const onlyHot = await request(`${hot}${url}`, { method, headers });
          await onlyHot.body.dump();
          if (onlyHot.statusCode !== FELL_THROUGH) {
            servedHot++;
            expect(onlyHot.statusCode, `hot path: ${method} ${url} as ${user ?? 'anonymous'}`).toBe(injected);
          }
        }
      }
    }
    expect(servedHot).toBeGreaterThan(10);
  });
});

describe('safe by default', () => {
  it('an exposed listener with credentials configured and nothing said about anonymous clients refuses them the registries behind credentials', async () => {
    const clock = new FakeClock();
    const privateReg = await new FakeRegistry({ kind: 'basic', username: 'robot', password: 'robot-pw' }, clock).start();
    const publicReg = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => privateReg.stop(), () => publicReg.stop());
    privateReg.add(makeImage('org/app', '1'));
    publicReg.add(makeImage('lib/app', '1'));
    const yaml = [
      'listen: 127.0.0.2:5000',
      'defaultRegistry: public.example',
      'registries:',
      `  private.example: { url: ${privateReg.origin}, auth: { type: basic, username: robot, password: robot-pw } }`,
      `  public.example: { url: ${publicReg.origin}, auth: { type: anonymous } }`,
    ].join('\n');
    // 127.0.0.2 is loopback (all of 127/8 is): the tests listen there only, so "exposed" is injected.
    const pg = harness(yaml, { clock, exposed: true });
    cleanups.push(() => pg.close());
    const refused = await pg.app.inject({ url: '/v2/private.example/org/app/manifests/1' });
    expect(refused.statusCode).toBe(403);
    expect(firstError(refused).detail.rule).toMatch(/^safe default .*credentials configured for private\.example; log in, or allow them/);
    expect(privateReg.count('/v2/')).toBe(0);
    expect((await pg.app.inject({ url: '/v2/lib/app/manifests/1' })).statusCode).toBe(200);
    const [warning] = exposureWarnings(pg.config, true);
    expect(warning).toMatch(/^SAFE DEFAULT: .* anonymous pulls from private\.example are refused/);
    expect(warning).toContain('clients.anonymous: true');
    expect(warning).not.toContain('robot-pw');

    // The same config on loopback (not exposed) keeps the old behaviour: anonymous pulls everything.
    const local = harness(yaml, { clock, exposed: false });
    cleanups.push(() => local.close());
    expect((await local.app.inject({ url: '/v2/private.example/org/app/manifests/1' })).statusCode).toBe(200);
  });
});

describe('/metrics behind a login or on its own listener', () => {
  it('metrics.auth: /metrics needs a login from clients.htpasswd', async () => {
    const file = htpasswdFile();
    const pg = harness(`registries:\n  docker.io: {}\nclients: { htpasswd: ${JSON.stringify(file)} }\nmetrics: { auth: true }\n`);
    cleanups.push(() => pg.close());
    const anonymous = await pg.app.inject({ url: '/metrics' });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toBe('Basic realm="pullgate"');
    const ok = await pg.app.inject({ url: '/metrics', headers: { authorization: login('bob') } });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('pullgate_requests_denied_total{reason="unauthenticated"} 1');
  });

  it('metrics.listen: /metrics moves to its own listener (and leaves the main one)', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const pg = harness(`registries:\n  docker.io: {}\nmetrics: { listen: 127.0.0.1:${port} }\n`);
    cleanups.push(() => pg.close());
    const base = await pg.listen();
    const main = await request(`${base}/metrics`);
    await main.body.dump();
    expect(main.statusCode).toBe(404);
    const own = await request(`http://127.0.0.1:${port}/metrics`);
    expect(own.statusCode).toBe(200);
    expect(await own.body.text()).toContain('pullgate_requests_denied_total');
    const other = await request(`http://127.0.0.1:${port}/v2/`);
    await other.body.dump();
    expect(other.statusCode).toBe(404);
  });
});
