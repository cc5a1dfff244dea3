import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { runCliFromSource, type CliRun } from '../helpers/cli-from-source.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-doctor-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cleanups: (() => Promise<void>)[] = [];
const SECRET = 'S3cret-doctor-pw';
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** Runs `pullgate doctor` from source (tsx) with a clean environment (no docker config, no PULLGATE_*). */
function doctor(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCliFromSource(['doctor', ...args], { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...env });
}


async function registry(): Promise<FakeRegistry> {
  const fake = await new FakeRegistry({ kind: 'bearer', users: { alice: SECRET }, anonymous: false, expiresIn: 300, crossScope403: false }, new FakeClock()).start();
  cleanups.push(() => fake.stop());
  return fake;
}

function config(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('pullgate doctor exit codes (the CLI, as documented)', () => {
  it('0 when the image is pullable, 1 when it is not; the steps go to stdout', async () => {
    const fake = await registry();
    fake.add(makeImage('team/app', '1'));
    const file = config('ok.yaml', `registries:\n  reg.example: { url: "${fake.origin}", auth: { type: basic, username: alice, password: "\${REG_PASSWORD}" } }\n`);
    const pullable = await doctor(['reg.example/team/app:1', '--config', file], { REG_PASSWORD: SECRET });
    expect(pullable.stdout).toMatch(/^result {7}reg\.example\/team\/app:1 is pullable through pullgate$/m);
    expect(pullable.status).toBe(0);
    const missing = await doctor(['reg.example/team/app:2', '--config', file], { REG_PASSWORD: SECRET });
    expect(missing.stdout).toMatch(/^manifest +FAILED: HEAD .* → 404/m);
    expect(missing.status).toBe(1);
    const unset = await doctor(['reg.example/team/app:1', '--config', file]);
    expect(unset.stdout).toMatch(/^cause {8}registries\.reg\.example\.auth\.password comes from \$\{REG_PASSWORD\}, which is unset/m);
    expect(unset.status).toBe(1);
    expect(`${pullable.stdout}${missing.stdout}${unset.stdout}`).not.toContain(SECRET);
  });

  it('1 when the registry cannot be routed (not configured): the route step fails', async () => {
    const file = config('hub.yaml', 'registries:\n  docker.io: {}\n');
    const result = await doctor(['ghcr.io/org/app:1', '--config', file]);
    expect(result.stdout).toMatch(/^route {8}FAILED: registry ghcr\.io is not configured/m);
    expect(result.status).toBe(1);
  });

  it('2 on a config error, with the message on stderr and nothing on stdout', async () => {
    const file = config('bad.yaml', 'registries:\n  ghcr.io: { auth: { type: basic } }\n');
    const result = await doctor(['ghcr.io/org/app:1', '--config', file]);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/registries\.ghcr\.io\.auth/);
    const absent = await doctor(['ghcr.io/org/app:1', '--config', path.join(dir, 'no-such.yaml')]);
    expect(absent.status).toBe(2);
    expect(absent.stdout).toBe('');
  });
});
