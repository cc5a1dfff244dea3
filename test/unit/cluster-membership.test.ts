import { describe, expect, it } from 'vitest';
import type { ClusterConfig, PeerSource } from '../../src/config/cluster-config.js';
import { Membership, type MembershipDeps } from '../../src/cluster/membership.js';
import { createLogger } from '../../src/core/deps.js';
import { ConfigError } from '../../src/core/errors.js';
import { FakeClock } from '../helpers/fake-clock.js';

type Shape = Pick<ClusterConfig, 'peers' | 'listen' | 'self'>;

function cluster(peers: string[], listen = '0.0.0.0:5001', self?: string): Shape {
  const [host = '', port = ''] = listen.split(/:(?=\d+$)/);
  return {
    listen: { host, port: Number(port) },
    self,
    peers: peers.map((text): PeerSource => {
      if (!text.startsWith('dns:')) return { kind: 'static', address: text };
      const [name = '', port2 = ''] = text.slice(4).split(/:(?=\d+$)/);
      return { kind: 'dns', name, port: Number(port2) };
    }),
  };
}

interface Fixture {
  membership: Membership;
  clock: FakeClock;
  dns: Map<string, string[] | Error>;
  ticks: (() => void)[];
  logs: string[];
}

function fixture(shape: Shape, extra: Partial<MembershipDeps> = {}): Fixture {
  const clock = new FakeClock();
  const dns = new Map<string, string[] | Error>();
  const ticks: (() => void)[] = [];
  const logs: string[] = [];
  const membership = new Membership(shape, {
    clock,
    logger: createLogger('debug', { write: (line: string) => logs.push(line) }),
    resolve: (name) => {
      const answer = dns.get(name);
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer ?? []);
    },
    every: (_ms, task) => {
      ticks.push(task);
      return () => ticks.splice(ticks.indexOf(task), 1);
    },
    localAddresses: () => ['127.0.0.1', '::1', '10.0.0.2'],
    ...extra,
  });
  return { membership, clock, dns, ticks, logs };
}

async function startError(membership: Membership): Promise<ConfigError> {
  const err: unknown = await membership.start().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  if (!(err instanceof ConfigError)) throw new Error('expected a ConfigError');
  return err;
}

describe('cluster membership', () => {
  it('takes static peers and finds itself by cluster.self', async () => {
    const { membership } = fixture(cluster(['10.0.0.1:5001', '10.0.0.2:5001', '10.0.0.3:5001'], '0.0.0.0:5001', '10.0.0.3:5001'));
    await membership.start();
    expect(membership.self).toBe('10.0.0.3:5001');
    expect(membership.members()).toEqual(['10.0.0.1:5001', '10.0.0.2:5001', '10.0.0.3:5001']);
  });

  it('finds itself among the peers by a wildcard listen address and this host\'s interfaces', async () => {
    const { membership } = fixture(cluster(['10.0.0.1:5001', '10.0.0.2:5001']));
    await membership.start();
    expect(membership.self).toBe('10.0.0.2:5001');
  });

  it('finds itself by a specific listen address', async () => {
    const { membership } = fixture(cluster(['127.0.0.1:7001', '127.0.0.1:7002'], '127.0.0.1:7002'));
    await membership.start();
    expect(membership.self).toBe('127.0.0.1:7002');
  });

  it('says clearly when it cannot tell which peer it is', async () => {
    const none = await startError(fixture(cluster(['10.0.0.7:5001', '10.0.0.8:5001'])).membership);
    expect(none.message).toMatch(/none of this host's addresses on port 5001 is among cluster\.peers \(10\.0\.0\.7:5001, 10\.0\.0\.8:5001\); set cluster\.self/);
    const ambiguous = await startError(fixture(cluster(['127.0.0.1:5001', '10.0.0.2:5001'])).membership);
    expect(ambiguous.message).toMatch(/several peers \(127\.0\.0\.1:5001, 10\.0\.0\.2:5001\).*set cluster\.self/);
    const absent = await startError(fixture(cluster(['127.0.0.1:7001'], '127.0.0.1:7002')).membership);
    expect(absent.message).toMatch(/listens on 127\.0\.0\.1:7002, which is not among cluster\.peers/);
    const bad = await startError(fixture(cluster(['127.0.0.1:7001'], '0.0.0.0:7001', 'not an address')).membership);
    expect(bad.message).toMatch(/^cluster\.self:/);
  });

  it('resolves DNS peers at start and again on each refresh, keeping the last answer when DNS fails', async () => {
    const f = fixture(cluster(['dns:peers.ns.svc:5001'], '0.0.0.0:5001', '10.0.0.2:5001'));
    f.dns.set('peers.ns.svc', ['10.0.0.1', '10.0.0.2']);
    await f.membership.start();
    expect(f.membership.members()).toEqual(['10.0.0.1:5001', '10.0.0.2:5001']);
    expect(f.ticks).toHaveLength(1);

    f.dns.set('peers.ns.svc', ['10.0.0.1', '10.0.0.2', 'fd00::3']);
    await f.membership.refresh();
    expect(f.membership.members()).toEqual(['10.0.0.1:5001', '10.0.0.2:5001', '[fd00::3]:5001']);

    f.dns.set('peers.ns.svc', new Error('ENOTFOUND'));
    await f.membership.refresh();
    expect(f.membership.members()).toEqual(['10.0.0.1:5001', '10.0.0.2:5001', '[fd00::3]:5001']);
    expect(f.logs.join('')).toMatch(/did not resolve; keeping the last answer/);

    f.dns.set('peers.ns.svc', ['10.0.0.2']);
    await f.membership.refresh();
    expect(f.membership.members()).toEqual(['10.0.0.2:5001']);
    f.membership.stop();
    expect(f.ticks).toHaveLength(0);
  });

  it('is a member itself while its own pod is not yet in the DNS answer', async () => {
    const f = fixture(cluster(['dns:peers.ns.svc:5001'], '0.0.0.0:5001', '10.0.0.9:5001'));
    f.dns.set('peers.ns.svc', ['10.0.0.1']);
    await f.membership.start();
    expect(f.membership.members()).toEqual(['10.0.0.1:5001', '10.0.0.9:5001']);
  });

  it('leaves a peer marked down out of ownership until its time is up on the clock', async () => {
    const f = fixture(cluster(['10.0.0.1:5001', '10.0.0.2:5001', '10.0.0.3:5001'], '0.0.0.0:5001', '10.0.0.2:5001'), { downMs: 15_000 });
    await f.membership.start();
    const digest = Array.from({ length: 100 }, (_, i) => `sha256:${i.toString(16).padStart(64, '0')}`).find((d) => f.membership.owner(d) === '10.0.0.1:5001') ?? '';
    const next = f.membership.rank(digest)[1];
    f.membership.markDown('10.0.0.1:5001', 'connect ECONNREFUSED');
    expect(f.membership.live()).toEqual(['10.0.0.2:5001', '10.0.0.3:5001']);
    expect(f.membership.owner(digest)).toBe(next);
    f.clock.advance(14_999);
    expect(f.membership.owner(digest)).toBe(next);
    f.clock.advance(1);
    expect(f.membership.owner(digest)).toBe('10.0.0.1:5001');
    // Self is never down: a replica always may fill for itself.
    f.membership.markDown('10.0.0.2:5001', 'x');
    expect(f.membership.live()).toContain('10.0.0.2:5001');
  });
});
