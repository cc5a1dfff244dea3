import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { USER_AGENT_MAX } from '../../src/http/access-log.js';
import { ACCESS_SAMPLE_EVERY } from '../../src/http/access-sampling.js';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const DOCKER_UA = 'docker/28.0.1 go/go1.23.6 git-commit/bea959c kernel/6.1.0 os/linux arch/amd64 UpstreamClient(Docker-Client/28.0.1 \\(linux\\))';

interface Line {
  msg: string;
  reqId?: string;
  path?: string;
  status?: number;
  userAgent?: string;
  code?: string;
}

function lines(pg: Harness): Line[] {
  return pg.logs.map((line) => JSON.parse(line) as Line);
}

async function setup(extraYaml = '', requestIdPrefix?: string): Promise<{ fake: FakeRegistry; pg: Harness }> {
  const clock = new FakeClock();
  const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
  cleanups.push(() => fake.stop());
  fake.add(makeImage('team/app', '1'));
  const pg = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n${extraYaml}`, {
    clock,
    ...(requestIdPrefix === undefined ? {} : { app: { requestIdPrefix } }),
  });
  cleanups.push(() => pg.close());
  return { fake, pg };
}

describe('the access log', () => {
  it('gives request ids that two workers never share, on the ordinary path and on the manifest hot path', async () => {
    const ids = new Map<string, string[]>();
    for (const worker of ['w0-', 'w1-']) {
      const { pg } = await setup('', worker);
      const base = await pg.listen();
      // The first GET fills the cache (ordinary path); the second is answered by the hot path.
      for (const url of ['/v2/', '/v2/team/app/manifests/1', '/v2/team/app/manifests/1']) {
        const res = await request(`${base}${url}`);
        await res.body.dump();
        expect(res.statusCode).toBe(200);
      }
      await new Promise((resolve) => setImmediate(resolve));
      const requestLines = lines(pg).filter((line) => line.msg === 'request');
      expect(requestLines).toHaveLength(3);
      ids.set(worker, requestLines.map((line) => line.reqId ?? ''));
    }
    const w0 = ids.get('w0-') ?? [];
    const w1 = ids.get('w1-') ?? [];
    expect(w0.every((id) => id.startsWith('req-w0-'))).toBe(true);
    expect(w1.every((id) => id.startsWith('req-w1-'))).toBe(true);
    expect(new Set([...w0, ...w1]).size).toBe(6);
  });

  it('names the user agent, cut to a sane length, on both paths', async () => {
    const { pg } = await setup();
    const base = await pg.listen();
    const long = `crawler/${'x'.repeat(5_000)}`;
    for (const userAgent of [DOCKER_UA, DOCKER_UA, long]) {
      const res = await request(`${base}/v2/team/app/manifests/1`, { headers: { 'user-agent': userAgent } });
      await res.body.dump();
      expect(res.statusCode).toBe(200);
    }
    const none = await pg.app.inject({ url: '/healthz', headers: { 'user-agent': '' } });
    expect(none.statusCode).toBe(200);
    await new Promise((resolve) => setImmediate(resolve));
    const agents = lines(pg)
      .filter((line) => line.msg === 'request')
      .map((line) => line.userAgent);
    // Filled by the ordinary path, then answered by the hot path: both log the client.
    expect(agents.slice(0, 2)).toEqual([DOCKER_UA, DOCKER_UA]);
    expect(agents[2]).toBe(`${long.slice(0, USER_AGENT_MAX)}…`);
    expect(agents[3]).toBeUndefined();
  });

  it('tells a refusal from an upstream failure and from a malformed request', async () => {
    // Nothing listens on port 9: every upstream request fails to connect.
    const pg = harness('defaultRegistry: reg.example\nregistries:\n  reg.example: { url: http://127.0.0.1:9 }\n  reg.open: { url: http://127.0.0.1:9, repositories: { deny: ["secret/**"] } }\n');
    cleanups.push(() => pg.close());
    const down = await pg.app.inject({ url: '/v2/team/app/manifests/1' });
    expect(down.statusCode).toBeGreaterThanOrEqual(500);
    const refused = await pg.app.inject({ url: '/v2/reg.open/secret/app/manifests/1' });
    expect(refused.statusCode).toBe(403);
    const invalid = await pg.app.inject({ url: '/v2/team/app/manifests/-bad' });
    expect(invalid.statusCode).toBe(400);
    const messages = lines(pg)
      .filter((line) => line.msg !== 'request' && line.code !== undefined)
      .map((line) => `${line.code} ${line.msg}`);
    expect(messages).toEqual(['UNAVAILABLE upstream failed', 'DENIED request refused', 'TAG_INVALID request invalid']);
  });

  it('log.access: misses logs the upstream fill and the errors, and no cache hit', async () => {
    const { pg } = await setup('log: { access: misses }\n');
    const base = await pg.listen();
    const statuses: number[] = [];
    // A miss (ordinary path), two hits (hot path), an invalid tag, a route that does not exist and /v2/.
    for (const url of ['/v2/team/app/manifests/1', '/v2/team/app/manifests/1', '/v2/team/app/manifests/1', '/v2/team/app/manifests/-bad', '/nothing', '/v2/']) {
      const res = await request(`${base}${url}`);
      await res.body.dump();
      statuses.push(res.statusCode);
    }
    expect(statuses).toEqual([200, 200, 200, 400, 404, 200]);
    await new Promise((resolve) => setImmediate(resolve));
    const logged = lines(pg).filter((line) => line.msg === 'request');
    expect(logged.map((line) => `${line.status} ${line.path}`)).toEqual(['200 /v2/team/app/manifests/1', '400 /v2/team/app/manifests/-bad', '404 /nothing']);
  });

  it('log.access: sampled logs one routine hit in ACCESS_SAMPLE_EVERY with the figure it stands for, and every miss', async () => {
    const { pg } = await setup('log: { access: sampled }\n');
    const base = await pg.listen();
    const hits = 2 * ACCESS_SAMPLE_EVERY + 1;
    for (let i = 0; i < hits; i++) {
      const res = await request(`${base}/v2/team/app/manifests/1`);
      await res.body.dump();
      expect(res.statusCode).toBe(200);
    }
    await new Promise((resolve) => setImmediate(resolve));
    const logged = lines(pg).filter((line) => line.msg === 'request') as (Line & { source?: string; sampled?: number })[];
    // The fill (a miss, unsampled), then the 1st and the 101st of the 200 hits that followed.
    expect(logged.map((line) => [line.source, line.sampled])).toEqual([
      ['upstream', undefined],
      ['cache', ACCESS_SAMPLE_EVERY],
      ['cache', ACCESS_SAMPLE_EVERY],
    ]);
  });

  it('log.access: all (the default) logs every request', async () => {
    const { pg } = await setup();
    expect(pg.config.log.access).toBe('all');
    for (let i = 0; i < 3; i++) expect((await pg.app.inject({ url: '/v2/team/app/manifests/1' })).statusCode).toBe(200);
    expect(lines(pg).filter((line) => line.msg === 'request')).toHaveLength(3);
  });
});
