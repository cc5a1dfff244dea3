import { describe, expect, it } from 'vitest';
import { MAX_SKEW_MS, signPeerRequest, verifyPeerRequest } from '../../src/cluster/peer-auth.js';

const secret = 'a-cluster-secret-of-32-characters';
const path = '/cluster/v1/blobs/ghcr.io/org/app/sha256:abc';
const now = Date.parse('2026-01-01T00:00:00Z');

describe('peer request signatures', () => {
  it('accepts a request signed with the shared secret', () => {
    expect(verifyPeerRequest(secret, 'GET', path, signPeerRequest(secret, 'GET', path, now), now)).toBeUndefined();
  });

  it('refuses a missing, malformed or wrongly signed request', () => {
    expect(verifyPeerRequest(secret, 'GET', path, undefined, now)).toBe('missing');
    expect(verifyPeerRequest(secret, 'GET', path, `Bearer ${secret}`, now)).toBe('malformed');
    expect(verifyPeerRequest(secret, 'GET', path, signPeerRequest('another-secret-of-enough-length', 'GET', path, now), now)).toBe('wrong');
  });

  it('binds the signature to the method and the path', () => {
    const header = signPeerRequest(secret, 'GET', path, now);
    expect(verifyPeerRequest(secret, 'GET', `${path}x`, header, now)).toBe('wrong');
    expect(verifyPeerRequest(secret, 'DELETE', path, header, now)).toBe('wrong');
  });

  it('refuses a replay (or a clock) outside the allowed skew, either way', () => {
    const header = signPeerRequest(secret, 'GET', path, now);
    expect(verifyPeerRequest(secret, 'GET', path, header, now + MAX_SKEW_MS)).toBeUndefined();
    expect(verifyPeerRequest(secret, 'GET', path, header, now + MAX_SKEW_MS + 1)).toBe('stale');
    expect(verifyPeerRequest(secret, 'GET', path, header, now - MAX_SKEW_MS - 1)).toBe('stale');
  });

  it('never puts the secret in the header', () => {
    expect(signPeerRequest(secret, 'GET', path, now)).not.toContain(secret);
  });
});
