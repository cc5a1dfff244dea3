import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';
import { runDoctor } from '../../src/doctor/doctor.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeIssuer, GITHUB_ACTIONS_ISSUER, claimsOf } from '../helpers/fake-issuer.js';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import { harness, type Harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const IDENTITY = '2a3b4c/8c9d0e';
const b64 = (text: string): string => Buffer.from(text).toString('base64');

/** A fake cgr.dev that accepts exactly the registry tokens the fake issuer hands out, and the issuer. */
async function chainguard(clock: FakeClock): Promise<{ registry: FakeRegistry; issuer: FakeIssuer }> {
  const registry = await new FakeRegistry({ kind: 'bearer', users: {}, anonymous: false, expiresIn: 300, crossScope403: true }, clock).start();
  const issuer = await new FakeIssuer(clock).start();
  issuer.onIssue = (token) => {
    if (registry.auth.kind === 'bearer') registry.auth.users = { _token: token };
  };
  cleanups.push(() => registry.stop(), () => issuer.stop());
  return { registry, issuer };
}

function start(yaml: string, clock: FakeClock, env: NodeJS.ProcessEnv): Harness {
  const pg = harness(yaml, { clock, env });
  cleanups.push(() => pg.close());
  return pg;
}

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-cg-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const errorOf = (body: string): { code: string; message: string; detail: { hint?: string } } =>
  (JSON.parse(body) as { errors: { code: string; message: string; detail: { hint?: string } }[] }).errors[0] ?? { code: '', message: '', detail: {} };

describe('Chainguard assumable identity (type: chainguard, auto with CHAINGUARD_IDENTITY)', () => {
  it('a GitHub Actions job with id-token: write pulls cgr.dev/… with only the identity id; concurrent pulls share one exchange', async () => {
    const clock = new FakeClock();
    const { registry, issuer } = await chainguard(clock);
    const image = makeImage('acme/app', '1.2');
    registry.add(image);
    for (const name of ['acme/a', 'acme/b', 'acme/c']) registry.add(makeImage(name, '1'));
    issuer.identities.set(IDENTITY, { issuer: GITHUB_ACTIONS_ISSUER, subject: issuer.actionsSubject, audience: issuer.origin });
    // `auto` (the default) with nothing but CHAINGUARD_IDENTITY and what GitHub Actions sets.
    const pg = start(`defaultRegistry: cgr.dev\nregistries:\n  cgr.dev: { url: ${registry.origin} }\n`, clock, {
      ...issuer.actionsEnv(),
      CHAINGUARD_IDENTITY: IDENTITY,
      CHAINGUARD_ISSUER: issuer.origin,
    });
    const manifest = await pg.app.inject({ url: '/v2/cgr.dev/acme/app/manifests/1.2' });
    expect(manifest.statusCode).toBe(200);
    const [layer] = [...image.blobs.keys()];
    const blob = await pg.app.inject({ url: `/v2/cgr.dev/acme/app/blobs/${layer ?? ''}` });
    expect(blob.statusCode).toBe(200);
    const answers = await Promise.all(['acme/a', 'acme/b', 'acme/c'].map((name) => pg.app.inject({ url: `/v2/cgr.dev/${name}/manifests/1` })));
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200]);

    expect(issuer.actionsRequests).toEqual([{ audience: issuer.origin, authorization: `bearer ${issuer.actionsRequestToken}` }]);
    expect(issuer.exchanges).toHaveLength(1);
    const exchange = issuer.exchanges[0];
    expect(exchange?.status).toBe(200);
    expect(exchange?.body).toEqual({ aud: ['cgr.dev'], identity: IDENTITY });
    expect(exchange?.query.get('aud')).toBe('cgr.dev');
    expect(exchange?.query.get('identity')).toBe(IDENTITY);
    const users = registry.auth.kind === 'bearer' ? registry.auth.users : {};
    const registryToken = users._token ?? '';
    expect(claimsOf(registryToken).sub).toBe(`identity:${IDENTITY}`);
    // One token per scope at cgr.dev's token endpoint, each with Basic _token:<registry token>.
    expect(new Set(registry.tokenRequests().map((t) => t.authorization))).toEqual(new Set([`Basic ${b64(`_token:${registryToken}`)}`]));
    expect(registry.tokenRequests()).toHaveLength(4);
    const logs = pg.logs.join('\n');
    expect(logs).not.toContain(registryToken);
    expect(logs).not.toContain(exchange?.oidc ?? 'never');
    expect(logs).not.toContain(issuer.actionsRequestToken);
  });

  it('type: chainguard with a token file: a rotated projected token is read on the next exchange, after half the registry token\'s life', async () => {
    const clock = new FakeClock();
    const { registry, issuer } = await chainguard(clock);
    registry.add(makeImage('acme/app', '1'));
    issuer.tokenLifetime = 600;
    const subject = 'system:serviceaccount:ci:puller';
    issuer.identities.set(IDENTITY, { issuer: 'https://kubernetes.default.svc', subject, audience: issuer.origin });
    const dir = tempDir();
    const file = path.join(dir, 'token');
    const write = (ttl: number): string => {
      const token = issuer.oidcToken({ iss: 'https://kubernetes.default.svc', sub: subject, aud: issuer.origin }, ttl);
      writeFileSync(`${file}.tmp`, `${token}\n`);
      renameSync(`${file}.tmp`, file);
      return token;
    };
    const first = write(120);
    const pg = start(
      `defaultRegistry: cgr.dev\nregistries:\n  cgr.dev:\n    url: ${registry.origin}\n    auth: { type: chainguard, identity: "${IDENTITY}", issuer: "${issuer.origin}", tokenFile: ${JSON.stringify(file)} }\n`,
      clock,
      {},
    );
    const pull = async (): Promise<number> => (await pg.app.inject({ url: '/v2/cgr.dev/acme/app/manifests/1' })).statusCode;
    expect(await pull()).toBe(200);
    // Within half of the 600 s registry token's life: no new exchange, even with the file's token expired.
    clock.advance(250_000);
    expect(await pull()).toBe(200);
    expect(issuer.exchanges).toHaveLength(1);
    // kubelet rotated the file; past half-life the new token is read and exchanged.
    const second = write(3600);
    clock.advance(100_000);
    expect(await pull()).toBe(200);
    expect(issuer.exchanges.map((e) => e.oidc)).toEqual([first, second]);
    expect(issuer.exchanges.map((e) => e.status)).toEqual([200, 200]);
    const users = registry.auth.kind === 'bearer' ? registry.auth.users : {};
    expect(registry.tokenRequests().at(-1)?.authorization).toBe(`Basic ${b64(`_token:${users._token ?? ''}`)}`);
  });

  it('refreshes the registry token after expiry with a fresh GitHub Actions token (injected clock)', async () => {
    const clock = new FakeClock();
    const { registry, issuer } = await chainguard(clock);
    registry.add(makeImage('acme/app', '1'));
    issuer.tokenLifetime = 600;
    issuer.identities.set(IDENTITY, { issuer: GITHUB_ACTIONS_ISSUER, subject: issuer.actionsSubject, audience: 'https://issuer.enforce.dev' });
    const pg = start(
      `defaultRegistry: cgr.dev\nregistries:\n  cgr.dev:\n    url: ${registry.origin}\n    auth: { type: chainguard, identity: "${IDENTITY}", issuer: "${issuer.origin}", audience: "https://issuer.enforce.dev" }\n`,
      clock,
      issuer.actionsEnv(),
    );
    expect((await pg.app.inject({ url: '/v2/cgr.dev/acme/app/manifests/1' })).statusCode).toBe(200);
    clock.advance(700_000);
    expect((await pg.app.inject({ url: '/v2/cgr.dev/acme/app/manifests/1' })).statusCode).toBe(200);
    expect(issuer.actionsRequests.map((r) => r.audience)).toEqual(['https://issuer.enforce.dev', 'https://issuer.enforce.dev']);
    expect(issuer.exchanges.map((e) => e.status)).toEqual([200, 200]);
    expect(new Set(registry.tokenRequests().map((t) => t.authorization)).size).toBe(2);
  });

  describe('each refusal names its cause', () => {
    async function refused(
      setup: (issuer: FakeIssuer) => { env: NodeJS.ProcessEnv; auth?: string },
    ): Promise<{ status: number; error: ReturnType<typeof errorOf>; issuer: FakeIssuer; registry: FakeRegistry; logs: string }> {
      const clock = new FakeClock();
      const { registry, issuer } = await chainguard(clock);
      registry.add(makeImage('acme/app', '1'));
      const { env, auth } = setup(issuer);
      const pg = start(
        `defaultRegistry: cgr.dev\nregistries:\n  cgr.dev:\n    url: ${registry.origin}\n    auth: ${auth ?? `{ type: chainguard, identity: "${IDENTITY}", issuer: "${issuer.origin}" }`}\n`,
        clock,
        env,
      );
      const res = await pg.app.inject({ url: '/v2/cgr.dev/acme/app/manifests/1' });
      return { status: res.statusCode, error: errorOf(res.body), issuer, registry, logs: pg.logs.join('\n') };
    }

    it('identity not found', async () => {
      const { status, error, issuer, registry } = await refused((i) => ({ env: i.actionsEnv() }));
      expect(status).toBe(401);
      expect(error.code).toBe('UNAUTHORIZED');
      expect(error.message).toContain(`does not know identity ${IDENTITY} ("Identity not found"`);
      expect(error.detail.hint).toMatch(/chainctl iam identities/);
      expect(issuer.exchanges).toHaveLength(1);
      expect(registry.tokenRequests()).toHaveLength(0);
    });

    it('a pull_request run of a branch-restricted identity: subject not allowed', async () => {
      const { status, error, registry } = await refused((i) => {
        i.identities.set(IDENTITY, { issuer: GITHUB_ACTIONS_ISSUER, subject: 'repo:acme/app:ref:refs/heads/main', audience: i.origin });
        i.actionsSubject = 'repo:acme/app:pull_request';
        return { env: i.actionsEnv() };
      });
      expect(status).toBe(403);
      expect(error.code).toBe('DENIED');
      expect(error.message).toContain('subject "repo:acme/app:pull_request"');
      expect(error.message).toContain(`assume identity ${IDENTITY}`);
      expect(error.detail.hint).toMatch(/pull_request/);
      expect(registry.tokenRequests()).toHaveLength(0);
    });

    it('an expired CI token is refused before the issuer is asked', async () => {
      const { status, error, issuer } = await refused((i) => {
        i.identities.set(IDENTITY, { issuer: GITHUB_ACTIONS_ISSUER, subject: 'ci', audience: i.origin });
        const stale = i.oidcToken({ sub: 'ci', aud: i.origin }, -30);
        return { env: { CI_OIDC_TOKEN: stale }, auth: `{ type: chainguard, identity: "${IDENTITY}", issuer: "${i.origin}", token: "\${CI_OIDC_TOKEN}" }` };
      });
      expect(status).toBe(401);
      expect(error.message).toMatch(/the OIDC token from config auth.token expired 30 s ago/);
      expect(issuer.exchanges).toHaveLength(0);
    });

    it('an expired token the issuer refuses as expired (clock skew) is named as such', async () => {
      const { status, error } = await refused((i) => {
        i.identities.set(IDENTITY, { issuer: GITHUB_ACTIONS_ISSUER, subject: 'ci', audience: i.origin });
        // No exp claim: pullgate cannot tell; the issuer says it is expired.
        const token = ['e30', Buffer.from(JSON.stringify({ iss: GITHUB_ACTIONS_ISSUER, sub: 'ci', aud: i.origin })).toString('base64url'), 'c2ln'].join('.');
        return { env: { CI_OIDC_TOKEN: token }, auth: `{ type: chainguard, identity: "${IDENTITY}", issuer: "${i.origin}", token: "\${CI_OIDC_TOKEN}" }` };
      });
      expect(status).toBe(401);
      expect(error.message).toMatch(/refused the OIDC token from config auth.token as expired/);
    });

    it('no OIDC token source: says how to add id-token: write', async () => {
      const { status, error, issuer } = await refused(() => ({ env: { GITHUB_ACTIONS: 'true' } }));
      expect(status).toBe(401);
      expect(error.message).toMatch(/no OIDC token to assume Chainguard identity/);
      expect(error.detail.hint).toContain('permissions: { id-token: write }');
      expect(issuer.exchanges).toHaveLength(0);
      expect(issuer.actionsRequests).toHaveLength(0);
    });
  });

  it('doctor explains each identity failure, and walks a working identity to "pullable"', async () => {
    const clock = new FakeClock();
    const { registry, issuer } = await chainguard(clock);
    registry.add(makeImage('acme/app', '1'));
    const dispatcher = new Agent();
    cleanups.push(() => dispatcher.close());
    const run = async (env: NodeJS.ProcessEnv): Promise<{ ok: boolean; out: string }> => {
      const yaml = `registries:\n  cgr.dev:\n    url: ${registry.origin}\n    auth: { type: chainguard, identity: "${IDENTITY}", issuer: "${issuer.origin}" }\n`;
      const config = loadConfigText(yaml, env, 'test', tmpdir());
      const lines: string[] = [];
      const ok = await runDoctor('cgr.dev/acme/app:1', config, { env, clock, dispatcher, rktDirs: [] }, (line) => lines.push(line));
      return { ok, out: lines.join('\n') };
    };
    const missing = await run(issuer.actionsEnv());
    expect(missing.ok).toBe(false);
    expect(missing.out).toMatch(/^credentials +FAILED: .*does not know identity 2a3b4c\/8c9d0e/m);
    expect(missing.out).toMatch(/^cause {8}the issuer does not know this identity \("Identity not found"\)$/m);
    expect(missing.out).toMatch(/^fix {10}check the identity id/m);

    issuer.identities.set(IDENTITY, { issuer: GITHUB_ACTIONS_ISSUER, subject: 'repo:acme/app:ref:refs/heads/main', audience: issuer.origin });
    issuer.actionsSubject = 'repo:acme/app:pull_request';
    const pr = await run(issuer.actionsEnv());
    expect(pr.out).toMatch(/^cause {8}the OIDC token's subject or audience is not one the identity accepts$/m);
    expect(pr.out).toContain('subject "repo:acme/app:pull_request"');

    const none = await run({});
    expect(none.out).toMatch(/^cause {8}there is no OIDC token to exchange$/m);
    expect(none.out).toMatch(/^fix .*permissions: \{ id-token: write \}/m);

    issuer.actionsSubject = 'repo:acme/app:ref:refs/heads/main';
    const good = await run(issuer.actionsEnv());
    expect(good.ok).toBe(true);
    expect(good.out).toMatch(/^credentials +Chainguard identity 2a3b4c\/8c9d0e \(GitHub Actions id-token .*user "_token"$/m);
    for (const result of [missing, pr, none, good]) expect(result.out).not.toContain(issuer.actionsRequestToken);
  });
});
