import { writeFileSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';
import type { LightMyRequestResponse } from 'fastify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** pullgate with clients.anonymous false and one htpasswd user `ci` (bcrypt cost `cost`), on a fake clock. */
async function withLogins(cost = 4, extra = ''): Promise<{ pg: Harness; fake: FakeRegistry; clock: FakeClock }> {
  const clock = new FakeClock();
  const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
  cleanups.push(() => fake.stop());
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-htpasswd-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'htpasswd');
  writeFileSync(file, `ci:${bcrypt.hashSync('ci-pass', cost)}\n`);
  const pg = harness(
    `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\nclients:\n  anonymous: false\n  htpasswd: ${JSON.stringify(file)}\n${extra}`,
    { clock },
  );
  cleanups.push(() => pg.close());
  fake.add(makeImage('team/app', '1'));
  return { pg, fake, clock };
}

function get(pg: Harness, authorization: string | undefined, remoteAddress: string, url = '/v2/team/app/manifests/1'): Promise<LightMyRequestResponse> {
  return pg.app.inject({ url, remoteAddress, headers: authorization === undefined ? {} : { authorization } });
}

function message(res: LightMyRequestResponse): string {
  return res.json<{ errors: { message: string }[] }>().errors[0]?.message ?? '';
}

describe('client authentication (clients.anonymous: false)', () => {
  it('requires htpasswd credentials for /v2 but not for the probes', async () => {
    const fake = await new FakeRegistry({ kind: 'none' }, new FakeClock()).start();
    cleanups.push(() => fake.stop());
    const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-htpasswd-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'htpasswd');
    writeFileSync(file, `# pullgate clients\nci:${bcrypt.hashSync('ci-pass', 4)}\n`);
    const pg = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\nclients: { anonymous: false, htpasswd: ${JSON.stringify(file)} }\n`);
    cleanups.push(() => pg.close());
    const image = fake.add(makeImage('team/app', '1'));

    const anonymous = await pg.app.inject({ url: '/v2/team/app/manifests/1' });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toBe('Basic realm="pullgate"');
    expect(anonymous.json()).toMatchObject({ errors: [{ code: 'UNAUTHORIZED' }] });
    const wrong = await pg.app.inject({ url: '/v2/', headers: { authorization: basic('ci', 'nope') } });
    expect(wrong.statusCode).toBe(401);
    const good = await pg.app.inject({ url: '/v2/team/app/manifests/1', headers: { authorization: basic('ci', 'ci-pass') } });
    expect(good.statusCode).toBe(200);
    expect(good.headers['docker-content-digest']).toBe(image.digest);
    expect(fake.seen.every((s) => s.authorization === undefined)).toBe(true);
    expect((await pg.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect(pg.logs.join('\n')).not.toContain('ci-pass');
  });

  it('tells a missing login, a malformed header and a wrong password apart', async () => {
    const { pg } = await withLogins();
    const missing = await get(pg, undefined, '10.0.0.1');
    const malformed = await get(pg, 'Bearer abc', '10.0.0.1');
    const wrong = await get(pg, basic('ci', 'nope'), '10.0.0.1');
    const unknownUser = await get(pg, basic('mallory', 'nope'), '10.0.0.1');
    for (const res of [missing, malformed, wrong, unknownUser]) {
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Basic realm="pullgate"');
      expect(res.json()).toMatchObject({ errors: [{ code: 'UNAUTHORIZED' }] });
    }
    expect(message(missing)).toMatch(/carried none/);
    expect(message(malformed)).toMatch(/only HTTP Basic/);
    expect(message(wrong)).toMatch(/not accepted: unknown user or wrong password/);
    // An unknown user and a wrong password read the same: the answer does not confirm user names.
    expect(message(unknownUser)).toBe(message(wrong));
  });

  it('locks an address out with 429 + Retry-After after 5 failed logins, doubling; other addresses and remembered logins are not slowed', async () => {
    const { pg, clock } = await withLogins();
    const good = basic('ci', 'ci-pass');
    // A credential verified before the attack keeps working from the attacked address (remembered, no bcrypt).
    expect((await get(pg, good, '10.0.0.9')).statusCode).toBe(200);
    for (let i = 0; i < 5; i++) expect((await get(pg, basic('ci', `guess-${i}`), '10.0.0.9')).statusCode).toBe(401);
    const locked = await get(pg, basic('ci', 'guess-5'), '10.0.0.9');
    expect(locked.statusCode).toBe(429);
    expect(locked.headers['retry-after']).toBe('1');
    expect(locked.json()).toMatchObject({ errors: [{ code: 'TOOMANYREQUESTS' }] });
    expect(message(locked)).toMatch(/too many failed logins from this address; try again in 1 s/);
    // The correct password, not yet remembered, from the locked address: the lockout holds (documented).
    expect((await get(pg, basic('ci', 'ci-pass '), '10.0.0.9')).statusCode).toBe(429);
    expect((await get(pg, good, '10.0.0.9')).statusCode).toBe(200);
    // Another address logs in at once, with a credential never seen before.
    const other = await withLogins();
    expect((await get(other.pg, basic('ci', 'ci-pass'), '10.0.0.9')).statusCode).toBe(200);
    expect((await get(pg, basic('ci', 'guess-x'), '10.0.0.10')).statusCode).toBe(401);

    clock.advance(1_000);
    expect((await get(pg, basic('ci', 'guess-6'), '10.0.0.9')).statusCode).toBe(401);
    expect((await get(pg, basic('ci', 'guess-7'), '10.0.0.9')).headers['retry-after']).toBe('2');
    clock.advance(2_000);
    expect((await get(pg, basic('ci', 'guess-8'), '10.0.0.9')).statusCode).toBe(401);
    expect((await get(pg, basic('ci', 'guess-9'), '10.0.0.9')).headers['retry-after']).toBe('4');
    expect(pg.logs.join('\n')).not.toMatch(/guess-|ci-pass/);
  });

  it('answers a repeated wrong password from memory without counting it again (a client retrying a stale password)', async () => {
    const { pg } = await withLogins();
    const stale = basic('ci', 'old-pass');
    for (let i = 0; i < 12; i++) expect((await get(pg, stale, '10.0.0.3')).statusCode).toBe(401);
    expect((await get(pg, basic('ci', 'ci-pass'), '10.0.0.3')).statusCode).toBe(200);
  });

  it('follows clients.loginThrottle', async () => {
    const { pg } = await withLogins(4, '  loginThrottle: { failures: 2, lockout: 30s }\n');
    expect((await get(pg, basic('ci', 'a'), '10.0.0.4')).statusCode).toBe(401);
    expect((await get(pg, basic('ci', 'b'), '10.0.0.4')).statusCode).toBe(401);
    expect((await get(pg, basic('ci', 'c'), '10.0.0.4')).headers['retry-after']).toBe('30');
  });

  it('runs bcrypt on a worker thread: a flood of wrong passwords leaves the event loop idle', async () => {
    // Cost 10, as htpasswd -B makes: ~50-100 ms of CPU per comparison.
    const { pg } = await withLogins(10);
    const good = basic('ci', 'ci-pass');
    expect((await get(pg, good, '10.0.1.1')).statusCode).toBe(200);
    const before = performance.eventLoopUtilization();
    const flood = Promise.all(Array.from({ length: 12 }, (_, i) => get(pg, basic('ci', `flood-${i}`), `10.0.2.${i}`)));
    let floodDone = false;
    void flood.then(() => (floodDone = true));
    // An honest client already logged in is answered while the flood is still being checked.
    const honest = await Promise.all(Array.from({ length: 5 }, () => get(pg, good, '10.0.1.1')));
    expect(floodDone).toBe(false);
    expect(honest.map((res) => res.statusCode)).toEqual(Array(5).fill(200));
    expect((await flood).map((res) => res.statusCode)).toEqual(Array(12).fill(401));
    const used = performance.eventLoopUtilization(before);
    // On the event loop, 12 comparisons would keep it busy nearly all the time; off it, the loop mostly waits.
    expect(used.utilization).toBeLessThan(0.8);
  });
});

describe('upstream refusals name the credential kind, never the account', () => {
  it.each([
    ['bearer token exchange', { kind: 'bearer', users: { alice: 's3cret-pw' }, anonymous: false, expiresIn: 300, crossScope403: false } as const],
    ['Basic challenge', { kind: 'basic', username: 'alice', password: 's3cret-pw' } as const],
  ])('%s: the 401 body says registries.<key>.auth (a username and password); the log names the account', async (_name, mode) => {
    const fake = await new FakeRegistry(mode, new FakeClock()).start();
    cleanups.push(() => fake.stop());
    fake.add(makeImage('team/app', '1'));
    const pg = harness(
      `defaultRegistry: reg.example\nregistries:\n  reg.example:\n    url: ${fake.origin}\n    auth: { type: basic, username: bob-the-account, password: wrong-pw }\n`,
    );
    cleanups.push(() => pg.close());
    const res = await pg.app.inject({ url: '/v2/team/app/manifests/1' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(res.body).not.toContain('bob-the-account');
    expect(res.body).not.toContain('wrong-pw');
    expect(res.body).toContain('registries.reg.example.auth (a username and password)');
    expect(fake.seen.length).toBeGreaterThan(0);
    const log = pg.logs.join('\n');
    expect(log).toContain('bob-the-account');
    expect(log).not.toContain('wrong-pw');
  });
});
