import { afterEach, describe, expect, it } from 'vitest';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** pullgate_upstream_failures_total as `registry reason` → count. */
async function failures(pg: Harness): Promise<Record<string, number>> {
  const metric = await pg.app.pullgate.metrics.registry.getSingleMetric('pullgate_upstream_failures_total')?.get();
  const out: Record<string, number> = {};
  for (const value of metric?.values ?? []) out[`${String(value.labels.registry)} ${String(value.labels.reason)}`] = value.value;
  return out;
}

interface Ready {
  status: string;
  upstreams?: Record<string, { state: string; reason?: string; failures?: number; since: string }>;
}

describe('upstream failures: counted by registry and reason, and shown by /readyz', () => {
  it('counts 5xx, 429, refused credentials, unreachable and timed-out registries; /readyz stays 200 and names each one', async () => {
    const clock = new FakeClock();
    const open = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => open.stop());
    const image = open.add(makeImage('team/app', '1'));
    const locked = await new FakeRegistry({ kind: 'basic', username: 'u', password: 'right' }, clock).start();
    cleanups.push(() => locked.stop());
    locked.add(makeImage('team/app', '1'));
    const slow = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => slow.stop());
    // Headers never come: pullgate gives up after upstream.timeout.
    slow.routes.set('/v2/team/app/manifests/1', () => undefined);
    const pg = harness(
      [
        'defaultRegistry: open.example',
        'upstream: { timeout: 300ms }',
        'registries:',
        `  open.example: { url: ${open.origin} }`,
        `  locked.example: { url: ${locked.origin}, auth: { type: basic, username: u, password: "wrong-secret" } }`,
        '  gone.example: { url: "http://127.0.0.1:9" }',
        `  slow.example: { url: ${slow.origin} }`,
        'clients: { anonymous: true }',
      ].join('\n'),
      { clock },
    );
    cleanups.push(() => pg.close());

    // Nothing asked yet: /readyz is the plain answer.
    expect((await pg.app.inject({ url: '/readyz' })).body).toBe('{"status":"ok"}');

    open.faults.manifestStatuses = [503, 429];
    expect((await pg.app.inject({ url: '/v2/team/app/manifests/1' })).statusCode).toBe(502);
    expect((await pg.app.inject({ url: '/v2/team/app/manifests/1' })).statusCode).toBe(429);
    expect((await pg.app.inject({ url: '/v2/locked.example/team/app/manifests/1' })).statusCode).toBe(401);
    expect((await pg.app.inject({ url: '/v2/gone.example/team/app/manifests/1' })).statusCode).toBe(503);
    expect((await pg.app.inject({ url: '/v2/slow.example/team/app/manifests/1' })).statusCode).toBe(503);

    expect(await failures(pg)).toEqual({
      'open.example 5xx': 1,
      'open.example 429': 1,
      'locked.example denied': 1,
      'gone.example connect': 1,
      'slow.example timeout': 1,
    });
    // Labels are registry keys and fixed words: never the credential.
    const text = await pg.app.pullgate.metrics.registry.metrics();
    expect(text).not.toContain('wrong-secret');

    const failing = await pg.app.inject({ url: '/readyz' });
    // A cache that can serve what it holds stays ready with every upstream down.
    expect(failing.statusCode).toBe(200);
    const body = failing.json<Ready>();
    expect(body.status).toBe('upstream failing');
    expect(body.upstreams).toMatchObject({
      'open.example': { state: 'failing', reason: '429', failures: 2 },
      'locked.example': { state: 'failing', reason: 'denied', failures: 1 },
      'gone.example': { state: 'failing', reason: 'connect' },
      'slow.example': { state: 'failing', reason: 'timeout' },
    });
    expect(JSON.stringify(body)).not.toContain('wrong-secret');

    // The registry answers again: it is ok, and counted failures stay counted.
    const res = await pg.app.inject({ url: '/v2/team/app/manifests/1' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(image.digest);
    const after = (await pg.app.inject({ url: '/readyz' })).json<Ready>();
    expect(after.status).toBe('upstream failing'); // the others still fail
    expect(after.upstreams?.['open.example']).toMatchObject({ state: 'ok' });
    expect((await failures(pg))['open.example 5xx']).toBe(1);
  });
});
