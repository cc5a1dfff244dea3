import { describe, expect, it } from 'vitest';
import { parseScope, pullScope, splitScopes } from '../../src/auth/scope.js';

describe('parseScope', () => {
  it('vector 16: a name with host:port keeps its colon; actions come after the last colon', () => {
    expect(parseScope('repository:localhost:5000/foo/bar:pull')).toEqual({
      type: 'repository',
      name: 'localhost:5000/foo/bar',
      actions: ['pull'],
      raw: 'repository:localhost:5000/foo/bar:pull',
    });
  });

  it('reads a plain repository scope with several actions', () => {
    expect(parseScope('repository:samalba/my-app:pull,push')).toEqual({
      type: 'repository',
      name: 'samalba/my-app',
      actions: ['pull', 'push'],
      raw: 'repository:samalba/my-app:pull,push',
    });
  });

  it('drops the resource class from the type: repository(plugin):x:pull', () => {
    const scope = parseScope('repository(plugin):x:pull');
    expect(scope?.type).toBe('repository');
    expect(scope?.name).toBe('x');
    expect(scope?.actions).toEqual(['pull']);
    expect(scope?.raw).toBe('repository(plugin):x:pull');
  });

  it('returns undefined for "aws" (ECR Public, outside the grammar)', () => {
    expect(parseScope('aws')).toBeUndefined();
  });

  it('reads registry:catalog:*', () => {
    expect(parseScope('registry:catalog:*')).toEqual({
      type: 'registry',
      name: 'catalog',
      actions: ['*'],
      raw: 'registry:catalog:*',
    });
  });

  it('returns undefined for malformed scopes', () => {
    expect(parseScope('')).toBeUndefined();
    expect(parseScope('repository:foo')).toBeUndefined();
    expect(parseScope(':foo:pull')).toBeUndefined();
    expect(parseScope('repository::pull')).toBeUndefined();
    expect(parseScope('repository:foo:')).toBeUndefined();
  });
});

describe('pullScope', () => {
  it('builds a pull scope that parses back to the same repository', () => {
    const text = pullScope('library/alpine');
    expect(text).toBe('repository:library/alpine:pull');
    expect(parseScope(text)).toMatchObject({ type: 'repository', name: 'library/alpine', actions: ['pull'] });
  });

  it('round-trips a repository name that contains host:port', () => {
    expect(parseScope(pullScope('localhost:5000/foo'))?.name).toBe('localhost:5000/foo');
  });
});

describe('splitScopes', () => {
  it('splits a space-separated scope value', () => {
    expect(splitScopes('repository:a:pull repository:b:pull')).toEqual(['repository:a:pull', 'repository:b:pull']);
  });

  it('ignores repeated spaces', () => {
    expect(splitScopes('  repository:a:pull   repository:b:pull ')).toEqual(['repository:a:pull', 'repository:b:pull']);
  });

  it('returns nothing for an absent or empty value', () => {
    expect(splitScopes(undefined)).toEqual([]);
    expect(splitScopes('')).toEqual([]);
  });
});
