import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { RedirectPolicy, type Resolve } from '../../src/upstream/redirect-policy.js';
import { Recorder } from '../helpers/recorder.js';

/** A resolver from a fixed table; unknown names fail as getaddrinfo does. Counts lookups. */
function table(entries: Record<string, string[]>): Resolve & { lookups: string[] } {
  const lookups: string[] = [];
  const resolve = async (hostname: string): Promise<string[]> => {
    lookups.push(hostname);
    const found = entries[hostname];
    if (found === undefined) throw new Error(`getaddrinfo ENOTFOUND ${hostname}`);
    return Promise.resolve(found);
  };
  return Object.assign(resolve, { lookups });
}

const names = table({
  'registry.example.com': ['203.0.113.10'],
  'cdn.example.net': ['198.51.100.7', '2001:db8::7'],
  'metadata.evil.test': ['169.254.169.254'],
  'rebind.evil.test': ['198.51.100.8', '10.0.0.9'],
  'localhost': ['127.0.0.1', '::1'],
  'registry.internal': ['10.0.0.5'],
  'registry-alias.internal': ['10.0.0.5'],
  'minio.internal': ['10.0.0.6'],
});

const publicRegistry = (trusted: string[] = []): RedirectPolicy => new RedirectPolicy('registry.example.com', 'https://registry.example.com', trusted, names);

describe('RedirectPolicy: blob redirects (storage scope)', () => {
  it('follows a redirect to a public CDN host', async () => {
    expect(await publicRegistry().refusal(new URL('https://cdn.example.net/blob?sig=1'), 'storage')).toBeUndefined();
  });

  it.each([
    ['the cloud metadata address', 'http://169.254.169.254/latest/meta-data/', 'link-local'],
    ['a name that resolves to the metadata address', 'http://metadata.evil.test/', 'link-local'],
    ['localhost', 'http://localhost:8080/', 'loopback'],
    ['a loopback literal', 'http://127.0.0.2:5621/', 'loopback'],
    ['an IPv4-mapped loopback', 'http://[::ffff:127.0.0.1]/', 'loopback'],
    ['IPv6 loopback', 'http://[::1]/', 'loopback'],
    ['IPv6 link-local', 'http://[fe80::1]/', 'link-local'],
    ['IPv6 unique local', 'http://[fd00::1]/', 'private'],
    ['10/8', 'http://10.1.2.3/', 'private'],
    ['172.16/12', 'http://172.31.0.1/', 'private'],
    ['192.168/16', 'http://192.168.1.1/', 'private'],
    ['the unspecified address', 'http://0.0.0.0/', 'unspecified'],
    ['a decimal-encoded loopback (URL-normalised)', 'http://2130706433/', 'loopback'],
    ['multicast', 'http://224.0.0.1/', 'multicast'],
    ['a name with one public and one private address', 'https://rebind.evil.test/', 'private'],
  ])('refuses %s', async (_name, url, kind) => {
    const reason = await publicRegistry().refusal(new URL(url), 'storage');
    expect(reason).toContain(`a ${kind} address`);
    expect(reason).toContain('registries.registry.example.com.redirects');
  });

  it('allows an internal address that is the registry host\'s own, and refuses another internal one', async () => {
    const policy = new RedirectPolicy('registry.internal', 'http://registry.internal:5000', [], names);
    expect(await policy.refusal(new URL('http://registry-alias.internal:9000/blob'), 'storage')).toBeUndefined();
    expect(await policy.refusal(new URL('http://10.0.0.5:9000/blob'), 'storage')).toBeUndefined();
    expect(await policy.refusal(new URL('http://minio.internal:9000/blob'), 'storage')).toContain('10.0.0.6');
    expect(await policy.refusal(new URL('http://169.254.169.254/'), 'storage')).toBeDefined();
  });

  it('follows an internal target the operator listed under redirects', async () => {
    const policy = new RedirectPolicy('registry.internal', 'http://registry.internal:5000', ['http://minio.internal:9000/layers'], names);
    expect(await policy.refusal(new URL('http://minio.internal:9000/layers/abc'), 'storage')).toBeUndefined();
    expect(await policy.refusal(new URL('http://minio.internal:9000/layersx/abc'), 'storage')).toBeDefined();
  });

  it('refuses non-http schemes and user info without resolving anything', async () => {
    const resolve = table({});
    const policy = new RedirectPolicy('r', 'https://registry.example.com', [], resolve);
    expect(await policy.refusal(new URL('file:///etc/passwd'), 'storage')).toContain('file:');
    expect(await policy.refusal(new URL('https://user:pw@cdn.example.net/'), 'storage')).toContain('user info');
    expect(resolve.lookups).toEqual([]);
  });

  it('lets a resolver failure through for the caller to report', async () => {
    await expect(publicRegistry().refusal(new URL('https://nowhere.invalid/'), 'storage')).rejects.toThrow('ENOTFOUND');
  });
});

describe('RedirectPolicy: manifest, tag-list and referrers redirects (registry scope)', () => {
  it('follows a redirect within the registry\'s own origin', async () => {
    expect(await publicRegistry().refusal(new URL('https://registry.example.com/v2/a/manifests/1'), 'registry')).toBeUndefined();
  });

  it('refuses a public host that is not the registry, and names the config key that would trust it', async () => {
    const reason = await publicRegistry().refusal(new URL('https://cdn.example.net/v2/a/manifests/1'), 'registry');
    expect(reason).toContain('https://cdn.example.net');
    expect(reason).toContain('registries.registry.example.com.redirects: ["https://cdn.example.net/"]');
  });

  it('refuses the registry host on another port or scheme', async () => {
    expect(await publicRegistry().refusal(new URL('https://registry.example.com:8443/v2/'), 'registry')).toBeDefined();
    expect(await publicRegistry().refusal(new URL('http://registry.example.com/v2/'), 'registry')).toBeDefined();
  });

  it('follows a trusted prefix with a wildcard host, by whole path segments only', async () => {
    // registry.k8s.io sends its API to regional Artifact Registry hosts.
    const policy = publicRegistry(['https://*.pkg.dev/v2/k8s-artifacts-prod/']);
    expect(await policy.refusal(new URL('https://us-west1-docker.pkg.dev/v2/k8s-artifacts-prod/images/pause/manifests/3.9'), 'registry')).toBeUndefined();
    expect(await policy.refusal(new URL('https://us-west1-docker.pkg.dev/v2/someone-else/x/manifests/1'), 'registry')).toBeDefined();
    expect(await policy.refusal(new URL('https://pkg.dev/v2/k8s-artifacts-prod/x/manifests/1'), 'registry')).toBeDefined();
    expect(await policy.refusal(new URL('https://pkg.dev.evil.test/v2/k8s-artifacts-prod/x/manifests/1'), 'registry')).toBeDefined();
    expect(await policy.refusal(new URL('http://us-docker.pkg.dev/v2/k8s-artifacts-prod/x/manifests/1'), 'registry')).toBeDefined();
  });
});

describe('RedirectPolicy.lookup: the addresses a redirect socket connects to', () => {
  /** A resolver that answers a public address for the check, then an internal one (DNS rebinding). */
  function rebinding(): Resolve & { lookups: string[] } {
    const lookups: string[] = [];
    const answers = [['203.0.113.5'], ['127.0.0.2']];
    return Object.assign(async (hostname: string) => {
      lookups.push(hostname);
      if (hostname === 'registry.example.com') return Promise.resolve(['203.0.113.10']);
      return Promise.resolve(answers.shift() ?? ['127.0.0.2']);
    }, { lookups });
  }

  it('refuses at connect time a name that re-resolved to an internal address after the check', async () => {
    const recorder = await new Recorder('127.0.0.2').start();
    const resolve = rebinding();
    const policy = new RedirectPolicy('reg', 'https://registry.example.com', [], resolve);
    const agent = new Agent({ connect: { lookup: policy.lookup } });
    try {
      const port = new URL(recorder.origin).port;
      expect(await policy.refusal(new URL(`http://cdn.rebind.test:${port}/blob`), 'storage')).toBeUndefined();
      const failure = await request(`http://cdn.rebind.test:${port}/blob`, { dispatcher: agent }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(String(failure)).toContain('loopback address (127.0.0.2)');
      expect(resolve.lookups.filter((name) => name === 'cdn.rebind.test')).toHaveLength(2);
      expect(recorder.seen).toHaveLength(0);
    } finally {
      await agent.close();
      await recorder.stop();
    }
  });

  it('connects a name whose addresses pass, and the registry\'s own host and trusted hosts whatever they resolve to', async () => {
    const recorder = await new Recorder('127.0.0.2').start();
    const port = new URL(recorder.origin).port;
    const resolve = table({ 'cdn.local.test': ['127.0.0.2'], 'minio.local.test': ['127.0.0.2'], 'reg.local.test': ['127.0.0.2'] });
    const internal = new RedirectPolicy('reg', `http://127.0.0.2:${port}`, [], resolve);
    const byName = new RedirectPolicy('reg', 'http://reg.local.test:5000', ['http://*.local.test:9000/'], resolve);
    const agents = [new Agent({ connect: { lookup: internal.lookup } }), new Agent({ connect: { lookup: byName.lookup } })];
    try {
      const [viaOwnAddress, viaTrusted] = agents;
      expect((await request(`http://cdn.local.test:${port}/a`, { dispatcher: viaOwnAddress })).statusCode).toBe(200);
      expect((await request(`http://reg.local.test:${port}/b`, { dispatcher: viaTrusted })).statusCode).toBe(200);
      expect((await request(`http://minio.local.test:${port}/c`, { dispatcher: viaTrusted })).statusCode).toBe(200);
      expect(recorder.seen.map((s) => s.path)).toEqual(['/a', '/b', '/c']);
    } finally {
      await Promise.all(agents.map((agent) => agent.close()));
      await recorder.stop();
    }
  });
});
