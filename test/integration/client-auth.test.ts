import { writeFileSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness } from '../helpers/harness.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

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
});
