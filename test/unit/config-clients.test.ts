import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exposureWarnings, isLoopback } from '../../src/access/exposure.js';
import { loadConfigText } from '../../src/config/load.js';
import { renderConfig } from '../../src/config/mask.js';
import { ConfigError } from '../../src/core/errors.js';
import { thrownAs } from './support.js';

const load = (text: string): ReturnType<typeof loadConfigText> => loadConfigText(text, {}, 'test.yaml', path.resolve('/srv/pullgate'));
const WITH_CREDENTIALS = 'registries:\n  docker.io: {}\n  ghcr.io: { auth: { type: basic, username: bob, password: hunter2 } }\n';

describe('clients.loginThrottle and clients.connections', () => {
  it('reads durations and limits, and config check prints them', () => {
    const config = load(
      'registries:\n  docker.io: {}\nclients:\n  loginThrottle: { failures: 3, lockout: 2s, maxLockout: 1h }\n  connections: { max: 64, perAddress: 32, headersTimeout: 5s, keepAlive: 10s, idle: "0" }\n',
    );
    expect(config.clients.loginThrottle).toEqual({ failures: 3, lockoutMs: 2_000, maxLockoutMs: 3_600_000 });
    expect(config.clients.connections).toEqual({ max: 64, perAddress: 32, headersTimeoutMs: 5_000, keepAliveMs: 10_000, idleMs: 0 });
    const printed = renderConfig(config);
    expect(printed).toContain('maxLockout: 1h');
    expect(printed).toContain('headersTimeout: 5s');
  });

  it('refuses values that would disable a limit or make no sense, naming the path', () => {
    const err = thrownAs(
      () => load('registries:\n  docker.io: {}\nclients:\n  loginThrottle: { lockout: 1m, maxLockout: 1s }\n  connections: { headersTimeout: "0" }\n'),
      ConfigError,
    );
    expect(err.message).toContain('clients.loginThrottle.maxLockout: must not be less than lockout');
    expect(err.message).toContain('clients.connections.headersTimeout: must be more than 0');
    const schema = thrownAs(() => load('registries:\n  docker.io: {}\nclients:\n  connections: { max: 0, idle: soon }\n'), ConfigError);
    expect(schema.message).toContain('clients.connections.max: must be >= 1');
    expect(schema.message).toContain('clients.connections.idle: has the wrong format (expected a duration');
  });
});

describe('exposure warning', () => {
  it('knows loopback hosts', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) expect(isLoopback(host)).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'mirror.corp.example']) expect(isLoopback(host)).toBe(false);
  });

  it('warns when a non-loopback listener lets anonymous clients use configured credentials, naming no secret', () => {
    const [warning, ...rest] = exposureWarnings(load(`listen: 0.0.0.0:5000\n${WITH_CREDENTIALS}clients: { anonymous: true }\n`));
    expect(rest).toEqual([]);
    expect(warning).toContain('0.0.0.0:5000');
    expect(warning).toContain('ghcr.io (basic)');
    expect(warning).toContain('clients.anonymous: false');
    expect(warning).not.toContain('hunter2');
    expect(warning).not.toContain('docker.io');
  });

  it('stays quiet on loopback, with client logins, or without configured credentials', () => {
    expect(exposureWarnings(load(WITH_CREDENTIALS))).toEqual([]);
    expect(exposureWarnings(load(`listen: 0.0.0.0:5000\n${WITH_CREDENTIALS}clients: { anonymous: false, htpasswd: ./htpasswd }\n`))).toEqual([]);
    expect(exposureWarnings(load('listen: 0.0.0.0:5000\nregistries:\n  docker.io: {}\n  quay.io: { auth: { type: anonymous } }\n'))).toEqual([]);
  });

  it('pullgate config check prints the warning (the CLI from source, as pullgate runs it)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-exposure-'));
    try {
      const file = path.join(dir, 'pullgate.yaml');
      writeFileSync(file, `listen: 0.0.0.0:5000\n${WITH_CREDENTIALS}clients: { anonymous: true }\n`);
      const result = spawnSync(process.execPath, ['--import', 'tsx', path.resolve('src/cli.ts'), 'config', 'check', file], {
        env: { PATH: process.env.PATH, HOME: dir, PULLGATE_CONFIG: '' },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(/^# WARNING: EXPOSED: pullgate listens on 0\.0\.0\.0:5000/m);
      expect(result.stdout).not.toContain('hunter2');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
