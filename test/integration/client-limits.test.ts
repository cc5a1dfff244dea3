import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import type { LightMyRequestResponse } from 'fastify';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientLimits } from '../../src/access/client-limits.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeRegistry, makeImage, type FakeImage } from '../helpers/fake-registry.js';
import { harness, type Harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const ALICE = `Basic ${Buffer.from('alice:alice-pw').toString('base64')}`;

interface Setup {
  pg: Harness;
  fake: FakeRegistry;
  image: FakeImage;
  clock: FakeClock;
}

/** reg.example holds team/app:1 (one 256 KiB layer); anonymous clients and alice may pull; `limits` as given. */
async function setup(limits: string | undefined): Promise<Setup> {
  const clock = new FakeClock();
  const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
  cleanups.push(() => fake.stop());
  const image = fake.add(makeImage('team/app', '1', 1, 256 * 1024));
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-limits-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const htpasswd = path.join(dir, 'htpasswd');
  writeFileSync(htpasswd, `alice:${bcrypt.hashSync('alice-pw', 4)}\n`);
  const pg = harness(
    [
      'defaultRegistry: reg.example',
      'registries:',
      `  reg.example: { url: ${fake.origin}, auth: { type: anonymous } }`,
      `clients: { anonymous: true, htpasswd: ${JSON.stringify(htpasswd)}${limits === undefined ? '' : `, limits: ${limits}`} }`,
    ].join('\n'),
    { clock },
  );
  cleanups.push(() => pg.close());
  return { pg, fake, image, clock };
}

const manifest = (pg: Harness, remoteAddress: string, authorization?: string): Promise<LightMyRequestResponse> =>
  pg.app.inject({ url: '/v2/team/app/manifests/1', remoteAddress, headers: authorization === undefined ? {} : { authorization } });

describe('clients.limits', () => {
  it('is off unless configured: 60 requests in a row from one address all pass', async () => {
    const { pg } = await setup(undefined);
    expect(pg.config.clients.limits).toBeUndefined();
    for (let i = 0; i < 60; i++) expect((await manifest(pg, '10.0.0.1')).statusCode).toBe(200);
  });

  it('rate: a token bucket per address (burst, then rate per second on the injected clock); 429 TOOMANYREQUESTS with Retry-After, counted and logged, and no upstream request', async () => {
    const { pg, fake, clock } = await setup('{ rate: 2, burst: 3 }');
    expect(pg.config.clients.limits).toEqual({ rate: 2, burst: 3, concurrency: undefined, clients: 100_000 });
    for (let i = 0; i < 3; i++) expect((await manifest(pg, '10.0.0.1')).statusCode).toBe(200);
    const upstreamBefore = fake.count('/v2/team/app/');
    const refused = await manifest(pg, '10.0.0.1');
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.headers['content-type']).toMatch(/^application\/json/);
    expect(refused.json()).toEqual({
      errors: [{ code: 'TOOMANYREQUESTS', message: expect.stringContaining('clients.limits.rate') as string, detail: { limit: 'rate' } }],
    });
    // Another address has its own bucket.
    expect((await manifest(pg, '10.0.0.2')).statusCode).toBe(200);
    // Half a second at 2/s refills one token: one more passes, the next does not.
    clock.advance(500);
    expect((await manifest(pg, '10.0.0.1')).statusCode).toBe(200);
    expect((await manifest(pg, '10.0.0.1')).statusCode).toBe(429);
    expect(fake.count('/v2/team/app/')).toBe(upstreamBefore);
    const metrics = await pg.app.inject({ url: '/metrics', remoteAddress: '10.0.0.9' });
    expect(metrics.body).toMatch(/pullgate_requests_denied_total\{reason="limited"\} 2/);
    const logged = pg.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request' && l.status === 429);
    expect(logged.map((l) => l.denied)).toEqual(['limited', 'limited']);
  });

  it('rate: a logged-in user has a bucket of their own, whatever the address has used', async () => {
    const { pg } = await setup('{ rate: 1, burst: 2 }');
    for (let i = 0; i < 2; i++) expect((await manifest(pg, '10.0.0.1')).statusCode).toBe(200);
    expect((await manifest(pg, '10.0.0.1')).statusCode).toBe(429);
    // alice behind the same address (a NAT) is counted as alice: her two pass, her third does not.
    expect((await manifest(pg, '10.0.0.1', ALICE)).statusCode).toBe(200);
    expect((await manifest(pg, '10.0.0.3', ALICE)).statusCode).toBe(200);
    const third = await manifest(pg, '10.0.0.4', ALICE);
    expect(third.statusCode).toBe(429);
    expect(third.headers['retry-after']).toBe('1');
  });

  it('rate: the manifest hot path takes one token per request and refuses with the ordinary 429 once the bucket is empty', async () => {
    const { pg, clock } = await setup('{ rate: 1, burst: 3 }');
    // Warm the manifest from another address, so the listening server answers it on the hot path.
    expect((await manifest(pg, '10.0.0.7')).statusCode).toBe(200);
    const base = await pg.listen();
    const get = async (): Promise<{ status: number; retryAfter: unknown; body: string }> => {
      const res = await request(`${base}/v2/team/app/manifests/1`);
      return { status: res.statusCode, retryAfter: res.headers['retry-after'], body: await res.body.text() };
    };
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await get()).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const refused = await get();
    expect(refused).toMatchObject({ status: 429, retryAfter: '1' });
    expect(JSON.parse(refused.body)).toMatchObject({ errors: [{ code: 'TOOMANYREQUESTS' }] });
    clock.advance(1_000);
    expect((await get()).status).toBe(200);
    expect((await get()).status).toBe(429);
  });

  it('concurrency: requests in flight per client; a slot frees when its response ends', async () => {
    const { pg, fake, image } = await setup('{ concurrency: 2 }');
    let release = (): void => {};
    fake.faults.holdBlobs = new Promise<void>((resolve) => (release = resolve));
    const base = await pg.listen();
    const layer = [...image.blobs].find(([, bytes]) => bytes.length > 128 * 1024)?.[0];
    if (layer === undefined) throw new Error('image without its 256 KiB layer');
    // Two blob downloads stay open (upstream holds all but the first 64 KiB).
    const open = await Promise.all([0, 1].map(() => request(`${base}/v2/team/app/blobs/${layer}`)));
    expect(open.map((r) => r.statusCode)).toEqual([200, 200]);
    const third = await request(`${base}/v2/team/app/manifests/1`);
    expect(third.statusCode).toBe(429);
    expect(third.headers['retry-after']).toBe('1');
    expect(JSON.parse(await third.body.text())).toMatchObject({ errors: [{ code: 'TOOMANYREQUESTS', detail: { limit: 'concurrency' } }] });
    // Another client is not affected.
    expect((await manifest(pg, '10.0.0.5')).statusCode).toBe(200);
    release();
    await Promise.all(open.map((r) => r.body.arrayBuffer()));
    // The slots are released on the responses' close, which follows their end.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      const res = await request(`${base}/v2/team/app/manifests/1`);
      await res.body.dump();
      status = res.statusCode;
    }
    expect(status).toBe(200);
  });

  it('remembers at most `clients` clients (LRU): memory stays bounded, a forgotten client starts with a full bucket', () => {
    const clock = new FakeClock();
    const limits = new ClientLimits({ rate: 1, burst: 1, concurrency: undefined, clients: 3 }, clock);
    expect(limits.admit(undefined, '10.0.0.1').ok).toBe(true);
    expect(limits.admit(undefined, '10.0.0.1').ok).toBe(false);
    for (let i = 2; i <= 10; i++) limits.admit(undefined, `10.0.0.${i}`);
    expect(limits.size).toBe(3);
    expect(limits.admit(undefined, '10.0.0.1').ok).toBe(true);
    // IPv6 clients are counted by /64.
    expect(limits.admit(undefined, '2001:db8:1:2::a').ok).toBe(true);
    expect(limits.admit(undefined, '2001:db8:1:2::b')).toEqual({ ok: false, retryAfterSeconds: 1, limit: 'rate' });
  });

  it('rejects a rate of 0 and unknown keys, naming the path', async () => {
    await expect(setup('{ rate: 0 }')).rejects.toThrow(/clients\.limits\.rate/);
    await expect(setup('{ perSecond: 3 }')).rejects.toThrow(/clients\.limits: unknown key "perSecond"/);
  });
});
