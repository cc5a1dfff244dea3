import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Secret } from '../../src/auth/credential.js';
import { bestMatch, hostMatches, normaliseKey } from '../../src/auth/docker-config/match.js';
import { decodeAuthField, parseAuthFile } from '../../src/auth/docker-config/parse.js';
import { CredentialHelpers, type HelperRunner } from '../../src/auth/sources/credential-helper.js';
import { dockerConfigLookups, defaultAuthFiles } from '../../src/auth/sources/docker-config.js';
import { LookupChain } from '../../src/auth/sources/lookup.js';
import { FakeClock } from '../helpers/fake-clock.js';

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const dirs: string[] = [];
afterEach(() => {
  while (dirs.length > 0) rmSync(dirs.pop() ?? '', { recursive: true, force: true });
});

function tempFile(name: string, content: unknown): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-cred-'));
  dirs.push(dir);
  const file = path.join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** A helper runner that answers from a table and records the calls. */
function fakeHelpers(answers: Record<string, { code: number; stdout: string } | 'missing'>): { runner: HelperRunner; calls: { program: string; input: string }[] } {
  const calls: { program: string; input: string }[] = [];
  const runner: HelperRunner = (program, _args, input) => {
    calls.push({ program, input });
    const answer = answers[program];
    if (answer === undefined || answer === 'missing') {
      const error: NodeJS.ErrnoException = new Error('spawn ENOENT');
      error.code = 'ENOENT';
      return Promise.resolve({ code: null, stdout: '', stderr: '', timedOut: false, error });
    }
    return Promise.resolve({ code: answer.code, stdout: answer.stdout, stderr: '', timedOut: false });
  };
  return { runner, calls };
}

async function lookup(file: string, host: string, repository?: string, runner?: HelperRunner): Promise<{ secret: Secret; source: string }> {
  const helpers = new CredentialHelpers({}, new FakeClock(), runner ?? fakeHelpers({}).runner);
  const chain = new LookupChain(host, dockerConfigLookups(file, {}, helpers), 'test');
  return chain.get(repository);
}

describe('docker config.json / auth.json shapes (reference §6 vectors A–N)', () => {
  it('A: https://index.docker.io/v1/ auth is Docker Hub user/pass', async () => {
    const file = tempFile('config.json', { auths: { 'https://index.docker.io/v1/': { auth: 'dXNlcjpwYXNz' } } });
    expect((await lookup(file, 'docker.io')).secret).toEqual({ kind: 'basic', username: 'user', password: 'pass' });
  });

  it('B: a podman-style docker.io key is also Docker Hub', async () => {
    const file = tempFile('auth.json', { auths: { 'docker.io': { auth: b64('pod:man') } } });
    expect((await lookup(file, 'docker.io', 'library/alpine')).secret).toEqual({ kind: 'basic', username: 'pod', password: 'man' });
    expect(normaliseKey('registry-1.docker.io').host).toBe('docker.io');
  });

  it('C: username/password fields', async () => {
    const file = tempFile('config.json', { auths: { 'reg.example': { username: 'u', password: 'p' } } });
    const found = await lookup(file, 'reg.example');
    expect(found.secret).toEqual({ kind: 'basic', username: 'u', password: 'p' });
    expect(found.source).toContain('auths "reg.example"');
    expect(found.source).not.toContain('"p"');
  });

  it('D: ACR identitytoken beside an auth of 0000…: is a refresh grant', async () => {
    const file = tempFile('config.json', { auths: { 'r.azurecr.io': { auth: b64('00000000-0000-0000-0000-000000000000:'), identitytoken: 'rt-1' } } });
    expect((await lookup(file, 'r.azurecr.io')).secret).toEqual({ kind: 'refresh', username: '00000000-0000-0000-0000-000000000000', refreshToken: 'rt-1' });
  });

  it('E: a {} placeholder with credsStore asks the helper, never empty credentials', async () => {
    const file = tempFile('config.json', { auths: { 'ghcr.io': {} }, credsStore: 'desktop' });
    const { runner, calls } = fakeHelpers({ 'docker-credential-desktop': { code: 0, stdout: JSON.stringify({ ServerURL: 'ghcr.io', Username: 'me', Secret: 'pat' }) } });
    const found = await lookup(file, 'ghcr.io', 'org/app', runner);
    expect(found.secret).toEqual({ kind: 'basic', username: 'me', password: 'pat' });
    expect(found.source).toContain('docker-credential-desktop');
    expect(calls).toEqual([{ program: 'docker-credential-desktop', input: 'ghcr.io' }]);
    expect(parseAuthFile(JSON.stringify({ auths: { 'ghcr.io': {} } }), 'x').auths.get('ghcr.io')).toBeUndefined();
  });

  it('F: credHelpers beats an auths entry for the same host', async () => {
    const file = tempFile('config.json', { auths: { 'cgr.dev': { auth: b64('old:pw') } }, credHelpers: { 'cgr.dev': 'cgr' } });
    const { runner } = fakeHelpers({ 'docker-credential-cgr': { code: 0, stdout: JSON.stringify({ Username: '_token', Secret: 'fresh' }) } });
    expect((await lookup(file, 'cgr.dev', 'chainguard/static', runner)).secret).toEqual({ kind: 'basic', username: '_token', password: 'fresh' });
  });

  it('F′: a helper that is not installed falls back to auths and says why', async () => {
    const file = tempFile('config.json', { credHelpers: { 'cgr.dev': 'cgr' } });
    const found = await lookup(file, 'cgr.dev', 'chainguard/static');
    expect(found.secret.kind).toBe('anonymous');
    expect(found.source).toContain('docker-credential-cgr is not installed');
  });

  it('G: scheme and /v2/ suffixes reduce to the host, ports kept', async () => {
    const file = tempFile('config.json', { auths: { 'https://registry.example.com:5000/v2/': { auth: b64('a:1') }, 'http://reg.local': { auth: b64('b:2') } } });
    expect((await lookup(file, 'registry.example.com:5000')).secret).toMatchObject({ username: 'a' });
    expect((await lookup(file, 'reg.local')).secret).toMatchObject({ username: 'b' });
    expect((await lookup(file, 'registry.example.com')).secret.kind).toBe('anonymous');
  });

  it('H: namespaced keys, longest first', async () => {
    const file = tempFile('auth.json', { auths: { 'quay.io': { auth: b64('host:1') }, 'quay.io/org': { auth: b64('org:2') }, 'quay.io/org/team': { auth: b64('team:3') } } });
    expect((await lookup(file, 'quay.io', 'org/team/img')).secret).toMatchObject({ username: 'team' });
    expect((await lookup(file, 'quay.io', 'org/img')).secret).toMatchObject({ username: 'org' });
    expect((await lookup(file, 'quay.io', 'organic/img')).secret).toMatchObject({ username: 'host' });
  });

  it('I: unpadded auth, password containing ":", trailing NULs', () => {
    expect(decodeAuthField(b64('user:pa:ss').replace(/=+$/, ''))).toEqual({ username: 'user', password: 'pa:ss' });
    expect(decodeAuthField(b64('u:p\0\0'))).toEqual({ username: 'u', password: 'p' });
    expect(decodeAuthField(b64('nocolon'))).toBeUndefined();
  });

  it('J: registrytoken is a ready bearer token', async () => {
    const file = tempFile('config.json', { auths: { 'reg.example': { registrytoken: 'abc' } } });
    expect((await lookup(file, 'reg.example')).secret).toEqual({ kind: 'bearer', token: 'abc' });
  });

  it('K: a helper answering Username "<token>" gives an identity token; "not found" gives anonymous', async () => {
    const file = tempFile('config.json', { credHelpers: { 'r.azurecr.io': 'acr-env', 'other.example': 'pass' } });
    const { runner } = fakeHelpers({
      'docker-credential-acr-env': { code: 0, stdout: JSON.stringify({ Username: '<token>', Secret: 'rt' }) },
      'docker-credential-pass': { code: 1, stdout: 'credentials not found in native keychain\n' },
    });
    expect((await lookup(file, 'r.azurecr.io', undefined, runner)).secret).toEqual({ kind: 'refresh', username: undefined, refreshToken: 'rt' });
    const missing = await lookup(file, 'other.example', undefined, runner);
    expect(missing.secret.kind).toBe('anonymous');
    expect(missing.source).not.toContain('failed');
  });

  it('K′: the helper for Docker Hub gets https://index.docker.io/v1/ on stdin; invalid names are not run', async () => {
    const file = tempFile('config.json', { credHelpers: { 'docker.io': 'desktop', 'evil.example': '../../bin/sh' } });
    const { runner, calls } = fakeHelpers({ 'docker-credential-desktop': { code: 0, stdout: JSON.stringify({ Username: 'u', Secret: 's' }) } });
    await lookup(file, 'docker.io', 'library/alpine', runner);
    const evil = await lookup(file, 'evil.example', undefined, runner);
    expect(calls).toEqual([{ program: 'docker-credential-desktop', input: 'https://index.docker.io/v1/' }]);
    expect(evil.source).toContain('is invalid');
  });

  it('L: legacy .dockercfg bare map', async () => {
    const file = tempFile('.dockercfg', { 'https://index.docker.io/v1/': { auth: b64('old:school'), email: 'x@y' } });
    const found = await lookup(file, 'docker.io');
    expect(found.secret).toEqual({ kind: 'basic', username: 'old', password: 'school' });
    expect(found.source).toContain('legacy dockercfg');
  });

  it('M: DOCKER_AUTH_CONFIG overlays the files', async () => {
    const home = path.dirname(tempFile('unused', ''));
    const env = { HOME: home, DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { 'reg.example': { auth: b64('ci:job') } } }) };
    const chain = new LookupChain('reg.example', dockerConfigLookups(undefined, env, new CredentialHelpers(env, new FakeClock(), fakeHelpers({}).runner)), 'test');
    const found = await chain.get();
    expect(found.secret).toEqual({ kind: 'basic', username: 'ci', password: 'job' });
    expect(found.source).toContain('DOCKER_AUTH_CONFIG');
  });

  it('N: globs match one DNS label', () => {
    expect(hostMatches('*.gcr.io', 'eu.gcr.io')).toBe(true);
    expect(hostMatches('*.gcr.io', 'gcr.io')).toBe(false);
    expect(hostMatches('*.gcr.io', 'a.b.gcr.io')).toBe(false);
    expect(hostMatches('reg.example:5000', 'reg.example')).toBe(false);
    const entries: [string, number][] = [['*.gcr.io', 1], ['eu.gcr.io', 2]];
    expect(bestMatch(entries, 'eu.gcr.io', undefined, () => true)?.[1]).toBe(2);
    expect(bestMatch(entries, 'us.gcr.io', undefined, () => true)?.[1]).toBe(1);
  });

  it('searches DOCKER_CONFIG, then containers auth files, then ~/.dockercfg', () => {
    expect(defaultAuthFiles({ HOME: '/h', DOCKER_CONFIG: '/d', REGISTRY_AUTH_FILE: '/r.json', XDG_RUNTIME_DIR: '/run/user/1' })).toEqual([
      '/d/config.json',
      '/r.json',
      '/run/user/1/containers/auth.json',
      '/h/.config/containers/auth.json',
      '/h/.dockercfg',
    ]);
    expect(defaultAuthFiles({ HOME: '/h' })[0]).toBe('/h/.docker/config.json');
  });

  it('caches helper answers for a minute, then asks again', async () => {
    const clock = new FakeClock();
    const { runner, calls } = fakeHelpers({ 'docker-credential-x': { code: 0, stdout: JSON.stringify({ Username: 'u', Secret: 's' }) } });
    const helpers = new CredentialHelpers({}, clock, runner);
    await Promise.all([helpers.get('x', 'h'), helpers.get('x', 'h')]);
    await helpers.get('x', 'h');
    expect(calls).toHaveLength(1);
    clock.advance(61_000);
    await helpers.get('x', 'h');
    expect(calls).toHaveLength(2);
  });

  it('a malformed file is reported by path, without its content', async () => {
    const file = tempFile('config.json', '{"auths": {"reg.example": {"auth": "c2VjcmV0OnZhbHVl"}');
    const found = await lookup(file, 'reg.example');
    expect(found.secret.kind).toBe('anonymous');
    expect(found.source).toContain('is not valid JSON');
    expect(found.source).not.toContain('c2VjcmV0');
  });
});
