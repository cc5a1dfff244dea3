import { describe, expect, it } from 'vitest';
import { AUTH_TYPE_TABLE, inferredLookups, type SourceContext } from '../../src/auth/auth-types.js';
import { AUTH_FIELD_SCHEMAS, AUTH_TYPES, AUTH_TYPE_FIELDS, authProblems } from '../../src/config/auth-fields.js';
import { CredentialHelpers } from '../../src/auth/sources/credential-helper.js';
import type { RegistryConfig } from '../../src/config/config.js';
import { loadConfigText } from '../../src/config/load.js';
import { FakeClock } from '../helpers/fake-clock.js';

function registry(key: string, url = `https://${key}`): RegistryConfig {
  const config = loadConfigText(`registries:\n  ${JSON.stringify(key)}: { url: ${JSON.stringify(url)} }\n`, {}, 'test', '/');
  const found = config.registries.get(key);
  if (!found) throw new Error('no registry');
  return found;
}

function context(env: NodeJS.ProcessEnv): SourceContext {
  const clock = new FakeClock();
  return { env, clock, envEntries: [], helpers: new CredentialHelpers(env, clock, undefined) };
}

describe('the auth-type table', () => {
  it('has one row per type, each with a description and exactly one way to build its source, over known fields', () => {
    expect(Object.keys(AUTH_TYPE_TABLE).sort()).toEqual([...AUTH_TYPES].sort());
    expect(Object.keys(AUTH_TYPE_FIELDS).sort()).toEqual([...AUTH_TYPES].sort());
    for (const type of AUTH_TYPES) {
      const spec = AUTH_TYPE_TABLE[type];
      expect(spec.description.length, type).toBeGreaterThan(10);
      expect(Number(spec.source !== undefined) + Number(spec.lookups !== undefined), type).toBe(1);
      for (const field of AUTH_TYPE_FIELDS[type].fields) expect(Object.keys(AUTH_FIELD_SCHEMAS), `${type}.${field}`).toContain(field);
    }
  });

  it('the loader reads fields and checks from the row', () => {
    expect(authProblems('cgr.dev', { type: 'chainguard', identity: 'a/b', password: 'x' })).toEqual(['registries.cgr.dev.auth.password: not used by auth type "chainguard"']);
    expect(authProblems('cgr.dev', { type: 'chainguard' })[0]).toMatch(/identity: required/);
    expect(authProblems('r.example', { type: 'basic', username: 'u', password: 'p', passwordFile: '/f' })).toEqual(['registries.r.example.auth: give exactly one of password, passwordFile']);
    expect(() => loadConfigText('registries:\n  cgr.dev: { auth: { type: chainguard, identity: a/b, path: /x } }\n', {}, 't', '/')).toThrow(/auth\.path: not used by auth type "chainguard"/);
    expect(() => loadConfigText('registries:\n  cgr.dev: { auth: { type: chainguard, identity: a/b, issuer: "ftp://x" } }\n', {}, 't', '/')).toThrow(/auth\.issuer: has the wrong format/);
    expect(loadConfigText('registries:\n  cgr.dev: { auth: { type: chainguard, identity: a/b, tokenFile: tok } }\n', {}, 't', '/base').registries.get('cgr.dev')?.auth.tokenFile).toBe('/base/tok');
  });

  it('auto infers a type from the host only when its row says so', () => {
    const names = (key: string, env: NodeJS.ProcessEnv, url?: string): string[] => inferredLookups(registry(key, url), context(env)).map((l) => l.name);
    expect(names('cgr.dev', { CHAINGUARD_IDENTITY: 'a/b', ACTIONS_ID_TOKEN_REQUEST_URL: 'http://127.0.0.1:1/x?a=1', ACTIONS_ID_TOKEN_REQUEST_TOKEN: 't' })[0]).toMatch(/^Chainguard identity a\/b \(GitHub Actions id-token/);
    expect(names('cgr.dev', {})).toEqual([]);
    expect(names('ghcr.io', { GITHUB_TOKEN: 't' })).toEqual(['GITHUB_TOKEN']);
    expect(names('mirror.example', {}, 'https://123456789012.dkr.ecr.eu-west-1.amazonaws.com')[0]).toMatch(/^ECR GetAuthorizationToken \(account 123456789012/);
    expect(names('myreg.azurecr.io', {})).toEqual([]);
    expect(names('reg.example', { GITHUB_TOKEN: 't', CHAINGUARD_IDENTITY: 'a/b' })).toEqual([]);
  });
});
