import { describe, expect, it } from 'vitest';
import { credential, type Credential } from '../../src/auth/credential.js';
import { TokenCache, type TokenExchange, type TokenRequest } from '../../src/auth/token-cache.js';
import type { IssuedToken } from '../../src/auth/token-response.js';

/** A realistic epoch (never 0: a start time of 0 reads as "no TTL" in lru-cache). */
const T0 = Date.parse('2024-01-01T00:00:00Z');
const LIFETIME_MS = 300_000;
/** 300 s token, refreshed 30 s (refreshMargin) before it expires. */
const REUSE_MS = 270_000;

const alice = credential({ kind: 'basic', username: 'alice', password: 'alice-secret' }, 'test alice', { kind: 'config', file: undefined });
const bob = credential({ kind: 'basic', username: 'bob', password: 'bob-secret' }, 'test bob', { kind: 'config', file: undefined });

function request(scopes: string[], cred: Credential = alice, overrides: Partial<TokenRequest> = {}): TokenRequest {
  return {
    registry: 'cgr.dev',
    realm: 'https://cgr.dev/token',
    service: 'cgr.dev',
    scopes,
    credential: cred,
    ...overrides,
  };
}

const STATIC = request(['repository:chainguard/static:pull']);

/** A fake clock and a fake exchange that counts its calls and can be held open or made to fail. */
function harness(lifetimeMs = LIFETIME_MS) {
  let t = T0;
  const clock = { now: () => t };
  const calls: TokenRequest[] = [];
  let failNext: Error | undefined;
  let gate: Promise<void> | undefined;
  const exchange: TokenExchange = async (req) => {
    calls.push(req);
    const n = calls.length;
    const failure = failNext;
    failNext = undefined;
    if (gate !== undefined) await gate;
    else await Promise.resolve();
    if (failure !== undefined) throw failure;
    const issued: IssuedToken = { token: `token-${n}`, expiresAt: t + lifetimeMs, refreshToken: undefined };
    return issued;
  };
  const cache = new TokenCache(exchange, clock);
  return {
    cache,
    calls,
    advance(ms: number): void {
      t += ms;
    },
    failNextWith(err: Error): void {
      failNext = err;
    },
    /** Holds every exchange until the returned function is called. */
    hold(): () => void {
      let release: () => void = () => undefined;
      gate = new Promise<void>((resolve) => {
        release = () => {
          gate = undefined;
          resolve();
        };
      });
      return release;
    },
  };
}

describe('TokenCache', () => {
  it('reuses a token for the same key without another exchange', async () => {
    const h = harness();
    const first = await h.cache.get(STATIC);
    const second = await h.cache.get(STATIC);
    expect(first).toBe('token-1');
    expect(second).toBe(first);
    expect(h.calls).toHaveLength(1);
    expect(h.cache.exchanges).toBe(1);
    expect(h.cache.size).toBe(1);
  });

  it('keeps reusing the token until shortly before it expires', async () => {
    const h = harness();
    expect(await h.cache.get(STATIC)).toBe('token-1');
    h.advance(REUSE_MS - 1_000);
    expect(await h.cache.get(STATIC)).toBe('token-1');
    expect(h.calls).toHaveLength(1);
  });

  it('exchanges again once the token is inside its refresh margin', async () => {
    const h = harness();
    expect(await h.cache.get(STATIC)).toBe('token-1');
    h.advance(REUSE_MS + 1_000);
    expect(await h.cache.get(STATIC)).toBe('token-2');
    expect(h.calls).toHaveLength(2);
  });

  it('follows the fake clock on consecutive reads: reused before the margin, refreshed after it', async () => {
    const h = harness();
    await h.cache.get(STATIC);
    h.advance(REUSE_MS - 1_000);
    expect(await h.cache.get(STATIC)).toBe('token-1');
    h.advance(2_000);
    expect(await h.cache.get(STATIC)).toBe('token-2');
    expect(h.calls).toHaveLength(2);
  });

  it('refreshes a 60 s token 15 s early (a quarter of its life)', async () => {
    const h = harness(60_000);
    await h.cache.get(STATIC);
    h.advance(44_000);
    expect(await h.cache.get(STATIC)).toBe('token-1');
    expect(h.calls).toHaveLength(1);
    const later = harness(60_000);
    await later.cache.get(STATIC);
    later.advance(46_000);
    expect(await later.cache.get(STATIC)).toBe('token-2');
    expect(later.calls).toHaveLength(2);
  });

  it('never reuses a token across scopes: each scope gets its own exchange', async () => {
    const h = harness();
    const a = request(['repository:chainguard/static:pull']);
    const b = request(['repository:chainguard/nginx:pull']);
    const tokenA = await h.cache.get(a);
    const tokenB = await h.cache.get(b);
    expect(tokenA).not.toBe(tokenB);
    expect(h.calls.map((call) => call.scopes)).toEqual([a.scopes, b.scopes]);
    expect(await h.cache.get(a)).toBe(tokenA);
    expect(await h.cache.get(b)).toBe(tokenB);
    expect(h.calls).toHaveLength(2);
  });

  it('treats a scope set in another order as the same key', async () => {
    const h = harness();
    await h.cache.get(request(['repository:a:pull', 'repository:b:pull']));
    await h.cache.get(request(['repository:b:pull', 'repository:a:pull']));
    expect(h.calls).toHaveLength(1);
  });

  it('keeps a two-scope token apart from a one-scope token', async () => {
    const h = harness();
    await h.cache.get(request(['repository:a:pull', 'repository:b:pull']));
    await h.cache.get(request(['repository:a:pull']));
    expect(h.calls).toHaveLength(2);
  });

  it('keeps different credentials apart', async () => {
    const h = harness();
    expect(alice.fingerprint).not.toBe(bob.fingerprint);
    const forAlice = await h.cache.get(request(STATIC.scopes, alice));
    const forBob = await h.cache.get(request(STATIC.scopes, bob));
    expect(forAlice).not.toBe(forBob);
    expect(h.calls.map((call) => call.credential.fingerprint)).toEqual([alice.fingerprint, bob.fingerprint]);
  });

  it('shares a token between credential objects with the same secret', async () => {
    const h = harness();
    const again = credential({ kind: 'basic', username: 'alice', password: 'alice-secret' }, 'another source', { kind: 'config', file: undefined });
    await h.cache.get(request(STATIC.scopes, alice));
    await h.cache.get(request(STATIC.scopes, again));
    expect(h.calls).toHaveLength(1);
  });

  it('keeps different registries, realms and services apart', async () => {
    const h = harness();
    await h.cache.get(STATIC);
    await h.cache.get(request(STATIC.scopes, alice, { registry: 'ghcr.io' }));
    await h.cache.get(request(STATIC.scopes, alice, { realm: 'https://cgr.dev/token2' }));
    await h.cache.get(request(STATIC.scopes, alice, { service: undefined }));
    expect(h.calls).toHaveLength(4);
  });

  it('coalesces 10 concurrent misses for one key into one exchange', async () => {
    const h = harness();
    const release = h.hold();
    const pending = Array.from({ length: 10 }, () => h.cache.get(STATIC));
    await Promise.resolve();
    expect(h.calls).toHaveLength(1);
    release();
    const tokens = await Promise.all(pending);
    expect(new Set(tokens)).toEqual(new Set(['token-1']));
    expect(h.calls).toHaveLength(1);
    expect(h.cache.exchanges).toBe(1);
  });

  it('invalidate forces a new exchange for that key only', async () => {
    const h = harness();
    const other = request(['repository:chainguard/nginx:pull']);
    await h.cache.get(STATIC);
    await h.cache.get(other);
    h.cache.invalidate(STATIC);
    expect(await h.cache.get(STATIC)).toBe('token-3');
    expect(await h.cache.get(other)).toBe('token-2');
    expect(h.calls).toHaveLength(3);
  });

  it('does not cache a failed exchange', async () => {
    const h = harness();
    h.failNextWith(new Error('token server said 401'));
    await expect(h.cache.get(STATIC)).rejects.toThrow('token server said 401');
    expect(h.cache.size).toBe(0);
    expect(await h.cache.get(STATIC)).toBe('token-2');
    expect(h.calls).toHaveLength(2);
  });

  it('rejects every waiter of a failed shared exchange, then retries on the next get', async () => {
    const h = harness();
    h.failNextWith(new Error('unreachable'));
    const release = h.hold();
    const pending = Array.from({ length: 3 }, () => h.cache.get(STATIC));
    release();
    const results = await Promise.allSettled(pending);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(h.calls).toHaveLength(1);
    expect(await h.cache.get(STATIC)).toBe('token-2');
  });

  it('an invalidate while an exchange is in flight does not fail the request waiting on it', async () => {
    const h = harness();
    await h.cache.get(STATIC);
    h.advance(REUSE_MS + 1_000);
    const release = h.hold();
    // Request B finds the token stale and starts a new exchange ...
    const waiting = h.cache.get(STATIC);
    await Promise.resolve();
    // ... while request A, which still held token-1, got a 401 and invalidates the key.
    h.cache.invalidate(STATIC);
    release();
    await expect(waiting).resolves.toMatch(/^token-/);
  });

  it('builds keys from the credential fingerprint, never the secret', () => {
    const key = TokenCache.key(STATIC);
    expect(key).toContain(alice.fingerprint);
    expect(key).not.toContain('alice-secret');
    expect(key).not.toContain('alice\u0000');
  });

  it('builds the same key whatever the scope order', () => {
    expect(TokenCache.key(request(['b', 'a']))).toBe(TokenCache.key(request(['a', 'b'])));
    expect(TokenCache.key(request(['a']))).not.toBe(TokenCache.key(request(['a', 'b'])));
  });
});
