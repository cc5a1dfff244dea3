import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { keychainFor } from '../../src/auth/keychain.js';
import { EcrLookup, parseEcrHost, type EcrApi } from '../../src/auth/sources/ecr.js';
import { EnvKeychainLookup, parseEnvKeychain } from '../../src/auth/sources/env-keychain.js';
import { GithubLookup } from '../../src/auth/sources/github.js';
import { LookupChain } from '../../src/auth/sources/lookup.js';
import { RktLookup } from '../../src/auth/sources/rkt.js';
import { isAcrHost } from '../../src/auth/sources/acr.js';
import { isGoogleHost } from '../../src/auth/sources/gcp.js';
import type { RegistryConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/core/errors.js';
import { FakeClock } from '../helpers/fake-clock.js';

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length > 0) rmSync(dirs.pop() ?? '', { recursive: true, force: true });
});
const b64 = (text: string): string => Buffer.from(text).toString('base64');

function registry(key: string, auth: RegistryConfig['auth'] = { type: 'auto' }): RegistryConfig {
  return { key, url: `https://${key}`, auth, realms: [], redirects: [], ca: undefined, insecure: false };
}

describe('environment keychain', () => {
  it('groups variables by suffix; the longest matching hostname wins', async () => {
    const entries = parseEnvKeychain({
      PULLGATE_REGISTRY_HOSTNAME: 'quay.io',
      PULLGATE_REGISTRY_USERNAME: 'host',
      PULLGATE_REGISTRY_PASSWORD: 'p1',
      PULLGATE_REGISTRY_HOSTNAME_TEAM: 'quay.io/org/team',
      PULLGATE_REGISTRY_USERNAME_TEAM: 'team',
      PULLGATE_REGISTRY_PASSWORD_TEAM: 'p2',
      PULLGATE_REGISTRY_HOSTNAME_GCR: '*.gcr.io,gcr.io',
      PULLGATE_REGISTRY_IDENTITY_TOKEN_GCR: 'rt',
      PULLGATE_REGISTRY_HOSTNAME_2: 'reg.example',
      PULLGATE_REGISTRY_REGISTRY_TOKEN_2: 'bt',
      UNRELATED: 'x',
    });
    const chain = new LookupChain('quay.io', [new EnvKeychainLookup(entries)], 'test');
    expect((await chain.get('org/team/app')).secret).toMatchObject({ username: 'team' });
    expect((await chain.get('org/app')).secret).toMatchObject({ username: 'host' });
    const gcr = await new LookupChain('eu.gcr.io', [new EnvKeychainLookup(entries)], 'test').get();
    expect(gcr.secret).toEqual({ kind: 'refresh', username: undefined, refreshToken: 'rt' });
    expect(gcr.source).toContain('PULLGATE_REGISTRY_HOSTNAME_GCR');
    expect(gcr.source).not.toContain('rt"');
    expect((await new LookupChain('reg.example', [new EnvKeychainLookup(entries)], 'test').get()).secret).toEqual({ kind: 'bearer', token: 'bt' });
  });

  it('an unknown PULLGATE_REGISTRY_* variable is a ConfigError naming it, at keychain construction', () => {
    expect(() => parseEnvKeychain({ PULLGATE_REGISTRY_PASSWD: 'x' })).toThrow(ConfigError);
    expect(() => parseEnvKeychain({ PULLGATE_REGISTRY_PASSWD: 'x' })).toThrow(/PULLGATE_REGISTRY_PASSWD/);
    expect(() => parseEnvKeychain({ PULLGATE_REGISTRY_USERNAME_X: 'u', PULLGATE_REGISTRY_PASSWORD_X: 'p' })).toThrow(/PULLGATE_REGISTRY_HOSTNAME_X/);
    expect(() => parseEnvKeychain({ PULLGATE_REGISTRY_HOSTNAME: 'h', PULLGATE_REGISTRY_USERNAME: 'u' })).toThrow(/PULLGATE_REGISTRY_PASSWORD/);
    expect(() => keychainFor(registry('ghcr.io', { type: 'anonymous' }), { env: { PULLGATE_REGISTRY_FOO: '1' }, clock: new FakeClock() })).toThrow(/PULLGATE_REGISTRY_FOO/);
  });
});

describe('ECR', () => {
  it('reads account and region from every ECR host form', () => {
    expect(parseEcrHost('123456789012.dkr.ecr.eu-west-1.amazonaws.com')).toEqual({ account: '123456789012', region: 'eu-west-1', fips: false });
    expect(parseEcrHost('123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com')).toMatchObject({ region: 'us-gov-west-1', fips: true });
    expect(parseEcrHost('123456789012.dkr-ecr.us-east-1.on.aws')).toMatchObject({ region: 'us-east-1' });
    expect(parseEcrHost('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn')).toMatchObject({ region: 'cn-north-1' });
    expect(parseEcrHost('123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu')).toMatchObject({ region: 'eusc-de-east-1' });
    expect(parseEcrHost('public.ecr.aws')).toBeUndefined();
    expect(parseEcrHost('12345.dkr.ecr.us-east-1.amazonaws.com')).toBeUndefined();
  });

  it('reuses the token for half its life, refreshes after invalidate, keeps a stale token on API errors', async () => {
    const clock = new FakeClock();
    let calls = 0;
    let fail = false;
    const api: EcrApi = (request) => {
      calls++;
      expect(request.region).toBe('eu-west-1');
      if (fail) return Promise.reject(new Error('AccessDeniedException: not allowed'));
      return Promise.resolve({ token: b64(`AWS:pw-${calls}`), expiresAt: clock.now() + 12 * 3_600_000 });
    };
    const chain = new LookupChain('123456789012.dkr.ecr.eu-west-1.amazonaws.com', [new EcrLookup('123456789012.dkr.ecr.eu-west-1.amazonaws.com', api, {}, clock)], 'ecr');
    expect((await chain.get()).secret).toEqual({ kind: 'basic', username: 'AWS', password: 'pw-1' });
    clock.advance(5 * 3_600_000);
    await chain.get();
    expect(calls).toBe(1);
    clock.advance(1.5 * 3_600_000);
    expect((await chain.get()).secret).toMatchObject({ password: 'pw-2' });
    chain.invalidate();
    expect((await chain.get()).secret).toMatchObject({ password: 'pw-3' });
    fail = true;
    clock.advance(7 * 3_600_000);
    const stale = await chain.get();
    expect(stale.secret).toMatchObject({ password: 'pw-3' });
    expect(stale.source).toContain('stale token kept');
    clock.advance(6 * 3_600_000);
    const gone = await chain.get();
    expect(gone.secret.kind).toBe('anonymous');
    expect(gone.source).toContain('AccessDeniedException');
  });

  it('auto picks ECR for an ECR host, nothing cloud for others', async () => {
    const api: EcrApi = () => Promise.resolve({ token: b64('AWS:x'), expiresAt: Date.now() + 3_600_000 });
    const source = keychainFor(registry('123456789012.dkr.ecr.us-east-1.amazonaws.com'), { env: {}, clock: new FakeClock(), ecrApi: api, rktDirs: [] });
    expect((await source.get('app')).source).toContain('ECR GetAuthorizationToken');
    const other = await keychainFor(registry('reg.example'), { env: {}, clock: new FakeClock(), ecrApi: api, rktDirs: [] }).get();
    expect(other.secret.kind).toBe('anonymous');
  });
});

describe('host inference', () => {
  it('recognises GCR / Artifact Registry and ACR hosts', () => {
    expect(isGoogleHost('gcr.io')).toBe(true);
    expect(isGoogleHost('eu.gcr.io')).toBe(true);
    expect(isGoogleHost('europe-west1-docker.pkg.dev')).toBe(true);
    expect(isGoogleHost('gcr.io.evil.example')).toBe(false);
    expect(isAcrHost('myreg.azurecr.io')).toBe(true);
    expect(isAcrHost('azurecr.io')).toBe(false);
  });
});

describe('github', () => {
  it('uses GITHUB_TOKEN as the Basic password with username x, or the configured username', async () => {
    const found = await new GithubLookup({ username: undefined, token: undefined, tokenFile: undefined }, { GITHUB_TOKEN: 'ghp_abc' }).find({ host: 'ghcr.io', repository: 'o/a' }, []);
    expect(found?.secret).toEqual({ kind: 'basic', username: 'x', password: 'ghp_abc' });
    expect(found?.source).not.toContain('ghp_abc');
    const named = await keychainFor(registry('ghcr.io', { type: 'github', username: 'octo' }), { env: { GITHUB_TOKEN: 't' }, clock: new FakeClock() }).get();
    expect(named.secret).toEqual({ kind: 'basic', username: 'octo', password: 't' });
    const auto = await keychainFor(registry('ghcr.io'), { env: { GITHUB_TOKEN: 't' }, clock: new FakeClock(), rktDirs: [] }).get();
    expect(auto.source).toContain('GITHUB_TOKEN');
  });
});

describe('rkt auth.d', () => {
  it('reads dockerAuth and basic auth entries; a later directory overrides', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'pullgate-rkt-'));
    dirs.push(root);
    const vendor = path.join(root, 'usr');
    const local = path.join(root, 'etc');
    mkdirSync(vendor);
    mkdirSync(local);
    writeFileSync(path.join(vendor, 'quay.json'), JSON.stringify({ rktKind: 'dockerAuth', rktVersion: 'v1', registries: ['quay.io'], credentials: { user: 'vendor', password: 'v' } }));
    writeFileSync(path.join(local, 'quay.json'), JSON.stringify({ rktKind: 'dockerAuth', rktVersion: 'v1', registries: ['quay.io'], credentials: { user: 'local', password: 'l' } }));
    writeFileSync(path.join(local, 'coreos.json'), JSON.stringify({ rktKind: 'auth', rktVersion: 'v1', domains: ['coreos.com'], type: 'basic', credentials: { user: 'c', password: 'p' } }));
    writeFileSync(path.join(local, 'notes.txt'), 'ignored');
    const rkt = new RktLookup([vendor, local]);
    expect((await rkt.find({ host: 'quay.io', repository: 'x/y' }))?.secret).toEqual({ kind: 'basic', username: 'local', password: 'l' });
    expect((await rkt.find({ host: 'coreos.com', repository: undefined }))?.secret).toMatchObject({ username: 'c' });
    expect(await rkt.find({ host: 'ghcr.io', repository: undefined })).toBeUndefined();
  });
});
