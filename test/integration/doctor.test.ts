import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';
import { runDoctor } from '../../src/doctor/doctor.js';
import { FakeRegistry, makeImage, type AuthMode } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const SECRET = 'Sup3r-secret-pw';
const bearer = (extra: Partial<Extract<AuthMode, { kind: 'bearer' }>> = {}): AuthMode => ({
  kind: 'bearer',
  users: { alice: SECRET },
  anonymous: false,
  expiresIn: 300,
  crossScope403: false,
  ...extra,
});

async function fake(auth: AuthMode, clock: FakeClock): Promise<FakeRegistry> {
  const registry = await new FakeRegistry(auth, clock).start();
  cleanups.push(() => registry.stop());
  return registry;
}

/** Runs doctor on a YAML config; returns whether it passed and what it wrote. */
async function doctor(image: string, yaml: string, options: { env?: NodeJS.ProcessEnv; clock?: FakeClock; dispatcher?: Agent } = {}): Promise<{ ok: boolean; out: string }> {
  const env = options.env ?? {};
  const config = loadConfigText(yaml, env, 'test', tmpdir());
  const dispatcher = options.dispatcher ?? new Agent();
  cleanups.push(() => dispatcher.close());
  const lines: string[] = [];
  const ok = await runDoctor(image, config, { env, clock: options.clock ?? new FakeClock(), dispatcher, rktDirs: [] }, (line) => lines.push(line));
  const out = lines.join('\n');
  expect(out).not.toContain(SECRET);
  expect(out).not.toContain(Buffer.from(`alice:${SECRET}`).toString('base64'));
  return { ok, out };
}

const basicYaml = (key: string, origin: string, auth = `{ type: basic, username: alice, password: ${SECRET} }`): string =>
  `defaultRegistry: ${key}\nregistries:\n  ${key}: { url: ${origin}, auth: ${auth} }\n`;

describe('pullgate doctor', () => {
  it('walks route, credentials, challenge, token scope and manifest HEAD for a pullable image', async () => {
    const clock = new FakeClock();
    const registry = await fake(bearer(), clock);
    const image = registry.add(makeImage('team/app', '1.0'));
    const { ok, out } = await doctor('reg.example/team/app:1.0', basicYaml('reg.example', registry.origin), { clock });
    expect(ok).toBe(true);
    expect(out).toMatch(/^route {8}reg\.example\/team\/app:1\.0 → registry reg\.example .*repository team\/app, reference 1\.0$/m);
    expect(out).toMatch(/^credentials +config registries\.reg\.example\.auth \(basic, user "alice"\)$/m);
    expect(out).toMatch(/^ping .*→ 401, challenge Bearer realm=".*\/token" service="fake-registry"$/m);
    expect(out).toMatch(/^token .*GET with Basic .*scope=repository:team\/app:pull → token valid 300 s$/m);
    expect(out).toContain(image.digest);
    expect(out).toMatch(/is pullable/);
    expect(registry.seen.filter((s) => s.method === 'HEAD')).toHaveLength(1);
  });

  it('says the registry\'s fetch policy refuses a repository, and sends no request for it', async () => {
    const clock = new FakeClock();
    const registry = await fake({ kind: 'none' }, clock);
    registry.add(makeImage('org/secret', '1.0'));
    const yaml = `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${registry.origin}, repositories: { deny: [org/secret] } }\n`;
    const { ok, out } = await doctor('reg.example/org/secret:1.0', yaml, { clock });
    expect(ok).toBe(false);
    expect(out).toContain('registries.reg.example.repositories');
    expect(registry.seen.filter((seen) => seen.path.startsWith('/v2/org/secret/'))).toEqual([]);
  });

  it('401 with no credentials found: says what was searched, and a helper that is not installed', async () => {
    const registry = await fake(bearer(), new FakeClock());
    registry.add(makeImage('team/app', '1'));
    const dockerDir = mkdtempSync(path.join(tmpdir(), 'pullgate-doc-'));
    cleanups.push(() => rmSync(dockerDir, { recursive: true, force: true }));
    writeFileSync(path.join(dockerDir, 'config.json'), JSON.stringify({ credHelpers: { 'reg.example': 'nosuchhelper' } }));
    const { ok, out } = await doctor('reg.example/team/app:1', `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${registry.origin} }\n`, { env: { DOCKER_CONFIG: dockerDir, PATH: dockerDir } });
    expect(ok).toBe(false);
    expect(out).toMatch(/^token .*FAILED/m);
    expect(out).toContain('docker-credential-nosuchhelper is not installed');
    expect(out).toMatch(/^fix .*docker login reg\.example/m);
  });

  it('401 from the token server with wrong credentials: wrong or expired', async () => {
    const registry = await fake(bearer({ users: { alice: 'other' } }), new FakeClock());
    const { ok, out } = await doctor('reg.example/team/app:1', basicYaml('reg.example', registry.origin));
    expect(ok).toBe(false);
    expect(out).toMatch(/^cause .*refused the credentials from config registries\.reg\.example\.auth.*wrong or expired/m);
  });

  it('403 with valid credentials: wrong organisation or scope', async () => {
    const registry = await fake(bearer(), new FakeClock());
    registry.add(makeImage('other-org/app', '1'));
    registry.faults.manifestErrors = [
      { status: 403, code: 'DENIED', message: 'requested access to the resource is denied' },
      { status: 403, code: 'DENIED', message: 'requested access to the resource is denied' },
    ];
    const { ok, out } = await doctor('reg.example/other-org/app:1', basicYaml('reg.example', registry.origin));
    expect(ok).toBe(false);
    expect(out).toMatch(/^manifest .*FAILED: HEAD .* → 403 \(requested access to the resource is denied\)/m);
    expect(out).toMatch(/^fix .*organisation/m);
  });

  it('cgr.dev anonymous: only :latest and :latest-dev', async () => {
    const registry = await fake(bearer({ anonymous: true, crossScope403: true, anonymousTags: ['latest', 'latest-dev'] }), new FakeClock());
    registry.add(makeImage('chainguard/node', '20'));
    registry.add(makeImage('chainguard/node', 'latest'));
    const yaml = `defaultRegistry: cgr.dev\nregistries:\n  cgr.dev: { url: ${registry.origin}, auth: { type: anonymous } }\n`;
    expect((await doctor('cgr.dev/chainguard/node:latest', yaml)).ok).toBe(true);
    const { ok, out } = await doctor('cgr.dev/chainguard/node:20', yaml);
    expect(ok).toBe(false);
    expect(out).toMatch(/^cause .*:latest and :latest-dev anonymously; :20 needs a Chainguard pull token/m);
    expect(out).toMatch(/chainctl auth pull-token/);
  });

  it('ECR: an expired authorization token', async () => {
    const registry = await fake({ kind: 'basic', username: 'AWS', password: SECRET }, new FakeClock());
    registry.add(makeImage('app', 'v1'));
    const expired = { status: 403, code: 'DENIED', message: 'Your authorization token has expired. Reauthenticate and try again.' };
    registry.faults.manifestErrors = [expired, expired];
    const { ok, out } = await doctor('ecr.example/app:v1', basicYaml('ecr.example', registry.origin, `{ type: basic, username: AWS, password: ${SECRET} }`));
    expect(ok).toBe(false);
    expect(out).toMatch(/^ping .*challenge Basic/m);
    expect(out).toMatch(/^cause {8}the ECR authorization token has expired$/m);
  });

  it('a realm on an unrelated host is refused before any credential is sent', async () => {
    const registry = await fake(bearer({ realmOrigin: 'http://localhost:9' }), new FakeClock());
    const { ok, out } = await doctor('reg.example/team/app:1', basicYaml('reg.example', registry.origin));
    expect(ok).toBe(false);
    expect(out).toMatch(/^token .*FAILED: refusing to send credentials to http:\/\/localhost:9\/token/m);
    expect(out).toMatch(/^fix .*registries\.reg\.example\.realms/m);
    expect(registry.count('/token')).toBe(0);
  });

  it('DNS and connection errors name the cause', async () => {
    const dnsFailing = new Agent({
      connect: {
        lookup: (_host, _options, callback) => {
          const error: NodeJS.ErrnoException = new Error('getaddrinfo ENOTFOUND registry.nowhere.example');
          error.code = 'ENOTFOUND';
          callback(error, '', 4);
        },
      },
    });
    const dns = await doctor('registry.nowhere.example/a:1', 'registries:\n  registry.nowhere.example: {}\ndefaultRegistry: registry.nowhere.example\n', { dispatcher: dnsFailing });
    expect(dns.ok).toBe(false);
    expect(dns.out).toMatch(/^cause {8}DNS: registry\.nowhere\.example does not resolve \(ENOTFOUND\)$/m);

    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const refused = await doctor('closed.example/a:1', `registries:\n  closed.example: { url: "http://127.0.0.1:${port}" }\ndefaultRegistry: closed.example\n`);
    expect(refused.ok).toBe(false);
    expect(refused.out).toMatch(/^cause .*ECONNREFUSED/m);
  });

  it('TLS: an untrusted certificate is explained; with ca: the same registry is pullable', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const image = makeImage('lab/app', '1');
    const server = createHttpsServer({ key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) }, (req, res) => {
      if (req.url === '/v2/') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
        return;
      }
      res.writeHead(req.url === '/v2/lab/app/manifests/1' ? 200 : 404, { 'content-type': image.mediaType, 'docker-content-digest': image.digest });
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const untrusted = await doctor('harbor.lab/lab/app:1', `defaultRegistry: harbor.lab\nregistries:\n  harbor.lab: { url: "${origin}" }\n`);
    expect(untrusted.ok).toBe(false);
    expect(untrusted.out).toMatch(/^cause {8}TLS: the certificate of 127\.0\.0\.1:\d+ is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\)$/m);
    expect(untrusted.out).toMatch(/^fix .*registries\.harbor\.lab\.ca/m);
    const trusted = await doctor('harbor.lab/lab/app:1', `defaultRegistry: harbor.lab\nregistries:\n  harbor.lab: { url: "${origin}", ca: ${JSON.stringify(path.join(dir, 'cert.pem'))}, auth: { type: anonymous } }\n`);
    expect(trusted.ok).toBe(true);
    const insecure = await doctor('harbor.lab/lab/app:1', `defaultRegistry: harbor.lab\nregistries:\n  harbor.lab: { url: "${origin}", insecure: true, auth: { type: anonymous } }\n`);
    expect(insecure.ok).toBe(true);
  });

  it('warns about sudo using root\'s credential store', async () => {
    const registry = await fake(bearer(), new FakeClock());
    const { ok, out } = await doctor('reg.example/team/app:1', `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${registry.origin} }\n`, { env: { SUDO_USER: 'alice', HOME: '/root' } });
    expect(ok).toBe(false);
    expect(out).toMatch(/^warning {6}running under sudo: HOME is \/root, so root's docker config and credential store are searched, not alice's/m);
  });

  it('a password from an unset ${VAR} is named, not called wrong or expired (issue 9)', async () => {
    const registry = await fake(bearer(), new FakeClock());
    registry.add(makeImage('team/app', '1'));
    const yaml = basicYaml('reg.example', registry.origin, '{ type: basic, username: alice, password: "${REG_TOKEN}" }');
    const { ok, out } = await doctor('reg.example/team/app:1', yaml, { env: {} });
    expect(ok).toBe(false);
    expect(out).toMatch(/^warning {6}registries\.reg\.example\.auth\.password comes from \$\{REG_TOKEN\}, which is unset$/m);
    expect(out).toMatch(/^cause {8}registries\.reg\.example\.auth\.password comes from \$\{REG_TOKEN\}, which is unset/m);
    expect(out).toMatch(/^fix {10}set REG_TOKEN in pullgate's environment/m);
    expect(out).not.toMatch(/wrong or expired/);
    // Set, the same config pulls.
    expect((await doctor('reg.example/team/app:1', yaml, { env: { REG_TOKEN: SECRET } })).ok).toBe(true);
  });

  it('a login from a credential helper that the token server refuses: log in again with that helper', async () => {
    const registry = await fake(bearer(), new FakeClock());
    const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-doc-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ credHelpers: { 'reg.example': 'fake' } }));
    writeFileSync(path.join(dir, 'docker-credential-fake'), '#!/bin/sh\necho \'{"Username":"alice","Secret":"stale"}\'\n', { mode: 0o755 });
    const { ok, out } = await doctor('reg.example/team/app:1', `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${registry.origin} }\n`, { env: { DOCKER_CONFIG: dir, PATH: `${dir}:/usr/bin:/bin` } });
    expect(ok).toBe(false);
    expect(out).toMatch(/^credentials +credential helper docker-credential-fake /m);
    expect(out).toMatch(/^token .*FAILED: GET with Basic /m);
    expect(out).toMatch(/^fix {10}the login held by docker-credential-fake may have expired/m);
  });

  it('an unconfigured registry fails at the route step', async () => {
    const { ok, out } = await doctor('ghcr.io/org/app:1', 'registries:\n  docker.io: {}\n');
    expect(ok).toBe(false);
    expect(out).toMatch(/^route {8}FAILED: registry ghcr\.io is not configured/m);
  });
});
