import { describe, expect, it } from 'vitest';
import { realmRefusal } from '../../src/auth/realm.js';

describe('realmRefusal: allowed realms', () => {
  it('allows Docker Hub: auth.docker.io for registry-1.docker.io (same registrable domain)', () => {
    expect(realmRefusal('https://auth.docker.io/token', 'https://registry-1.docker.io', [])).toBeUndefined();
  });

  it('allows GitLab: gitlab.com for registry.gitlab.com', () => {
    expect(realmRefusal('https://gitlab.com/jwt/auth', 'https://registry.gitlab.com', [])).toBeUndefined();
  });

  it('allows the registry host itself (ghcr.io/token)', () => {
    expect(realmRefusal('https://ghcr.io/token', 'https://ghcr.io', [])).toBeUndefined();
  });

  it('allows the same host on another port', () => {
    expect(realmRefusal('https://registry.example.com:5001/token', 'https://registry.example.com', [])).toBeUndefined();
  });

  it('allows an http realm for an http registry on the same host', () => {
    expect(realmRefusal('http://127.0.0.1:6000/token', 'http://127.0.0.1:5001', [])).toBeUndefined();
  });

  it('allows an IP literal realm when it is the registry itself', () => {
    expect(realmRefusal('https://10.0.0.1:8443/token', 'https://10.0.0.1:5000', [])).toBeUndefined();
  });

  it('allows an unrelated domain once it is listed in the allowed prefixes', () => {
    const realm = 'https://login.example.net/token';
    expect(realmRefusal(realm, 'https://registry.example.com', [])).toBeDefined();
    expect(realmRefusal(realm, 'https://registry.example.com', ['https://login.example.net/'])).toBeUndefined();
  });
});

describe('realmRefusal: refused realms', () => {
  it('refuses the cloud metadata address for ghcr.io', () => {
    const reason = realmRefusal('https://169.254.169.254/token', 'https://ghcr.io', []);
    expect(reason).toContain('169.254.169.254');
    expect(reason).toContain('IP address');
  });

  it('refuses a private IP literal for ghcr.io', () => {
    const reason = realmRefusal('https://10.0.0.1/t', 'https://ghcr.io', []);
    expect(reason).toContain('10.0.0.1');
  });

  it('refuses an IPv6 loopback literal for ghcr.io', () => {
    expect(realmRefusal('https://[::1]/token', 'https://ghcr.io', [])).toBeDefined();
  });

  it('refuses an http realm for an https registry, even on the same host', () => {
    const reason = realmRefusal('http://ghcr.io/token', 'https://ghcr.io', []);
    expect(reason).toContain('not https');
  });

  it('refuses a realm on an unrelated domain and names the realms option', () => {
    const reason = realmRefusal('https://collector.evil.example/token', 'https://ghcr.io', []);
    expect(reason).toContain('https://collector.evil.example');
    expect(reason).toContain('realms');
  });

  it('refuses an unrelated domain when the allowed prefixes name another host', () => {
    expect(
      realmRefusal('https://collector.evil.example/token', 'https://ghcr.io', ['https://login.example.net/']),
    ).toBeDefined();
  });

  it('refuses a realm whose domain merely ends with the registry domain text', () => {
    expect(realmRefusal('https://notghcr.io/token', 'https://ghcr.io', [])).toBeDefined();
  });

  it('refuses a garbage realm', () => {
    expect(realmRefusal('not a url', 'https://ghcr.io', [])).toContain('not a URL');
    expect(realmRefusal('', 'https://ghcr.io', [])).toContain('not a URL');
  });

  it('refuses a non-http scheme', () => {
    expect(realmRefusal('file:///etc/passwd', 'https://ghcr.io', [])).toBeDefined();
  });

  it('an allowed prefix without a trailing slash does not admit a longer host name', () => {
    // The operator trusts https://login.example.net; a realm on login.example.net.evil.test is another host.
    expect(
      realmRefusal('https://login.example.net.evil.test/token', 'https://registry.example.com', ['https://login.example.net']),
    ).toBeDefined();
  });

  it('an allowed prefix does not admit a realm that only carries it as userinfo', () => {
    // new URL('https://login.example.net@evil.test/token').hostname is evil.test.
    expect(
      realmRefusal('https://login.example.net@evil.test/token', 'https://registry.example.com', ['https://login.example.net']),
    ).toBeDefined();
  });

  it('treats a private public-suffix (fly.dev) as a boundary between tenants', () => {
    // Like distribution's eTLD+1 check (golang.org/x/net/publicsuffix includes the private section),
    // myregistry.fly.dev and attacker.fly.dev belong to different owners.
    expect(realmRefusal('https://attacker.fly.dev/token', 'https://myregistry.fly.dev', [])).toBeDefined();
  });
});

describe('realmRefusal: allowed prefixes match whole origins and path segments', () => {
  const registry = 'https://registry.example.com';
  const allowed = ['http://127.0.0.2:5621/ok'];

  it('admits the prefix itself and paths below it', () => {
    expect(realmRefusal('http://127.0.0.2:5621/ok', registry, allowed)).toBeUndefined();
    expect(realmRefusal('http://127.0.0.2:5621/ok/token', registry, allowed)).toBeUndefined();
  });

  it('does not admit a sibling path that merely starts with the same text', () => {
    expect(realmRefusal('http://127.0.0.2:5621/okay/token', registry, allowed)).toBeDefined();
    expect(realmRefusal('http://127.0.0.2:5621/ok-not/token', registry, allowed)).toBeDefined();
  });

  it('does not admit another port, scheme or host', () => {
    expect(realmRefusal('http://127.0.0.2:5622/ok/token', registry, allowed)).toBeDefined();
    expect(realmRefusal('https://127.0.0.2:5621/ok/token', registry, allowed)).toBeDefined();
    expect(realmRefusal('http://127.0.0.3:5621/ok/token', registry, allowed)).toBeDefined();
  });

  it('treats a prefix ending in / as a directory and a bare origin as the whole origin', () => {
    expect(realmRefusal('http://127.0.0.2:5621/ok/token', registry, ['http://127.0.0.2:5621/ok/'])).toBeUndefined();
    expect(realmRefusal('http://127.0.0.2:5621/ok', registry, ['http://127.0.0.2:5621/ok/'])).toBeDefined();
    expect(realmRefusal('http://127.0.0.2:5621/anything/token', registry, ['http://127.0.0.2:5621'])).toBeUndefined();
  });

  it('does not let dot segments climb out of the prefix', () => {
    expect(realmRefusal('http://127.0.0.2:5621/ok/../okay/token', registry, allowed)).toBeDefined();
  });
});
