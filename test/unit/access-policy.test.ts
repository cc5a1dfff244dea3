import { describe, expect, it } from 'vitest';
import { RepositoryFilter } from '../../src/access/fetch-policy.js';
import { RepositoryPattern, patternProblem } from '../../src/util/repository-pattern.js';
import { AccessPolicy, describeRule, type AccessRule } from '../../src/access/policy.js';

function matches(pattern: string, name: string): boolean {
  return new RepositoryPattern(pattern).matches(name);
}

describe('RepositoryPattern', () => {
  it('* is exactly one path segment', () => {
    expect(matches('docker.io/library/*', 'docker.io/library/alpine')).toBe(true);
    expect(matches('docker.io/library/*', 'docker.io/library/a/b')).toBe(false);
    expect(matches('docker.io/library/*', 'docker.io/library')).toBe(false);
    expect(matches('cgr.dev/*/static', 'cgr.dev/chainguard/static')).toBe(true);
  });

  it('** is any number of segments, none included', () => {
    expect(matches('ghcr.io/myorg/**', 'ghcr.io/myorg/app')).toBe(true);
    expect(matches('ghcr.io/myorg/**', 'ghcr.io/myorg/team/app/x')).toBe(true);
    expect(matches('ghcr.io/myorg/**', 'ghcr.io/myorg')).toBe(true);
    expect(matches('**', 'quay.io/a/b/c')).toBe(true);
    expect(matches('**/secret', 'ghcr.io/org/secret')).toBe(true);
    expect(matches('ghcr.io/**/app', 'ghcr.io/a/b/app')).toBe(true);
    expect(matches('ghcr.io/**/app', 'ghcr.io/a/b/apps')).toBe(false);
  });

  it('matches whole segments, never a prefix of one', () => {
    expect(matches('ghcr.io/myorg/**', 'ghcr.io/myorg-evil/app')).toBe(false);
    expect(matches('ghcr.io/myorg/*', 'ghcr.io/myorgx/app')).toBe(false);
    expect(matches('ghcr.io/myorg/app', 'ghcr.io/myorg/app2')).toBe(false);
  });

  it('* inside a segment stays inside it, and regex characters are literal', () => {
    expect(matches('ghcr.io/org/app-*', 'ghcr.io/org/app-web')).toBe(true);
    expect(matches('ghcr.io/org/app-*', 'ghcr.io/org/app-web/x')).toBe(false);
    expect(matches('registry.k8s.io/pause', 'registryxk8s.io/pause')).toBe(false);
  });

  it('names the problem of an unusable pattern', () => {
    expect(patternProblem('')).toBe('is empty');
    expect(patternProblem('/ghcr.io/x')).toContain('must not start or end');
    expect(patternProblem('ghcr.io//x')).toContain('empty path segment');
    expect(patternProblem('ghcr.io/x**')).toContain('whole path segment');
    expect(patternProblem('ghcr.io/**')).toBeUndefined();
  });
});

const RULES: AccessRule[] = [
  { subjects: ['ci'], effect: 'allow', patterns: ['ghcr.io/myorg/**'], origin: 'clients.access[0]' },
  { subjects: ['alice'], effect: 'deny', patterns: ['ghcr.io/myorg/secret/**'], origin: 'clients.access[1]' },
  { subjects: ['alice'], effect: 'allow', patterns: ['quay.io/**'], origin: 'clients.access[2]' },
  { subjects: ['anonymous'], effect: 'allow', patterns: ['docker.io/library/*', 'cgr.dev/chainguard/*'], origin: 'clients.access[3]' },
  { subjects: ['authenticated'], effect: 'allow', patterns: ['docker.io/**'], origin: 'clients.access[4]' },
];
const GROUPS = new Map([['ci', ['ci-bot', 'bob']]]);

describe('AccessPolicy', () => {
  const policy = new AccessPolicy(RULES, GROUPS);

  it('the first rule whose subjects and patterns both match decides', () => {
    expect(policy.decide({ user: 'ci-bot' }, 'ghcr.io/myorg/app')).toEqual({ allowed: true, rule: RULES[0] });
    expect(policy.decide({ user: 'alice' }, 'ghcr.io/myorg/secret/db')).toEqual({ allowed: false, rule: RULES[1] });
    expect(policy.decide({ user: 'alice' }, 'quay.io/x/y')).toEqual({ allowed: true, rule: RULES[2] });
  });

  it('rule order matters: a group allow before a user deny wins for a member', () => {
    const order = new AccessPolicy(RULES, new Map([['ci', ['alice']]]));
    expect(order.decide({ user: 'alice' }, 'ghcr.io/myorg/secret/db').allowed).toBe(true);
  });

  it('nothing matching means deny, with no rule named', () => {
    expect(policy.decide({ user: 'alice' }, 'ghcr.io/other/app')).toEqual({ allowed: false, rule: undefined });
    expect(policy.decide({ user: undefined }, 'ghcr.io/myorg/app')).toEqual({ allowed: false, rule: undefined });
  });

  it('resolves anonymous, authenticated, users and groups', () => {
    expect(policy.decide({ user: undefined }, 'docker.io/library/alpine').allowed).toBe(true);
    expect(policy.decide({ user: undefined }, 'docker.io/bitnami/redis').allowed).toBe(false);
    expect(policy.decide({ user: 'zed' }, 'docker.io/bitnami/redis')).toEqual({ allowed: true, rule: RULES[4] });
    expect(policy.decide({ user: 'bob' }, 'ghcr.io/myorg/app').rule).toBe(RULES[0]);
    expect(policy.decide({ user: 'zed' }, 'ghcr.io/myorg/app').allowed).toBe(false);
  });

  it('an anonymous subject is not a user named "anonymous", and a user is not anonymous', () => {
    const p = new AccessPolicy([{ subjects: ['anonymous'], effect: 'allow', patterns: ['**'], origin: 'x' }], new Map());
    expect(p.decide({ user: 'mallory' }, 'docker.io/library/alpine').allowed).toBe(false);
  });

  it('says whether logging in could help an anonymous client', () => {
    expect(policy.loginCouldHelp('ghcr.io/myorg/app')).toBe(true);
    expect(policy.loginCouldHelp('gcr.io/x/y')).toBe(false);
  });

  it('describes only the deciding rule', () => {
    expect(describeRule(RULES[1])).toBe('clients.access[1]: deny ghcr.io/myorg/secret/** for alice');
    expect(describeRule(undefined)).toContain('no rule');
  });
});

describe('RepositoryFilter (registries.<host>.repositories)', () => {
  const filter = new RepositoryFilter('quay.io', { allow: ['myorg/**'], deny: ['myorg/legacy/**'] });

  it('allows what the allow list matches and the deny list does not', () => {
    expect(filter.verdict('myorg/app')).toBeUndefined();
  });

  it('deny wins over allow, and names its pattern', () => {
    expect(filter.verdict('myorg/legacy/app')).toBe('registries.quay.io.repositories.deny has "myorg/legacy/**"');
  });

  it('with an allow list, anything else is refused', () => {
    expect(filter.verdict('other/app')).toContain('allow does not list it');
  });

  it('a deny list alone refuses only what it matches', () => {
    const denyOnly = new RepositoryFilter('docker.io', { deny: ['library/*'] });
    expect(denyOnly.verdict('library/alpine')).toContain('deny');
    expect(denyOnly.verdict('bitnami/redis')).toBeUndefined();
  });
});
