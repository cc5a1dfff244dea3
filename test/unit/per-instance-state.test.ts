import { describe, expect, it } from 'vitest';
import { RECENT_WINDOW, RingPool } from '../../src/cache/blob-fill.js';
import { SendBuffers } from '../../src/http/send-chunks.js';
import { AcceptDecisions, accepts } from '../../src/proxy/accept.js';
import { Router, type RoutingTable } from '../../src/routing/route.js';
import type { RegistryConfig } from '../../src/config/config.js';

function table(defaultRegistry: string): RoutingTable {
  const entry = { key: defaultRegistry } as unknown as RegistryConfig;
  return { registries: new Map([[defaultRegistry, entry]]), aliases: new Map(), defaultRegistry };
}

describe('state that belongs to one server, not to the module', () => {
  it('send buffers are reused within one SendBuffers and never handed to another', () => {
    const a = new SendBuffers();
    const b = new SendBuffers();
    const first = a.takePair();
    a.release(first, true);
    const fromB = b.takePair();
    expect(fromB.some((buffer) => first.includes(buffer))).toBe(false);
    const again = a.takePair();
    expect(again.every((buffer) => first.includes(buffer))).toBe(true);
  });

  it('fill rings are reused within one RingPool (two at most) and never handed to another', () => {
    const size = RECENT_WINDOW;
    const a = new RingPool();
    const b = new RingPool();
    const rings = [a.take(size), a.take(size), a.take(size)];
    for (const ring of rings) a.give(ring);
    expect(rings.includes(b.take(size))).toBe(false);
    const again = [a.take(size), a.take(size), a.take(size)];
    expect(again.filter((ring) => rings.includes(ring))).toHaveLength(2);
  });

  it('buffers a sender could not release cleanly are not reused', () => {
    const pool = new SendBuffers();
    const pair = pool.takePair();
    pool.release(pair, false);
    expect(pool.takePair().some((buffer) => pair.includes(buffer))).toBe(false);
  });

  it('each Router remembers routes for its own table', () => {
    const ghcr = new Router(table('ghcr.io'));
    const quay = new Router(table('quay.io'));
    expect(ghcr.route('org/app', undefined)).toEqual({ registry: 'ghcr.io', repository: 'org/app' });
    expect(quay.route('org/app', undefined)).toEqual({ registry: 'quay.io', repository: 'org/app' });
    expect(ghcr.route('org/app', undefined)).toBe(ghcr.route('org/app', undefined));
  });

  it('remembered Accept decisions agree with the plain check', () => {
    const decisions = new AcceptDecisions();
    const accept = 'application/vnd.oci.image.index.v1+json, application/vnd.docker.*;q=0.5';
    for (const type of ['application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json']) {
      expect(decisions.accepts(accept, type)).toBe(accepts(accept, type));
      expect(decisions.accepts(accept, type)).toBe(accepts(accept, type));
    }
    expect(decisions.accepts(undefined, 'x/y')).toBe(true);
  });
});
