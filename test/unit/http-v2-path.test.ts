import { describe, expect, it } from 'vitest';
import { Unsupported } from '../../src/core/errors.js';
import { READ_ONLY_MESSAGE, parseV2Path } from '../../src/http/v2-path.js';
import { thrownAs } from './support.js';

const DIGEST = `sha256:${'c'.repeat(64)}`;

describe('parseV2Path', () => {
  it('recognises the base endpoint with and without a trailing slash', () => {
    expect(parseV2Path('/v2/')).toEqual({ endpoint: 'base' });
    expect(parseV2Path('/v2')).toEqual({ endpoint: 'base' });
  });

  it('reads a manifest by tag', () => {
    expect(parseV2Path('/v2/library/alpine/manifests/3.20')).toEqual({
      endpoint: 'manifest',
      name: 'library/alpine',
      reference: '3.20',
    });
  });

  it('reads a manifest by digest', () => {
    expect(parseV2Path(`/v2/alpine/manifests/${DIGEST}`)).toEqual({
      endpoint: 'manifest',
      name: 'alpine',
      reference: DIGEST,
    });
  });

  it('keeps nested names whole, including a registry prefix', () => {
    expect(parseV2Path('/v2/ghcr.io/org/team/app/manifests/v1')).toEqual({
      endpoint: 'manifest',
      name: 'ghcr.io/org/team/app',
      reference: 'v1',
    });
  });

  it('reads the name greedily: /v2/a/manifests/manifests/x is repository a/manifests', () => {
    expect(parseV2Path('/v2/a/manifests/manifests/x')).toEqual({ endpoint: 'manifest', name: 'a/manifests', reference: 'x' });
  });

  it('reads a blob', () => {
    expect(parseV2Path(`/v2/org/app/blobs/${DIGEST}`)).toEqual({ endpoint: 'blob', name: 'org/app', digest: DIGEST });
  });

  it('reads tags/list', () => {
    expect(parseV2Path('/v2/org/app/tags/list')).toEqual({ endpoint: 'tags', name: 'org/app' });
  });

  it('reads referrers', () => {
    expect(parseV2Path(`/v2/org/app/referrers/${DIGEST}`)).toEqual({ endpoint: 'referrers', name: 'org/app', digest: DIGEST });
  });

  it('refuses blob uploads as Unsupported', () => {
    for (const pathname of ['/v2/org/app/blobs/uploads/', '/v2/org/app/blobs/uploads', '/v2/org/app/blobs/uploads/3f2a-uuid']) {
      expect(thrownAs(() => parseV2Path(pathname), Unsupported).message).toBe(READ_ONLY_MESSAGE);
    }
  });

  it('returns undefined for paths outside the pull API', () => {
    for (const pathname of [
      '/v2/_catalog',
      '/v3/',
      '/',
      '/v2/app',
      '/v2/app/manifests',
      '/v2/app/manifests/',
      '/v2/manifests/latest',
      '/v2/app/tags',
      '/v2/app/manifests/a/b',
      '/v2/app/index/latest',
    ]) {
      expect(parseV2Path(pathname)).toBeUndefined();
    }
  });

  it('a repository whose name contains blobs/uploads can still be pulled', () => {
    // "org/blobs/uploads" is a valid repository name; only the endpoint position means an upload.
    expect(parseV2Path('/v2/org/blobs/uploads/manifests/latest')).toEqual({
      endpoint: 'manifest',
      name: 'org/blobs/uploads',
      reference: 'latest',
    });
  });
});
