import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ACR_TOKEN_USER } from '../../src/auth/sources/acr.js';
import { FakeRegistry, makeImage, type AuthMode } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const b64 = (text: string): string => Buffer.from(text).toString('base64');

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-creds-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const bearer = (users: Record<string, string>): AuthMode => ({ kind: 'bearer', users, anonymous: false, expiresIn: 300, crossScope403: true });

async function fakeRegistry(auth: AuthMode, clock: FakeClock): Promise<FakeRegistry> {
  const fake = await new FakeRegistry(auth, clock).start();
  cleanups.push(() => fake.stop());
  return fake;
}

function start(yaml: string, clock: FakeClock, env: NodeJS.ProcessEnv): Harness {
  const pg = harness(yaml, { clock, env });
  cleanups.push(() => pg.close());
  return pg;
}

/** A one-route JSON server on 127.0.0.1:0 that records what it receives. */
async function jsonServer(handler: (req: IncomingMessage, body: string) => { status: number; body: unknown }): Promise<{ origin: string; seen: { path: string; headers: IncomingMessage['headers']; body: string }[] }> {
  const seen: { path: string; headers: IncomingMessage['headers']; body: string }[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      seen.push({ path: req.url ?? '', headers: req.headers, body });
      const answer = handler(req, body);
      const text = JSON.stringify(answer.body);
      res.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

describe('credential sources, end to end through pullgate', () => {
  it('uses a docker-credential helper found on PATH (the cgr helper shape), and never logs its secret', async () => {
    const clock = new FakeClock();
    const fake = await fakeRegistry(bearer({ _token: 'helper-Secret-123' }), clock);
    fake.add(makeImage('chainguard/node', '20'));
    const bin = tempDir();
    const calls = path.join(bin, 'calls.log');
    const helper = path.join(bin, 'docker-credential-cgr');
    writeFileSync(
      helper,
      `#!/bin/sh\nread server\necho "$1 $server" >> ${JSON.stringify(calls)}\nprintf '{"ServerURL":"%s","Username":"_token","Secret":"helper-Secret-123"}' "$server"\n`,
    );
    chmodSync(helper, 0o755);
    const dockerDir = tempDir();
    writeFileSync(path.join(dockerDir, 'config.json'), JSON.stringify({ auths: { 'cgr.dev': {} }, credHelpers: { 'cgr.dev': 'cgr' } }));
    const pg = start(`defaultRegistry: cgr.dev\nregistries:\n  cgr.dev: { url: ${fake.origin} }\n`, clock, { PATH: `${bin}:/usr/bin:/bin`, DOCKER_CONFIG: dockerDir });
    const res = await pg.app.inject({ url: '/v2/cgr.dev/chainguard/node/manifests/20' });
    expect(res.statusCode).toBe(200);
    expect(fake.tokenRequests()[0]?.authorization).toBe(`Basic ${b64('_token:helper-Secret-123')}`);
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(calls, 'utf8')).toBe('get cgr.dev\n');
    expect(pg.logs.join('\n')).not.toContain('helper-Secret-123');
  });

  it('picks up a rotated Kubernetes Secret (..data symlink swap) without a restart', async () => {
    const clock = new FakeClock();
    const fake = await fakeRegistry(bearer({ robot: 'first-pw' }), clock);
    fake.add(makeImage('team/a', '1'));
    fake.add(makeImage('team/b', '1'));
    const mount = tempDir();
    const writeVersion = (name: string, password: string): void => {
      mkdirSync(path.join(mount, name));
      writeFileSync(path.join(mount, name, '.dockerconfigjson'), JSON.stringify({ auths: { 'reg.example': { auth: b64(`robot:${password}`) } } }));
      symlinkSync(name, path.join(mount, '..data_tmp'));
      renameSync(path.join(mount, '..data_tmp'), path.join(mount, '..data'));
    };
    writeVersion('..2026_01_01', 'first-pw');
    symlinkSync('..data/.dockerconfigjson', path.join(mount, '.dockerconfigjson'));
    const pg = start(
      `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin}, auth: { type: docker-config, path: ${JSON.stringify(mount)} } }\n`,
      clock,
      {},
    );
    expect((await pg.app.inject({ url: '/v2/reg.example/team/a/manifests/1' })).statusCode).toBe(200);
    if (fake.auth.kind === 'bearer') fake.auth.users = { robot: 'second-pw' };
    writeVersion('..2026_01_02', 'second-pw');
    const after = await pg.app.inject({ url: '/v2/reg.example/team/b/manifests/1' });
    expect(after.statusCode).toBe(200);
    expect(fake.tokenRequests().map((t) => t.authorization)).toEqual([`Basic ${b64('robot:first-pw')}`, `Basic ${b64('robot:second-pw')}`]);
  });

  it('precedence under auto: environment keychain › docker config › anonymous', async () => {
    const clock = new FakeClock();
    const fake = await fakeRegistry(bearer({ env: 'env-pw', file: 'file-pw' }), clock);
    fake.add(makeImage('team/a', '1'));
    const dockerDir = tempDir();
    writeFileSync(path.join(dockerDir, 'config.json'), JSON.stringify({ auths: { 'reg.example': { auth: b64('file:file-pw') } } }));
    const yaml = `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n`;
    const withEnv = start(yaml, clock, { DOCKER_CONFIG: dockerDir, PULLGATE_REGISTRY_HOSTNAME: 'reg.example', PULLGATE_REGISTRY_USERNAME: 'env', PULLGATE_REGISTRY_PASSWORD: 'env-pw' });
    expect((await withEnv.app.inject({ url: '/v2/reg.example/team/a/manifests/1' })).statusCode).toBe(200);
    const fileOnly = start(yaml, clock, { DOCKER_CONFIG: dockerDir });
    expect((await fileOnly.app.inject({ url: '/v2/reg.example/team/a/manifests/1' })).statusCode).toBe(200);
    const none = start(yaml, clock, {});
    const denied = await none.app.inject({ url: '/v2/reg.example/team/a/manifests/1' });
    expect(denied.statusCode).toBe(401);
    // The client learns the kind of credential source (none found under auto), never an account or a file;
    // what auto searched is in the operator's log.
    expect(denied.body).toContain('anonymous (auth type \\"auto\\": no credentials found)');
    expect(none.logs.join('\n')).toContain('anonymous (auth type \\"auto\\"');
    expect(fake.tokenRequests().map((t) => t.authorization)).toEqual([`Basic ${b64('env:env-pw')}`, `Basic ${b64('file:file-pw')}`, undefined]);
    for (const pg of [withEnv, fileOnly, none]) expect(pg.logs.join('\n')).not.toMatch(/env-pw|file-pw/);
  });

  it('refuses to start on an unknown PULLGATE_REGISTRY_* variable', () => {
    expect(() => harness('registries:\n  docker.io: {}\n', { env: { PULLGATE_REGISTRY_USER: 'x' } })).toThrow(/PULLGATE_REGISTRY_USER/);
  });

  it('ECR: GetAuthorizationToken through AWS_ENDPOINT_URL_ECR, cached, refreshed on "authorization token has expired"', async () => {
    const clock = new FakeClock();
    const ecrApi = await jsonServer((req) => {
      expect(req.headers['x-amz-target']).toBe('AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken');
      return { status: 200, body: { authorizationData: [{ authorizationToken: b64('AWS:ecr-pw'), expiresAt: (Date.now() + 12 * 3_600_000) / 1000, proxyEndpoint: 'https://x' }] } };
    });
    const fake = await fakeRegistry({ kind: 'basic', username: 'AWS', password: 'ecr-pw' }, clock);
    fake.add(makeImage('app', 'v1'));
    fake.add(makeImage('app', 'v2'));
    fake.add(makeImage('app', 'v3'));
    const key = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
    const pg = start(`defaultRegistry: ${key}\nregistries:\n  ${key}: { url: ${fake.origin}, auth: { type: ecr } }\n`, clock, {
      AWS_ENDPOINT_URL_ECR: ecrApi.origin,
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'dummy-secret-key',
    });
    expect((await pg.app.inject({ url: `/v2/${key}/app/manifests/v1` })).statusCode).toBe(200);
    expect(ecrApi.seen).toHaveLength(1);
    expect(ecrApi.seen[0]?.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d+\/eu-west-1\/ecr\//);
    fake.faults.manifestErrors = [{ status: 403, code: 'DENIED', message: 'Your authorization token has expired. Reauthenticate and try again.' }];
    // The expired password is replaced and the same request retried once: the client sees a 200.
    expect((await pg.app.inject({ url: `/v2/${key}/app/manifests/v2` })).statusCode).toBe(200);
    expect(ecrApi.seen).toHaveLength(2);
    expect((await pg.app.inject({ url: `/v2/${key}/app/manifests/v3` })).statusCode).toBe(200);
    expect(ecrApi.seen).toHaveLength(2);
    // An expiry that a fresh token does not cure is reported, not retried forever.
    fake.faults.manifestErrors = [
      { status: 403, code: 'DENIED', message: 'Your authorization token has expired. Reauthenticate and try again.' },
      { status: 403, code: 'DENIED', message: 'Your authorization token has expired. Reauthenticate and try again.' },
    ];
    fake.add(makeImage('app', 'v4'));
    expect((await pg.app.inject({ url: `/v2/${key}/app/manifests/v4` })).statusCode).toBe(403);
    expect(ecrApi.seen).toHaveLength(3);
    expect(pg.logs.join('\n')).not.toMatch(/ecr-pw|dummy-secret-key/);
  });

  it('GCP: an access token from the metadata server at GCE_METADATA_HOST, as oauth2accesstoken', async () => {
    const clock = new FakeClock();
    const metadata = await jsonServer(() => ({ status: 200, body: { access_token: 'ya29.meta-token', expires_in: 3599, token_type: 'Bearer' } }));
    const fake = await fakeRegistry(bearer({ oauth2accesstoken: 'ya29.meta-token' }), clock);
    fake.add(makeImage('proj/app', '1'));
    fake.add(makeImage('proj/app', '2'));
    const pg = start(`defaultRegistry: eu.gcr.io\nregistries:\n  eu.gcr.io: { url: ${fake.origin} }\n`, clock, { GCE_METADATA_HOST: new URL(metadata.origin).host });
    expect((await pg.app.inject({ url: '/v2/eu.gcr.io/proj/app/manifests/1' })).statusCode).toBe(200);
    expect((await pg.app.inject({ url: '/v2/eu.gcr.io/proj/app/manifests/2' })).statusCode).toBe(200);
    expect(metadata.seen).toHaveLength(1);
    expect(metadata.seen[0]?.path).toBe('/computeMetadata/v1/instance/service-accounts/default/token');
    expect(metadata.seen[0]?.headers['metadata-flavor']).toBe('Google');
    expect(pg.logs.join('\n')).not.toContain('ya29.meta-token');
  });

  it('GCP: a service-account key file is sent as _json_key', async () => {
    const clock = new FakeClock();
    const key = JSON.stringify({ type: 'service_account', client_email: 'sa@p.iam.gserviceaccount.com', private_key: 'PRIVATE' });
    const fake = await fakeRegistry(bearer({ _json_key: key }), clock);
    fake.add(makeImage('proj/app', '1'));
    const dir = tempDir();
    writeFileSync(path.join(dir, 'sa.json'), key);
    const pg = start(`defaultRegistry: europe-docker.pkg.dev\nregistries:\n  europe-docker.pkg.dev: { url: ${fake.origin}, auth: { type: gcp } }\n`, clock, { GOOGLE_APPLICATION_CREDENTIALS: path.join(dir, 'sa.json') });
    expect((await pg.app.inject({ url: '/v2/europe-docker.pkg.dev/proj/app/manifests/1' })).statusCode).toBe(200);
    expect(pg.logs.join('\n')).not.toContain('PRIVATE');
  });

  it('ACR: AAD client credentials → /oauth2/exchange → refresh-token grant', async () => {
    const clock = new FakeClock();
    const aad = await jsonServer(() => ({ status: 200, body: { access_token: 'aad-access-token', expires_in: 3599, token_type: 'Bearer' } }));
    const fake = await fakeRegistry(bearer({ [ACR_TOKEN_USER]: 'acr-refresh-token' }), clock);
    fake.add(makeImage('team/app', '1'));
    const exchanges: URLSearchParams[] = [];
    fake.routes.set('/oauth2/exchange', (_req, res, body) => {
      exchanges.push(new URLSearchParams(body));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ refresh_token: 'acr-refresh-token' }));
    });
    const pg = start(`defaultRegistry: myreg.azurecr.io\nregistries:\n  myreg.azurecr.io: { url: ${fake.origin} }\n`, clock, {
      AZURE_TENANT_ID: 'tenant-1',
      AZURE_CLIENT_ID: 'client-1',
      AZURE_CLIENT_SECRET: 'client-Secret-1',
      AZURE_AUTHORITY_HOST: aad.origin,
    });
    expect((await pg.app.inject({ url: '/v2/myreg.azurecr.io/team/app/manifests/1' })).statusCode).toBe(200);
    expect(aad.seen[0]?.path).toBe('/tenant-1/oauth2/v2.0/token');
    expect(new URLSearchParams(aad.seen[0]?.body).get('scope')).toBe('https://containerregistry.azure.net/.default');
    expect(exchanges[0]?.get('grant_type')).toBe('access_token');
    expect(exchanges[0]?.get('service')).toBe('myreg.azurecr.io');
    expect(exchanges[0]?.get('access_token')).toBe('aad-access-token');
    expect(pg.logs.join('\n')).not.toMatch(/client-Secret-1|acr-refresh-token|aad-access-token/);
  });

  it('reads a containers auth.json namespaced entry for the repository being pulled', async () => {
    const clock = new FakeClock();
    const fake = await fakeRegistry(bearer({ orgbot: 'org-pw' }), clock);
    fake.add(makeImage('org/app', '1'));
    const dir = tempDir();
    writeFileSync(path.join(dir, 'auth.json'), JSON.stringify({ auths: { 'quay.io': { auth: b64('hostbot:wrong') }, 'quay.io/org': { auth: b64('orgbot:org-pw') } } }));
    const pg = start(`defaultRegistry: quay.io\nregistries:\n  quay.io: { url: ${fake.origin} }\n`, clock, { REGISTRY_AUTH_FILE: path.join(dir, 'auth.json') });
    expect((await pg.app.inject({ url: '/v2/quay.io/org/app/manifests/1' })).statusCode).toBe(200);
    expect(fake.tokenRequests()[0]?.authorization).toBe(`Basic ${b64('orgbot:org-pw')}`);
  });
});
