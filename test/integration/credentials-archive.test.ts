import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import { harness, type Harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const b64 = (text: string): string => Buffer.from(text).toString('base64');

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-arch-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function setup(users: Record<string, string>): Promise<{ clock: FakeClock; registry: FakeRegistry }> {
  const clock = new FakeClock();
  const registry = await new FakeRegistry({ kind: 'bearer', users, anonymous: false, expiresIn: 300, crossScope403: false }, clock).start();
  cleanups.push(() => registry.stop());
  registry.add(makeImage('team/app', '1'));
  return { clock, registry };
}

function start(yaml: string, clock: FakeClock): Harness {
  const pg = harness(yaml, { clock, env: {} });
  cleanups.push(() => pg.close());
  return pg;
}

describe('docker-config from a Mesos docker.tar.gz, and configurable rkt auth.d paths', () => {
  it('type: docker-config with path: docker.tar.gz (tar czf docker.tar.gz .docker) pulls with the login inside, nothing unpacked', async () => {
    const { clock, registry } = await setup({ mesos: 'mesos-pw' });
    const home = tempDir();
    mkdirSync(path.join(home, '.docker'));
    writeFileSync(path.join(home, '.docker', 'config.json'), JSON.stringify({ auths: { 'reg.example': { auth: b64('mesos:mesos-pw') } } }));
    const etc = tempDir();
    const archive = path.join(etc, 'docker.tar.gz');
    execFileSync('tar', ['-czf', archive, '-C', home, '.docker']);
    const pg = start(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${registry.origin}, auth: { type: docker-config, path: ${JSON.stringify(archive)} } }\n`, clock);
    expect((await pg.app.inject({ url: '/v2/reg.example/team/app/manifests/1' })).statusCode).toBe(200);
    expect(registry.tokenRequests().map((t) => t.authorization)).toEqual([`Basic ${b64('mesos:mesos-pw')}`]);
    expect(execFileSync('ls', ['-A', etc]).toString().trim()).toBe('docker.tar.gz');
  });

  it('rktPaths replaces the two fixed auth.d directories (auto), and adds them to docker-config', async () => {
    const { clock, registry } = await setup({ rkt: 'rkt-pw' });
    const dir = tempDir();
    writeFileSync(path.join(dir, 'reg.json'), JSON.stringify({ rktKind: 'dockerAuth', rktVersion: 'v1', registries: ['reg.example'], credentials: { user: 'rkt', password: 'rkt-pw' } }));
    const empty = tempDir();
    for (const auth of [`{ type: auto, rktPaths: [${JSON.stringify(dir)}] }`, `{ type: docker-config, path: ${JSON.stringify(path.join(empty, 'config.json'))}, rktPaths: [${JSON.stringify(dir)}] }`]) {
      const pg = start(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${registry.origin}, auth: ${auth} }\n`, clock);
      expect((await pg.app.inject({ url: '/v2/reg.example/team/app/manifests/1' })).statusCode).toBe(200);
    }
    expect(registry.tokenRequests().map((t) => t.authorization)).toEqual([`Basic ${b64('rkt:rkt-pw')}`, `Basic ${b64('rkt:rkt-pw')}`]);
  });
});
