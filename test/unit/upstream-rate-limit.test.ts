import { describe, expect, it } from 'vitest';
import { parseRateLimitValue, rateLimitOf } from '../../src/upstream/rate-limit.js';
import { RegistryWatch, safeReason } from '../../src/upstream/registry-watch.js';
import { RecentEvents } from '../../src/util/recent-events.js';
import { FakeClock } from '../helpers/fake-clock.js';

describe('ratelimit-* headers', () => {
  it("reads Docker Hub's N;w=SECONDS form", () => {
    expect(parseRateLimitValue('42;w=21600')).toEqual({ count: 42, windowSeconds: 21600 });
    expect(parseRateLimitValue('100 ; w=21600')).toEqual({ count: 100, windowSeconds: 21600 });
  });

  it('reads a bare count, and a list of policies (first count, first window)', () => {
    expect(parseRateLimitValue('7')).toEqual({ count: 7, windowSeconds: undefined });
    expect(parseRateLimitValue('100, 100;w=21600')).toEqual({ count: 100, windowSeconds: 21600 });
    expect(parseRateLimitValue(['5;w=60', '10;w=3600'])).toEqual({ count: 5, windowSeconds: 60 });
  });

  it('ignores what is not a count (the header is advice)', () => {
    for (const bad of ['', 'many', '-1;w=60', '1e3', ';w=60', '12abc']) expect(parseRateLimitValue(bad)).toBeUndefined();
    expect(parseRateLimitValue(undefined)).toBeUndefined();
  });

  it('combines limit and remaining; undefined when an answer states neither', () => {
    expect(rateLimitOf({ 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '42;w=21600' })).toEqual({ limit: 100, remaining: 42, windowSeconds: 21600 });
    expect(rateLimitOf({ 'ratelimit-remaining': '3' })).toEqual({ limit: undefined, remaining: 3, windowSeconds: undefined });
    expect(rateLimitOf({ 'content-type': 'application/json' })).toBeUndefined();
  });
});

describe('RegistryWatch', () => {
  it('keeps the last success, the last failure and the rate limit of the last answer that stated one', () => {
    const clock = new FakeClock();
    const recent = new RecentEvents(clock);
    const watch = new RegistryWatch(clock, recent);
    watch.recordAnswer('docker.io', 200, { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '42;w=21600' });
    const first = clock.now();
    clock.advance(1_000);
    watch.recordAnswer('docker.io', 503, {});
    expect(watch.get('docker.io')).toMatchObject({ lastSuccess: first, lastError: { time: first + 1_000, reason: 'answered 503' }, rateLimit: { remaining: 42 } });
    clock.advance(1_000);
    watch.recordAnswer('docker.io', 401, { 'ratelimit-remaining': '41;w=21600' });
    expect(watch.get('docker.io')?.lastSuccess).toBe(first + 2_000);
    expect(watch.rateLimits()).toEqual([['docker.io', { limit: undefined, remaining: 41, windowSeconds: 21600, seenAt: first + 2_000 }]]);
    watch.recordAnswer('docker.io', 429, {});
    expect(watch.get('docker.io')?.lastError?.reason).toBe('rate limited (429)');
    expect(recent.list().map((e) => e.reason)).toEqual(['rate limited (429)', 'answered 503']);
  });

  it('takes user info and query strings (presigned signatures) out of failure reasons', () => {
    expect(safeReason('fetch https://user:pw@cdn.example/blob?X-Amz-Signature=abc failed')).toBe('fetch https://cdn.example/blob failed');
    const watch = new RegistryWatch(new FakeClock(), undefined);
    watch.recordFailure('ghcr.io', 'redirected to https://s3.example/x?sig=secret (unreachable)');
    expect(watch.get('ghcr.io')?.lastError?.reason).toBe('redirected to https://s3.example/x (unreachable)');
  });

  it('names the kind of credential source, never the account', () => {
    const watch = new RegistryWatch(new FakeClock(), undefined);
    watch.recordCredential('ecr.example', { kind: 'provider', provider: 'ecr' });
    watch.recordCredential('ghcr.io', { kind: 'file', file: '/home/alice/.docker/config.json' });
    expect(watch.get('ecr.example')?.credential).toBe('ecr');
    expect(watch.get('ghcr.io')?.credential).toBe('file');
  });
});
