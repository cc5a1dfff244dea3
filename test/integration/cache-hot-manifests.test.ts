import { afterEach, describe, expect, it } from 'vitest';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const KiB = 1024;

describe('eviction and hot manifests', () => {
  it('keeps a tag hit all the time while the cache turns over every few seconds: after tagTTL, a HEAD and no manifest GET', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => fake.stop());
    // 512 KiB of budget, a 128 KiB layer pulled every second: turned over every 4 s, 15 times a minute.
    const pg = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\ncache: { tagTTL: 1m }\n`, { clock, maxSize: '512KiB' });
    cleanups.push(() => pg.close());
    const hot = fake.add(makeImage('team/app', 'hot', 1, KiB));
    const hit = async (): Promise<void> => {
      const answer = await pg.app.inject({ url: '/v2/team/app/manifests/hot', headers: { accept: hot.mediaType } });
      expect(answer.statusCode).toBe(200);
      expect(answer.headers['docker-content-digest']).toBe(hot.digest);
    };
    await hit();
    const manifestRequests = (): string[] =>
      fake.seen.filter((s) => s.path.startsWith('/v2/team/app/manifests/')).map((s) => s.method);
    expect(manifestRequests()).toEqual(['GET']);

    for (let second = 1; second < 58; second++) {
      clock.advance(1_000);
      const churn = fake.add(makeImage('team/churn', `t${second}`, 1, 128 * KiB));
      const [digest] = [...churn.blobs.entries()].find(([, bytes]) => bytes.length === 128 * KiB) ?? [''];
      expect((await pg.app.inject({ url: `/v2/team/churn/blobs/${digest}` })).statusCode).toBe(200);
      await pg.cache.drain();
      for (let i = 0; i < 10; i++) await hit();
    }
    // The churn did evict (the budget holds four layers), and never the hot tag's manifest.
    expect(Number(/pullgate_evictions_total (\d+)/.exec((await pg.app.pullgate.metricsText()).body)?.[1])).toBeGreaterThan(40);
    expect(manifestRequests()).toEqual(['GET']);
    clock.advance(5_000);
    await hit();
    expect(manifestRequests()).toEqual(['GET', 'HEAD']);
  });
});
