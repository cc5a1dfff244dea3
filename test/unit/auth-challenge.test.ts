import { describe, expect, it } from 'vitest';
import { chooseChallenge, parseChallenges, type Challenge } from '../../src/auth/challenge.js';
import { realmRefusal } from '../../src/auth/realm.js';
import { parseScope, splitScopes } from '../../src/auth/scope.js';

/** Parses a header that must hold exactly one challenge and returns it. */
function only(header: string | string[]): Challenge {
  const challenges = parseChallenges(header);
  expect(challenges).toHaveLength(1);
  const [challenge] = challenges;
  if (challenge === undefined) throw new Error('no challenge parsed');
  return challenge;
}

describe('parseChallenges: reference §6 vectors', () => {
  it('vector 1: keeps the comma inside a quoted scope', () => {
    const challenge = only(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
    );
    expect(challenge).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:samalba/my-app:pull,push',
      },
    });
    const scopes = splitScopes(challenge.params.scope);
    expect(scopes).toEqual(['repository:samalba/my-app:pull,push']);
    expect(parseScope(scopes[0] ?? '')?.actions).toEqual(['pull', 'push']);
  });

  it('vector 2: one scope value holds two space-separated scopes', () => {
    const challenge = only('Bearer realm="https://r/token",service="r",scope="repository:a:pull repository:b:pull"');
    expect(challenge.params.realm).toBe('https://r/token');
    expect(challenge.params.service).toBe('r');
    const scopes = splitScopes(challenge.params.scope);
    expect(scopes).toEqual(['repository:a:pull', 'repository:b:pull']);
    expect(scopes.map((scope) => parseScope(scope)?.name)).toEqual(['a', 'b']);
  });

  it('vector 3: reads error="insufficient_scope" and error="invalid_token"', () => {
    const base = 'Bearer realm="https://r/token",service="r",scope="repository:a:pull"';
    const insufficient = only(`${base},error="insufficient_scope"`);
    const invalid = only(`${base},error="invalid_token"`);
    expect(insufficient.params.error).toBe('insufficient_scope');
    expect(invalid.params.error).toBe('invalid_token');
    expect(insufficient.params.scope).toBe('repository:a:pull');
    expect(invalid.params.realm).toBe('https://r/token');
  });

  it('vector 4: the scheme is case-insensitive and comes back lower-cased', () => {
    const challenge = only('BEARER realm="https://auth.example.com/token",service="example"');
    expect(challenge.scheme).toBe('bearer');
    expect(challenge.params).toEqual({ realm: 'https://auth.example.com/token', service: 'example' });
    expect(chooseChallenge([challenge])?.scheme).toBe('bearer');
  });

  it('vector 5: unescapes backslashes in quoted strings and reads unquoted tokens', () => {
    const challenge = only(
      String.raw`Bearer realm="https://auth.example.com/token",service="registry.example.com",other=fun,slashed="he\"\l\lo"`,
    );
    expect(challenge.params.slashed).toBe('he"llo');
    expect(challenge.params.other).toBe('fun');
    expect(challenge.params.service).toBe('registry.example.com');
    expect(challenge.params.realm).toBe('https://auth.example.com/token');
  });

  it('vector 6: an empty value does not end parsing (service and scope survive)', () => {
    const challenge = only(
      'Bearer realm="https://auth.example.io/token",empty="",service="registry.example.io",scope="repository:library/hello-world:pull,push"',
    );
    expect(challenge.params).toEqual({
      realm: 'https://auth.example.io/token',
      empty: '',
      service: 'registry.example.io',
      scope: 'repository:library/hello-world:pull,push',
    });
  });

  it('vector 7: reads an unquoted parameter value', () => {
    const challenge = only('Bearer realm="https://gcr.io/v2/token",service=gcr.io');
    expect(challenge.params).toEqual({ realm: 'https://gcr.io/v2/token', service: 'gcr.io' });
  });

  it('vector 8: two challenges on one line; Bearer is chosen over Basic', () => {
    const challenges = parseChallenges(
      'Basic realm="quay.io", Bearer realm="https://quay.io/v2/auth",service="quay.io",scope="repository:x/y:pull"',
    );
    expect(challenges).toEqual([
      { scheme: 'basic', params: { realm: 'quay.io' } },
      {
        scheme: 'bearer',
        params: { realm: 'https://quay.io/v2/auth', service: 'quay.io', scope: 'repository:x/y:pull' },
      },
    ]);
    const chosen = chooseChallenge(challenges);
    expect(chosen?.scheme).toBe('bearer');
    expect(chosen?.params.realm).toBe('https://quay.io/v2/auth');
  });

  it('vector 9: two header lines, Negotiate and Basic; Basic is chosen', () => {
    const challenges = parseChallenges(['Negotiate', 'Basic realm="x"']);
    expect(challenges.map((c) => c.scheme)).toEqual(['negotiate', 'basic']);
    const chosen = chooseChallenge(challenges);
    expect(chosen).toEqual({ scheme: 'basic', params: { realm: 'x' } });
  });

  it('vector 10: ECR answers Basic (no token exchange)', () => {
    const challenges = parseChallenges(
      'Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
    );
    const chosen = chooseChallenge(challenges);
    expect(chosen?.scheme).toBe('basic');
    expect(chosen?.params).toEqual({
      realm: 'https://123456789012.dkr.ecr.us-east-1.amazonaws.com/',
      service: 'ecr.amazonaws.com',
    });
    expect(challenges.some((c) => c.scheme === 'bearer')).toBe(false);
  });

  it('vector 11: ECR Public scope "aws" is kept raw and is outside the scope grammar', () => {
    const challenge = only('Bearer realm="https://public.ecr.aws/token/",service="public.ecr.aws",scope="aws"');
    expect(challenge.params.realm).toBe('https://public.ecr.aws/token/');
    expect(challenge.params.service).toBe('public.ecr.aws');
    const scopes = splitScopes(challenge.params.scope);
    expect(scopes).toEqual(['aws']);
    expect(parseScope(scopes[0] ?? '')).toBeUndefined();
  });

  it('vector 12: a challenge without service has no service parameter', () => {
    const challenge = only('Bearer realm="https://us-docker.pkg.dev/v2/token"');
    expect(challenge.params).toEqual({ realm: 'https://us-docker.pkg.dev/v2/token' });
    expect(challenge.params.service).toBeUndefined();
    expect(splitScopes(challenge.params.scope)).toEqual([]);
  });

  it('vector 13: GitLab realm on another host of the same registrable domain', () => {
    const challenge = only('Bearer realm="https://gitlab.com/jwt/auth",service="container_registry"');
    expect(challenge.params).toEqual({ realm: 'https://gitlab.com/jwt/auth', service: 'container_registry' });
    const realm = challenge.params.realm ?? '';
    expect(realmRefusal(realm, 'https://registry.gitlab.com', [])).toBeUndefined();
  });

  it('vector 14: space-separated parameters (no commas) are accepted', () => {
    const challenge = only(
      'bearer realm="https://h/service/token" service="harbor-registry" scope="repository:library/busybox:pull"',
    );
    expect(challenge).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://h/service/token',
        service: 'harbor-registry',
        scope: 'repository:library/busybox:pull',
      },
    });
  });

  it('vector 15: the realm keeps its port and query string', () => {
    const challenge = only('Bearer realm="https://auth.example.com:5001/token?x=1",service="s"');
    expect(challenge.params.realm).toBe('https://auth.example.com:5001/token?x=1');
    const url = new URL(challenge.params.realm ?? '');
    expect(url.searchParams.get('x')).toBe('1');
    expect(url.port).toBe('5001');
  });
});

describe('parseChallenges: other inputs', () => {
  it('returns no challenge for an undefined header', () => {
    expect(parseChallenges(undefined)).toEqual([]);
    expect(chooseChallenge(parseChallenges(undefined))).toBeUndefined();
  });

  it('returns no challenge for an empty header, an empty list or separators only', () => {
    expect(parseChallenges('')).toEqual([]);
    expect(parseChallenges([])).toEqual([]);
    expect(parseChallenges(' , ,  ')).toEqual([]);
    expect(parseChallenges(['', '   '])).toEqual([]);
  });

  it('keeps the last value of a repeated parameter', () => {
    const challenge = only('Bearer realm="https://a/token",service="first",service="second"');
    expect(challenge.params.service).toBe('second');
  });

  it('lower-cases parameter names', () => {
    const challenge = only('Bearer Realm="https://a/token",SERVICE="svc"');
    expect(challenge.params).toEqual({ realm: 'https://a/token', service: 'svc' });
  });

  it('tolerates spaces around "=" and after commas', () => {
    const challenge = only('Bearer realm = "https://a/token" ,  service = "svc"');
    expect(challenge.params).toEqual({ realm: 'https://a/token', service: 'svc' });
  });

  it('reads an unquoted URL realm up to the next comma', () => {
    const challenge = only('Bearer realm=https://a.example/token?x=1,service=svc');
    expect(challenge.params).toEqual({ realm: 'https://a.example/token?x=1', service: 'svc' });
  });

  it('skips a token68 challenge and still reads the challenge after it', () => {
    const challenges = parseChallenges('Negotiate YIIB9gYGKwYBBQUCoIIB6jCCAeag==, Bearer realm="https://a/token"');
    expect(challenges).toEqual([
      { scheme: 'negotiate', params: {} },
      { scheme: 'bearer', params: { realm: 'https://a/token' } },
    ]);
  });

  it('keeps an unterminated quoted value up to the end of the line', () => {
    const challenge = only('Bearer realm="https://a/token');
    expect(challenge.params.realm).toBe('https://a/token');
  });
});

describe('chooseChallenge', () => {
  it('returns undefined when only unsupported schemes are offered', () => {
    expect(chooseChallenge(parseChallenges(['Negotiate', 'NTLM']))).toBeUndefined();
  });

  it('returns undefined for no challenges', () => {
    expect(chooseChallenge([])).toBeUndefined();
  });

  it('prefers Bearer even when it comes on a later line', () => {
    const chosen = chooseChallenge(parseChallenges(['Basic realm="b"', 'Bearer realm="https://a/token"']));
    expect(chosen?.params.realm).toBe('https://a/token');
  });
});
