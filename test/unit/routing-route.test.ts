import { describe, expect, it } from 'vitest';
import type { RegistryConfig } from '../../src/config/config.js';
import { InvalidName, NoDefaultRegistry, RegistryNotConfigured } from '../../src/core/errors.js';
import { route, type RoutingTable } from '../../src/routing/route.js';
import { thrownAs } from './support.js';

/** A complete RegistryConfig with anonymous auth, as the loader would build it for `key: {}`. */
function registry(key: string, url = `https://${key}`): RegistryConfig {
  return { key, url, auth: { type: 'anonymous' }, realms: [], redirects: [], ca: undefined, insecure: false };
}

const TABLE: RoutingTable = {
  registries: new Map([
    ['docker.io', registry('docker.io', 'https://registry-1.docker.io')],
    ['ghcr.io', registry('ghcr.io')],
    ['cgr.dev', registry('cgr.dev')],
    ['localhost:5001', registry('localhost:5001', 'http://localhost:5001')],
  ]),
  aliases: new Map([['cg', 'cgr.dev']]),
  defaultRegistry: 'docker.io',
};

describe('route: names without ?ns=', () => {
  it('sends a one-segment name to Docker Hub under library/', () => {
    expect(route(TABLE, 'alpine', undefined)).toEqual({ registry: 'docker.io', repository: 'library/alpine' });
  });

  it('sends a two-segment Hub name as is', () => {
    expect(route(TABLE, 'bitnami/redis', undefined)).toEqual({ registry: 'docker.io', repository: 'bitnami/redis' });
  });

  it('strips a configured registry prefix', () => {
    expect(route(TABLE, 'ghcr.io/org/app', undefined)).toEqual({ registry: 'ghcr.io', repository: 'org/app' });
  });

  it('resolves an alias prefix to its registry', () => {
    expect(route(TABLE, 'cg/chainguard/static', undefined)).toEqual({
      registry: 'cgr.dev',
      repository: 'chainguard/static',
    });
  });

  it('routes index.docker.io/library/alpine to the docker.io entry', () => {
    expect(route(TABLE, 'index.docker.io/library/alpine', undefined)).toEqual({
      registry: 'docker.io',
      repository: 'library/alpine',
    });
  });

  it('routes registry-1.docker.io and docker.io prefixes to docker.io, adding library/', () => {
    expect(route(TABLE, 'registry-1.docker.io/nginx', undefined)).toEqual({
      registry: 'docker.io',
      repository: 'library/nginx',
    });
    expect(route(TABLE, 'docker.io/alpine', undefined)).toEqual({ registry: 'docker.io', repository: 'library/alpine' });
  });

  it('routes a registry key with a port', () => {
    expect(route(TABLE, 'localhost:5001/foo', undefined)).toEqual({ registry: 'localhost:5001', repository: 'foo' });
  });

  it('does not add library/ for registries other than Docker Hub', () => {
    expect(route(TABLE, 'ghcr.io/app', undefined)).toEqual({ registry: 'ghcr.io', repository: 'app' });
  });

  it('refuses a host-like prefix that is not configured (no open proxy)', () => {
    const err = thrownAs(() => route(TABLE, 'evil.example/x', undefined), RegistryNotConfigured);
    expect(err.registry).toBe('evil.example');
    expect(err.message).toContain('registries:');
  });

  it('refuses localhost and host:port prefixes that are not configured', () => {
    expect(thrownAs(() => route(TABLE, 'localhost/foo', undefined), RegistryNotConfigured).registry).toBe('localhost');
    expect(thrownAs(() => route(TABLE, 'localhost:5002/foo', undefined), RegistryNotConfigured).registry).toBe(
      'localhost:5002',
    );
  });

  it('without a default registry, refuses a name with no registry prefix and names the registries', () => {
    const table: RoutingTable = { ...TABLE, defaultRegistry: undefined };
    const err = thrownAs(() => route(table, 'org/app', undefined), NoDefaultRegistry);
    expect(err.message).toContain('ghcr.io');
    expect(route(table, 'ghcr.io/org/app', undefined)).toEqual({ registry: 'ghcr.io', repository: 'org/app' });
  });

  it('refuses a registry name with no repository', () => {
    expect(thrownAs(() => route(TABLE, 'ghcr.io', undefined), InvalidName).message).toContain('no repository');
    expect(() => route(TABLE, 'cg', undefined)).toThrow(InvalidName);
  });
});

describe('route: ?ns=', () => {
  it('routes the name to the ns registry', () => {
    expect(route(TABLE, 'org/app', 'ghcr.io')).toEqual({ registry: 'ghcr.io', repository: 'org/app' });
  });

  it('adds library/ to a one-segment name for ns=docker.io', () => {
    expect(route(TABLE, 'alpine', 'docker.io')).toEqual({ registry: 'docker.io', repository: 'library/alpine' });
  });

  it('does not add library/ to a one-segment name for another ns', () => {
    expect(route(TABLE, 'app', 'ghcr.io')).toEqual({ registry: 'ghcr.io', repository: 'app' });
  });

  it('accepts an alias as ns', () => {
    expect(route(TABLE, 'chainguard/static', 'cg')).toEqual({ registry: 'cgr.dev', repository: 'chainguard/static' });
  });

  it('does not strip a prefix from the name when ns is given', () => {
    expect(route(TABLE, 'ghcr.io/org/app', 'docker.io')).toEqual({ registry: 'docker.io', repository: 'ghcr.io/org/app' });
  });

  it('refuses an ns that is not configured', () => {
    const err = thrownAs(() => route(TABLE, 'org/app', 'quay.io'), RegistryNotConfigured);
    expect(err.registry).toBe('quay.io');
  });

  it('validates the name under ns too', () => {
    expect(() => route(TABLE, 'Org/App', 'ghcr.io')).toThrow(InvalidName);
  });
});

describe('route: invalid names', () => {
  it('refuses upper-case names', () => {
    expect(() => route(TABLE, 'Alpine', undefined)).toThrow(InvalidName);
    expect(() => route(TABLE, 'ghcr.io/Org/app', undefined)).toThrow(InvalidName);
  });

  it('refuses ".." components', () => {
    expect(() => route(TABLE, 'library/../etc', undefined)).toThrow(InvalidName);
    expect(() => route(TABLE, 'ghcr.io/../x', undefined)).toThrow(InvalidName);
  });

  it('refuses empty components', () => {
    expect(() => route(TABLE, 'a//b', undefined)).toThrow(InvalidName);
    expect(() => route(TABLE, 'a/b/', undefined)).toThrow(InvalidName);
    expect(() => route(TABLE, '/a', undefined)).toThrow(InvalidName);
  });

  it('refuses an empty name', () => {
    expect(() => route(TABLE, '', undefined)).toThrow(InvalidName);
    expect(() => route(TABLE, '', 'ghcr.io')).toThrow(InvalidName);
  });

  it('refuses a 256-character name and accepts 255', () => {
    const ok = `org/${'a'.repeat(251)}`;
    expect(ok).toHaveLength(255);
    expect(route(TABLE, ok, undefined)).toEqual({ registry: 'docker.io', repository: ok });
    const tooLong = `org/${'a'.repeat(252)}`;
    expect(tooLong).toHaveLength(256);
    expect(thrownAs(() => route(TABLE, tooLong, undefined), InvalidName).message).toContain('255');
  });
});
