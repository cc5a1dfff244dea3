import { tmpdir } from 'node:os';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';
import { drain } from '../../src/upstream/http.js';
import type { PullEvent } from '../../src/auth/pull-observer.js';
import { createRegistryClient, createTokenCache } from '../../src/upstream/upstreams.js';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';

const SECRET = 'Obs3rver-secret';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function setup(users: Record<string, string>) {
  const clock = new FakeClock();
  const fake = await new FakeRegistry({ kind: 'bearer', users, anonymous: false, expiresIn: 300, crossScope403: false }, clock).start();
  cleanups.push(() => fake.stop());
  const dispatcher = new Agent();
  cleanups.push(() => dispatcher.close());
  const env = { REG_USER: 'alice', REG_PASSWORD: SECRET };
  const config = loadConfigText(`registries:\n  reg.example: { url: "${fake.origin}", auth: { type: basic, username: "\${REG_USER}", password: "\${REG_PASSWORD}" } }\n`, env, 'test', tmpdir());
  const registry = config.registries.get('reg.example');
  if (!registry) throw new Error('no registry');
  const deps = { env, clock, dispatcher, rktDirs: [] };
  const client = createRegistryClient(registry, config, deps, createTokenCache(config, deps));
  return { fake, client, clock };
}

describe('RegistryClient observer', () => {
  it('reports credentials, challenge, exchange, token and responses in order, with typed facts and no secret', async () => {
    const { fake, client, clock } = await setup({ alice: SECRET });
    fake.add(makeImage('team/app', '1'));
    const events: PullEvent[] = [];
    const response = await client.request({ method: 'HEAD', repository: 'team/app', path: '/manifests/1', headers: {}, observe: (event) => events.push(event) });
    drain(response.body);
    expect(response.status).toBe(200);
    expect(events.map((event) => event.step)).toEqual(['credentials', 'response', 'exchange', 'token', 'response']);
    expect(events[0]).toMatchObject({ step: 'credentials', kind: 'basic', origin: { kind: 'config', file: undefined } });
    expect(events[1]).toMatchObject({ step: 'response', method: 'HEAD', status: 401, challenge: { scheme: 'bearer', params: { service: 'fake-registry' } } });
    expect(events[2]).toMatchObject({ step: 'exchange', grant: 'basic', method: 'GET', status: 200 });
    expect(events[3]).toEqual({ step: 'token', realm: `${fake.origin}/token`, service: 'fake-registry', scopes: ['repository:team/app:pull'], outcome: { result: 'issued', expiresAt: clock.now() + 300_000 } });
    expect(events[4]).toMatchObject({ step: 'response', status: 200 });
    const text = JSON.stringify(events);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(Buffer.from(`alice:${SECRET}`).toString('base64'));
    expect(fake.count('/token')).toBe(1);
  });

  it('a refused exchange ends the token step as denied, with its status', async () => {
    const { client } = await setup({ alice: 'another-password' });
    const events: PullEvent[] = [];
    await expect(client.request({ method: 'GET', repository: 'team/app', path: '/manifests/1', headers: {}, observe: (event) => events.push(event) })).rejects.toThrow(/refused/);
    expect(events.find((event) => event.step === 'token')).toMatchObject({ outcome: { result: 'denied', status: 401 } });
    expect(JSON.stringify(events)).not.toContain(SECRET);
  });

  it('without an observer the same requests work and nothing is reported', async () => {
    const { fake, client } = await setup({ alice: SECRET });
    fake.add(makeImage('team/app', '1'));
    const response = await client.request({ method: 'HEAD', repository: 'team/app', path: '/manifests/1', headers: {} });
    drain(response.body);
    expect(response.status).toBe(200);
    expect(fake.count('/token')).toBe(1);
  });
});
