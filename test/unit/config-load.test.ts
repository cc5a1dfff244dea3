import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Config, RegistryConfig } from '../../src/config/config.js';
import { DEFAULT_CONFIG_PATH, loadConfigText, parseListen } from '../../src/config/load.js';
import { renderConfig } from '../../src/config/mask.js';
import { configWarnings } from '../../src/config/warnings.js';
import { ConfigError } from '../../src/core/errors.js';
import { thrownAs } from './support.js';

const BASE = path.resolve('/srv/pullgate');
const SOURCE = 'test.yaml';

function load(text: string, env: NodeJS.ProcessEnv = {}): Config {
  return loadConfigText(text, env, SOURCE, BASE);
}

function loadError(text: string, env: NodeJS.ProcessEnv = {}): ConfigError {
  return thrownAs(() => load(text, env), ConfigError);
}

function entry(config: Config, key: string): RegistryConfig {
  const registry = config.registries.get(key);
  if (registry === undefined) throw new Error(`registry ${key} missing from config`);
  return registry;
}

const MINIMAL = 'registries:\n  docker.io: {}\n';

describe('loadConfigText: defaults', () => {
  it('applies every default to a minimal config', () => {
    const config = load(MINIMAL);
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 5000 });
    expect(config.storage).toEqual({ path: path.join(BASE, 'data'), maxSizeBytes: 20 * 1024 ** 3 });
    expect(config.cache).toEqual({ tagTtlMs: 300_000, staleIfErrorMs: 86_400_000 });
    expect(config.upstream).toEqual({ timeoutMs: 30_000, deadlineMs: 30_000, maxRedirects: 5 });
    expect(config.defaultRegistry).toBe('docker.io');
    expect(config.clients).toEqual({
      anonymous: undefined,
      htpasswd: undefined,
      groups: new Map(),
      access: undefined,
      loginThrottle: { failures: 5, lockoutMs: 1_000, maxLockoutMs: 900_000 },
      connections: { max: 1024, perAddress: 128, headersTimeoutMs: 20_000, keepAliveMs: 75_000, idleMs: 60_000 },
    });
    expect(config.log).toEqual({ level: 'info', access: 'all' });
    expect(config.aliases.size).toBe(0);
    expect(config.source).toBe(SOURCE);
    expect(config.unsetVariables).toEqual([]);
  });

  it('resolves storage.path against baseDir', () => {
    expect(load(`${MINIMAL}storage:\n  path: ../cache\n`).storage.path).toBe(path.resolve(BASE, '../cache'));
    expect(load(`${MINIMAL}storage:\n  path: /var/lib/pullgate\n`).storage.path).toBe('/var/lib/pullgate');
  });

  it('defaults docker.io to the registry-1.docker.io API with auto auth', () => {
    const hub = entry(load(MINIMAL), 'docker.io');
    expect(hub).toEqual({
      key: 'docker.io',
      url: 'https://registry-1.docker.io',
      auth: { type: 'auto' },
      realms: [],
      redirects: [],
      ca: undefined,
      insecure: false,
    });
  });

  it('defaults any other key to https://<key>, also for a null entry', () => {
    const config = load('registries:\n  docker.io: {}\n  ghcr.io:\n  localhost:5001: {}\n');
    expect(entry(config, 'ghcr.io').url).toBe('https://ghcr.io');
    expect(entry(config, 'localhost:5001').url).toBe('https://localhost:5001');
  });

  it('takes a url override with http and drops the trailing slash', () => {
    const config = load(`${MINIMAL}  localhost:5001:\n    url: http://127.0.0.1:5001/\n`);
    expect(entry(config, 'localhost:5001').url).toBe('http://127.0.0.1:5001');
  });

  it('resolves ca, passwordFile and htpasswd against baseDir', () => {
    const config = load(
      [
        'registries:',
        '  docker.io: {}',
        '  harbor.local:',
        '    ca: certs/harbor.pem',
        '    auth: {type: basic, username: robot, passwordFile: secrets/harbor}',
        'clients:',
        '  anonymous: false',
        '  htpasswd: ./htpasswd',
        '',
      ].join('\n'),
    );
    const harbor = entry(config, 'harbor.local');
    expect(harbor.ca).toBe(path.join(BASE, 'certs/harbor.pem'));
    expect(harbor.auth.passwordFile).toBe(path.join(BASE, 'secrets/harbor'));
    expect(config.clients.htpasswd).toBe(path.join(BASE, 'htpasswd'));
  });

  it('parses listen addresses, including IPv6', () => {
    expect(load(`${MINIMAL}listen: 0.0.0.0:8080\n`).listen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(load(`${MINIMAL}listen: "[::1]:5000"\n`).listen).toEqual({ host: '::1', port: 5000 });
    expect(parseListen(':5000')).toEqual({ host: '127.0.0.1', port: 5000 });
  });

  it('defaults to docker.io only when docker.io is configured; otherwise names need a registry prefix', () => {
    expect(load('registries:\n  docker.io: {}\n  ghcr.io: {}\n').defaultRegistry).toBe('docker.io');
    expect(load('registries:\n  ghcr.io: {}\n').defaultRegistry).toBeUndefined();
    expect(load('registries:\n  ghcr.io: {}\ndefaultRegistry: ghcr.io\n').defaultRegistry).toBe('ghcr.io');
  });

  it('warns about an alias that can shadow a Docker Hub namespace, not about one with a dot', () => {
    const config = load('registries:\n  docker.io: {}\n  cgr.dev: {}\naliases:\n  cg: cgr.dev\n  cg.mirror: cgr.dev\n');
    const warnings = configWarnings(config);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('aliases.cg:');
    expect(warnings[0]).toContain('registry-mirrors');
    expect(configWarnings(load(readFileSync(DEFAULT_CONFIG_PATH, 'utf8')))).toEqual([]);
    const noHub = load('registries:\n  ghcr.io: {}\n  cgr.dev: {}\naliases:\n  cg: cgr.dev\n');
    expect(configWarnings(noHub)).toEqual([]);
  });

  it('keeps aliases', () => {
    const config = load('registries:\n  docker.io: {}\n  cgr.dev: {}\naliases:\n  cg: cgr.dev\n');
    expect([...config.aliases]).toEqual([['cg', 'cgr.dev']]);
  });

  it('loads the embedded default config', () => {
    const config = load(readFileSync(DEFAULT_CONFIG_PATH, 'utf8'));
    expect(config.defaultRegistry).toBe('docker.io');
    expect(config.registries.has('docker.io')).toBe(true);
    expect(config.registries.has('cgr.dev')).toBe(true);
    expect(config.aliases.size).toBe(0);
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 5000 });
  });
});

describe('loadConfigText: environment', () => {
  it('interpolates a password from the environment', () => {
    const config = load(
      'registries:\n  docker.io:\n    auth: {type: basic, username: me, password: "${HUB_PASSWORD}"}\n',
      { HUB_PASSWORD: 'pa ss: "word"' },
    );
    expect(entry(config, 'docker.io').auth).toEqual({ type: 'basic', username: 'me', password: 'pa ss: "word"' });
    expect(config.unsetVariables).toEqual([]);
  });

  it('does not let an environment value inject YAML', () => {
    const config = load('registries:\n  docker.io:\n    auth: {type: basic, username: me, password: "${P}"}\n', {
      P: 'x\nlisten: 0.0.0.0:1',
    });
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 5000 });
    expect(entry(config, 'docker.io').auth.password).toBe('x\nlisten: 0.0.0.0:1');
  });

  it('reports unset variables', () => {
    const config = load(
      'registries:\n  docker.io:\n    auth: {type: basic, username: "${HUB_USER}", password: "${HUB_PASSWORD}"}\n',
    );
    expect(config.unsetVariables).toEqual(['HUB_PASSWORD', 'HUB_USER']);
  });

  it('uses ${VAR:-default} for listen', () => {
    expect(load(`${MINIMAL}listen: \${L:-0.0.0.0:9000}\n`).listen).toEqual({ host: '0.0.0.0', port: 9000 });
  });
});

describe('loadConfigText: errors name the path', () => {
  it('log.access takes all, sampled or misses, and names log.access otherwise', () => {
    for (const access of ['all', 'sampled', 'misses']) expect(load(`${MINIMAL}log: { access: ${access} }\n`).log.access).toBe(access);
    const err = loadError(`${MINIMAL}log: { access: loud }\n`);
    expect(err.message).toContain('config: log.access: must be one of');
  });

  it('an unknown auth type names registries.ghcr.io.auth.type', () => {
    const err = loadError('registries:\n  docker.io: {}\n  ghcr.io:\n    auth: {type: oauth}\n');
    expect(err.message).toContain('config: registries.ghcr.io.auth.type: must be one of');
    expect(err.message).toContain('basic');
    expect(err.message).toContain(SOURCE);
  });

  it('an unknown top-level key is named', () => {
    const err = loadError(`${MINIMAL}colour: blue\n`);
    expect(err.message).toContain('unknown key "colour"');
  });

  it('an unknown key inside a registry is named with its path', () => {
    const err = loadError(`${MINIMAL}  ghcr.io:\n    insecureSkipVerify: true\n`);
    expect(err.message).toContain('registries.ghcr.io: unknown key "insecureSkipVerify"');
  });

  it('basic auth without username', () => {
    const err = loadError(`${MINIMAL}  ghcr.io:\n    auth: {type: basic, password: x}\n`);
    expect(err.message).toContain('registries.ghcr.io.auth.username');
  });

  it('basic auth with both password and passwordFile', () => {
    const err = loadError(`${MINIMAL}  ghcr.io:\n    auth: {type: basic, username: u, password: x, passwordFile: f}\n`);
    expect(err.message).toContain('registries.ghcr.io.auth: give exactly one of password, passwordFile');
  });

  it('token auth without a token', () => {
    const err = loadError(`${MINIMAL}  ghcr.io:\n    auth: {type: token}\n`);
    expect(err.message).toContain('registries.ghcr.io.auth: give exactly one of token, tokenFile, identityToken');
  });

  it('a field the auth type does not use', () => {
    const err = loadError(`${MINIMAL}  ghcr.io:\n    auth: {type: anonymous, password: x}\n`);
    expect(err.message).toContain('registries.ghcr.io.auth.password: not used by auth type "anonymous"');
  });

  it('an alias to an unknown registry', () => {
    const err = loadError(`${MINIMAL}aliases:\n  cg: cgr.dev\n`);
    expect(err.message).toContain('aliases.cg: "cgr.dev" is not a key of registries');
  });

  it('an alias that clashes with a registry key', () => {
    const err = loadError('registries:\n  docker.io: {}\n  hub: {}\naliases:\n  hub: docker.io\n');
    expect(err.message).toContain('aliases.hub: clashes with a registry key');
  });

  it('a defaultRegistry that is not configured', () => {
    const err = loadError(`${MINIMAL}defaultRegistry: ghcr.io\n`);
    expect(err.message).toContain('defaultRegistry: "ghcr.io" is not a key of registries');
  });

  it('an empty config, which mirrors nothing', () => {
    expect(loadError('').message).toContain('registries: none configured');
  });

  it('an upper-case registry key', () => {
    const err = loadError('registries:\n  docker.io: {}\n  GHCR.IO: {}\n');
    expect(err.message).toContain('key "GHCR.IO" is not allowed');
  });

  it('a malformed duration and size name their fields', () => {
    const err = loadError(`${MINIMAL}cache:\n  tagTTL: 5 minutes\nstorage:\n  maxSize: lots\n`);
    expect(err.message).toContain('cache.tagTTL');
    expect(err.message).toContain('storage.maxSize');
  });

  it('anonymous: false without htpasswd', () => {
    expect(loadError(`${MINIMAL}clients:\n  anonymous: false\n`).message).toContain('clients.htpasswd is required');
  });

  it('a document that is not a mapping', () => {
    expect(loadError('- a\n- b\n').message).toContain('(top level)');
  });

  it('invalid YAML', () => {
    const err = loadError('registries:\n  docker.io: {\n');
    expect(err.message).toContain('not valid YAML');
    expect(err.message).toContain(SOURCE);
  });

  it('lists every problem, not just the first', () => {
    const err = loadError(`${MINIMAL}  ghcr.io:\n    auth: {type: oauth}\ncolour: blue\nshape: round\n`);
    expect(err.message).toContain('"colour"');
    expect(err.message).toContain('"shape"');
    expect(err.message).toContain('registries.ghcr.io.auth.type');
  });
});

describe('loadConfigText: tls and cluster', () => {
  it('resolves tls paths against the base directory', () => {
    const config = load('registries:\n  docker.io: {}\ntls: { cert: certs/tls.crt, key: certs/tls.key, clientCA: ca.pem }\n');
    expect(config.tls).toEqual({ cert: path.join(BASE, 'certs/tls.crt'), key: path.join(BASE, 'certs/tls.key'), clientCA: path.join(BASE, 'ca.pem') });
    expect(load('registries:\n  docker.io: {}\n').tls).toBeUndefined();
  });

  it('requires both tls.cert and tls.key', () => {
    expect(loadError('registries:\n  docker.io: {}\ntls: { cert: a.crt }\n').message).toContain('tls: must have required property');
  });

  it('resolves cluster peers, static and dns:, and masks the secret in config check', () => {
    const secret = 'a'.repeat(32);
    const config = load(`registries:\n  docker.io: {}\ncluster:\n  listen: 0.0.0.0:5001\n  peers: [10.0.0.1:5001, "dns:pullgate-peers.ns.svc.cluster.local:5001"]\n  secret: \${S}\n`, { S: secret });
    expect(config.cluster?.listen).toEqual({ host: '0.0.0.0', port: 5001 });
    expect(config.cluster?.peers).toEqual([
      { kind: 'static', address: '10.0.0.1:5001' },
      { kind: 'dns', name: 'pullgate-peers.ns.svc.cluster.local', port: 5001 },
    ]);
    const printed = renderConfig(config);
    expect(printed).not.toContain(secret);
    expect(printed).toContain('secret: "***"');
  });

  it('refuses an unset or short cluster secret, naming the path and never the value', () => {
    const err = loadError('registries:\n  docker.io: {}\ncluster: { listen: 0.0.0.0:5001, peers: [a:1], secret: "${UNSET_SECRET}" }\n');
    expect(err.message).toContain('cluster.secret: must be at least 16 characters');
    expect(err.message).toContain('empty or unset');
    const short = loadError('registries:\n  docker.io: {}\ncluster: { listen: 0.0.0.0:5001, peers: [a:1], secret: hunter2 }\n');
    expect(short.message).toContain('too short');
    expect(short.message).not.toContain('hunter2');
  });

  it('refuses a malformed peer', () => {
    expect(loadError('registries:\n  docker.io: {}\ncluster: { listen: 0.0.0.0:5001, peers: ["http://a:1"], secret: aaaaaaaaaaaaaaaaaaaa }\n').message).toContain('cluster.peers.0: has the wrong format');
  });
});
