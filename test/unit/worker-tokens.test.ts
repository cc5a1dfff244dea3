import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { SharedToken } from '../../src/core/host-tokens.js';
import { TokenCache } from '../../src/auth/token-cache.js';
import { CachedToken } from '../../src/auth/sources/cached-token.js';
import { credential } from '../../src/auth/credential.js';
import { TokenBroker, WorkerTokens, type TokenMessage, type TokenPeer } from '../../src/cli/worker-tokens.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** Messages cross as over node's IPC: serialised, and delivered on a later turn. */
function deliver(to: EventEmitter, message: unknown): void {
  const copy: unknown = JSON.parse(JSON.stringify(message));
  setImmediate(() => to.emit('message', copy));
}

/** One worker wired to the broker: its WorkerTokens, and `die()` as the primary sees a worker exit. */
function worker(broker: TokenBroker): { tokens: WorkerTokens; die: () => void } {
  const inWorker = new EventEmitter();
  const inPrimary = new EventEmitter();
  let connected = true;
  const peer: TokenPeer = {
    send: (message: TokenMessage) => deliver(inWorker, message),
    isConnected: () => connected,
    on: (event, listener) => inPrimary.on(event, listener),
    once: (event, listener) => inPrimary.once(event, listener),
  };
  broker.add(peer);
  const tokens = new WorkerTokens({ send: (message) => deliver(inPrimary, message), on: (e, l) => inWorker.on(e, l), off: (e, l) => inWorker.off(e, l) });
  return {
    tokens,
    die: () => {
      connected = false;
      tokens.close();
      inPrimary.emit('exit');
    },
  };
}

/** A fetch that counts its calls and resolves when the test says so. */
function gatedFetch(token: SharedToken): { fetch: () => Promise<SharedToken>; calls: () => number; release: () => void; fail: (err: Error) => void } {
  let calls = 0;
  const gates: { resolve: (t: SharedToken) => void; reject: (e: Error) => void }[] = [];
  return {
    fetch: () => {
      calls++;
      return new Promise((resolve, reject) => gates.push({ resolve, reject }));
    },
    calls: () => calls,
    release: () => gates.splice(0).forEach((gate) => gate.resolve(token)),
    fail: (err) => gates.splice(0).forEach((gate) => gate.reject(err)),
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await tick();
}

describe('tokens shared by the workers of a host', () => {
  it('is fetched by one worker while the others wait, then served to all until its refresh time', async () => {
    const clock = new FakeClock();
    const broker = new TokenBroker(clock);
    const workers = [worker(broker), worker(broker), worker(broker)];
    const token = { value: 'secret-1', expiresAt: clock.now() + 60_000, refreshAt: clock.now() + 30_000 };
    const gate = gatedFetch(token);
    const answers = workers.map((w) => w.tokens.obtain('bearer k', gate.fetch));
    await settle();
    expect(gate.calls()).toBe(1);
    gate.release();
    expect(await Promise.all(answers)).toEqual([token, token, token]);
    // Held until its refresh time: a fourth ask is answered by the primary.
    clock.advance(29_999);
    expect(await workers[1]?.tokens.obtain('bearer k', gate.fetch)).toEqual(token);
    expect(gate.calls()).toBe(1);
    // Past it, the next ask fetches again.
    clock.advance(1);
    const again = workers[2]?.tokens.obtain('bearer k', gate.fetch);
    await settle();
    expect(gate.calls()).toBe(2);
    gate.release();
    await again;
  });

  it('lets every waiting worker fetch for itself when the fetch fails or the fetching worker dies', async () => {
    const clock = new FakeClock();
    const broker = new TokenBroker(clock);
    const [a, b, c] = [worker(broker), worker(broker), worker(broker)];
    const token = { value: 'secret-2', expiresAt: clock.now() + 60_000, refreshAt: clock.now() + 30_000 };
    const gate = gatedFetch(token);
    const first = a.tokens.obtain('ecr host', gate.fetch);
    const waiting = b.tokens.obtain('ecr host', gate.fetch);
    await settle();
    gate.fail(new Error('denied'));
    await expect(first).rejects.toThrow('denied');
    await settle();
    // b was told to fetch for itself (as one process alone would have): its own fetch is the second call.
    expect(gate.calls()).toBe(2);
    gate.release();
    expect(await waiting).toEqual(token);

    // The fetching worker dies mid-fetch: the one waiting fetches itself instead of waiting forever.
    const other = gatedFetch({ ...token, value: 'secret-3' });
    void c.tokens.obtain('gcp metadata', other.fetch);
    await settle();
    const left = b.tokens.obtain('gcp metadata', other.fetch);
    await settle();
    expect(other.calls()).toBe(1);
    c.die();
    await settle();
    expect(other.calls()).toBe(2);
    other.release();
    expect((await left).value).toBe('secret-3');
  });

  it('forgets a refused token only if it is still the one held', async () => {
    const clock = new FakeClock();
    const broker = new TokenBroker(clock);
    const [a, b] = [worker(broker), worker(broker)];
    let n = 0;
    const fetch = (): Promise<SharedToken> => Promise.resolve({ value: `t${++n}`, expiresAt: clock.now() + 60_000, refreshAt: clock.now() + 30_000 });
    expect((await a.tokens.obtain('k', fetch)).value).toBe('t1');
    a.tokens.forget('k', 'an-older-token');
    await settle();
    expect((await b.tokens.obtain('k', fetch)).value).toBe('t1');
    b.tokens.forget('k', 't1');
    await settle();
    expect((await a.tokens.obtain('k', fetch)).value).toBe('t2');
  });

  it('makes one token exchange per scope for three workers\' token caches, and one cloud-token fetch for their credential sources', async () => {
    const clock = new FakeClock();
    const broker = new TokenBroker(clock);
    const workers = [worker(broker), worker(broker), worker(broker)];
    let exchanges = 0;
    const caches = workers.map(
      (w) =>
        new TokenCache(
          () => {
            exchanges++;
            return Promise.resolve({ token: `bearer-${exchanges}`, expiresAt: clock.now() + 300_000, refreshToken: undefined });
          },
          clock,
          w.tokens,
        ),
    );
    const request = { registry: 'reg.example', realm: 'https://auth.example/token', service: 'reg', scopes: ['repository:team/app:pull'], credential: credential({ kind: 'anonymous' }, 'anonymous', { kind: 'none', chain: 'test', searched: [], problems: [] }) };
    const got = await Promise.all(caches.map((cache) => cache.get(request)));
    expect(exchanges).toBe(1);
    expect(new Set(got)).toEqual(new Set(['bearer-1']));
    console.log(`worker-tokens: 3 workers' token caches, one scope: ${exchanges} exchange (3 without the host share)`);

    let ecrCalls = 0;
    const sources = workers.map(
      (w) =>
        new CachedToken(
          () => {
            ecrCalls++;
            return Promise.resolve({ value: `ecr-${ecrCalls}`, expiresAt: clock.now() + 12 * 3_600_000 });
          },
          clock,
          { tokens: w.tokens, key: 'ecr 123456789012.dkr.ecr.eu-west-1.amazonaws.com' },
        ),
    );
    expect(await Promise.all(sources.map((source) => source.get()))).toEqual(['ecr-1', 'ecr-1', 'ecr-1']);
    expect(ecrCalls).toBe(1);
    // The refresh rule holds across the host: half the 12 h life, then one new fetch for all.
    clock.advance(6 * 3_600_000);
    expect(await Promise.all(sources.map((source) => source.get()))).toEqual(['ecr-2', 'ecr-2', 'ecr-2']);
    expect(ecrCalls).toBe(2);
  });
});
