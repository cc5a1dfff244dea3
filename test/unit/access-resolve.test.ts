import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { policyTable, resolveAccess } from '../../src/access/resolve.js';
import { AccessPolicy } from '../../src/access/policy.js';
import { loadConfigText } from '../../src/config/load.js';
import { ConfigError } from '../../src/core/errors.js';
import { thrownAs } from './support.js';

const load = (text: string): ReturnType<typeof loadConfigText> => loadConfigText(text, {}, 'test.yaml', path.resolve('/srv/pullgate'));
const CREDENTIALS = 'registries:\n  docker.io: {}\n  quay.io: { auth: { type: anonymous } }\n  ghcr.io: { auth: { type: basic, username: bob, password: hunter2 } }\n';

function anonymousMay(text: string, name: string, exposed?: boolean): boolean {
  const config = load(text);
  const resolved = resolveAccess(config, exposed);
  return new AccessPolicy(resolved.rules, resolved.groups).decide({ user: undefined }, name).allowed;
}

describe('resolveAccess: clients.anonymous, clients.access and the safe default', () => {
  it('on loopback, with nothing said, anonymous clients may pull everything (as before)', () => {
    expect(anonymousMay(CREDENTIALS, 'ghcr.io/org/app')).toBe(true);
    expect(resolveAccess(load(CREDENTIALS)).safeDefault).toBeUndefined();
  });

  it('exposed with credentials and nothing said: anonymous only for registries without credentials (auto and anonymous)', () => {
    const text = `listen: 0.0.0.0:5000\n${CREDENTIALS}`;
    expect(anonymousMay(text, 'ghcr.io/org/app')).toBe(false);
    expect(anonymousMay(text, 'docker.io/library/alpine')).toBe(true);
    expect(anonymousMay(text, 'quay.io/org/app')).toBe(true);
    expect(resolveAccess(load(text)).safeDefault).toEqual({ refused: ['ghcr.io'] });
    // 127.0.0.2 is loopback: not exposed unless injected.
    expect(anonymousMay(`listen: 127.0.0.2:5000\n${CREDENTIALS}`, 'ghcr.io/org/app')).toBe(true);
    expect(anonymousMay(`listen: 127.0.0.2:5000\n${CREDENTIALS}`, 'ghcr.io/org/app', true)).toBe(false);
  });

  it('anonymous: true allows everything at the end; anonymous: false or clients.access alone adds nothing for anonymous', () => {
    const exposed = `listen: 0.0.0.0:5000\n${CREDENTIALS}`;
    expect(anonymousMay(`${exposed}clients: { anonymous: true }\n`, 'ghcr.io/org/app')).toBe(true);
    expect(anonymousMay(`${CREDENTIALS}clients: { anonymous: false, htpasswd: ./h }\n`, 'docker.io/library/alpine')).toBe(false);
    const access = `${CREDENTIALS}clients:\n  access:\n    - { subjects: [anonymous], allow: ["docker.io/library/*"] }\n`;
    expect(anonymousMay(access, 'docker.io/library/alpine')).toBe(true);
    expect(anonymousMay(access, 'quay.io/org/app')).toBe(false);
    // anonymous: true goes after the written rules: an earlier deny still wins.
    const denyFirst = `${CREDENTIALS}clients:\n  anonymous: true\n  access:\n    - { subjects: [anonymous], deny: ["ghcr.io/**"] }\n`;
    expect(anonymousMay(denyFirst, 'ghcr.io/org/app')).toBe(false);
    expect(anonymousMay(denyFirst, 'quay.io/org/app')).toBe(true);
  });

  it('without clients.access, logged-in users may pull everything', () => {
    const resolved = resolveAccess(load(`listen: 0.0.0.0:5000\n${CREDENTIALS}clients: { htpasswd: ./h }\n`));
    expect(new AccessPolicy(resolved.rules, resolved.groups).decide({ user: 'alice' }, 'ghcr.io/org/app').allowed).toBe(true);
  });

  it('prints the effective policy as a table, in order, with the implicit deny and the fetch filters', () => {
    const config = load(
      `${CREDENTIALS.replace('quay.io: { auth: { type: anonymous } }', 'quay.io: { repositories: { allow: ["myorg/**"], deny: ["myorg/legacy/**"] } }')}clients:\n  groups: { ci: [ci-bot, alice] }\n  access:\n    - { subjects: [ci], allow: ["ghcr.io/myorg/**"] }\n    - { subjects: [alice], deny: ["ghcr.io/myorg/secret/**"] }\n`,
    );
    const table = policyTable(config, resolveAccess(config));
    expect(table.split('\n').filter((l) => /^#\s+[-1-9]\s/.test(l))).toHaveLength(3);
    expect(table).toMatch(/1\s+allow\s+ci\s+ghcr\.io\/myorg\/\*\*\s+clients\.access\[0\]/);
    expect(table).toMatch(/-\s+deny\s+everyone/);
    expect(table).toContain('group ci: ci-bot, alice');
    expect(table).toContain('the mirror fetches from quay.io: allow myorg/**; deny myorg/legacy/**');
  });
});

describe('config: clients.access, clients.groups, registries.<host>.repositories', () => {
  it('names the path of every problem', () => {
    const err = thrownAs(
      () =>
        load(
          'registries:\n  quay.io: { repositories: { deny: ["myorg//x"] } }\nclients:\n  anonymous: false\n  htpasswd: ./h\n  groups: { anonymous: [a] }\n  access:\n    - { subjects: [a], allow: ["x/**"], deny: ["y"] }\n    - { subjects: [a], deny: ["ok/**", "bad**"] }\n    - { subjects: [anonymous], allow: ["**"] }\n    - { subjects: [a] }\n',
        ),
      ConfigError,
    );
    expect(err.message).toContain('registries.quay.io.repositories.deny[0]: has an empty path segment');
    expect(err.message).toContain('clients.groups.anonymous: "anonymous" is a reserved subject');
    expect(err.message).toContain('clients.access[0]: needs exactly one of allow or deny');
    expect(err.message).toContain('clients.access[1].deny[1]: "**" must be a whole path segment');
    expect(err.message).toContain('clients.access[2].subjects: allows "anonymous", which contradicts clients.anonymous: false');
    expect(err.message).toContain('clients.access[3]: needs exactly one of allow or deny');
  });

  it('metrics.auth needs clients.htpasswd; metrics.listen is HOST:PORT', () => {
    expect(thrownAs(() => load('registries:\n  docker.io: {}\nmetrics: { auth: true }\n'), ConfigError).message).toContain('metrics.auth: requires clients.htpasswd');
    expect(load('registries:\n  docker.io: {}\nmetrics: { listen: 127.0.0.1:9090 }\n').metrics).toEqual({ auth: false, listen: { host: '127.0.0.1', port: 9090 } });
    expect(load('registries:\n  docker.io: {}\nclients: { anonymous: false, htpasswd: ./h }\n').metrics.auth).toBe(true);
  });
});
