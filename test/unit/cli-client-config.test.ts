import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CLIENT_KINDS, clientConfig, clientFiles, printable } from '../../src/cli/client-config.js';
import { mergeDaemonJson } from '../../src/cli/daemon-json.js';
import { mirrorAddress } from '../../src/cli/mirror-address.js';
import { targetPath, writeClientFiles } from '../../src/cli/write-client-files.js';
import { loadConfigText } from '../../src/config/load.js';
import { configWarnings } from '../../src/config/warnings.js';
import { thrown } from './support.js';

const config = loadConfigText(
  'registries:\n  docker.io: {}\n  ghcr.io: {}\n  registry.internal:5000: { url: "http://registry.internal:5000" }\n',
  {},
  'test',
  '/tmp',
);

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-hosts-'));
  dirs.push(dir);
  return dir;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

describe('pullgate hosts', () => {
  it('offers exactly the kinds of the generator table', () => {
    expect(CLIENT_KINDS).toEqual(['containerd', 'docker', 'podman', 'butane']);
  });

  it('writes one containerd hosts.toml per registry, pointing at the mirror with the upstream as server', () => {
    const files = clientFiles(config, 'containerd', '127.0.0.1:5000');
    expect(files.map((f) => f.path)).toEqual(['docker.io/hosts.toml', 'ghcr.io/hosts.toml', 'registry.internal:5000/hosts.toml']);
    const hub = files[0]?.content ?? '';
    expect(hub).toContain('server = "https://registry-1.docker.io"');
    expect(hub).toContain('[host."http://127.0.0.1:5000"]');
    expect(hub).toContain('capabilities = ["pull", "resolve"]');
    expect(files[2]?.content).toContain('server = "http://registry.internal:5000"');
  });

  it('prints several containerd files each under a TOML comment heading', () => {
    const text = printable(clientFiles(config, 'containerd', '127.0.0.1:5000'));
    expect(text.match(/^# --- .*\/hosts\.toml$/gm)).toEqual(['# --- docker.io/hosts.toml', '# --- ghcr.io/hosts.toml', '# --- registry.internal:5000/hosts.toml']);
  });

  it('prints docker daemon.json as bare JSON that parses, with no comment line', () => {
    const text = printable(clientFiles(config, 'docker', 'localhost:5000'));
    expect(text.startsWith('{')).toBe(true);
    expect(JSON.parse(text)).toEqual({ 'registry-mirrors': ['http://localhost:5000'] });
  });

  it('adds the mirror to insecure-registries when it is not on loopback, so pulls by prefix work over HTTP', () => {
    const text = printable(clientFiles(config, 'docker', 'pullgate.lan:5000'));
    expect(JSON.parse(text)).toEqual({ 'registry-mirrors': ['http://pullgate.lan:5000'], 'insecure-registries': ['pullgate.lan:5000'] });
  });

  it('gives podman a path-prefixed mirror per registry (a host:port key only through an alias: see below)', () => {
    const [conf] = clientFiles(config, 'podman', 'localhost:5000');
    expect(conf?.content.match(/\[\[registry\.mirror\]\]/g)).toHaveLength(2);
    expect(conf?.content).toContain('location = "localhost:5000/ghcr.io"');
  });

  it('makes a Butane config whose storage.files write every hosts.toml and daemon.json inline, mode 0644', () => {
    const [bu] = clientFiles(config, 'butane', 'pullgate.lan:5000');
    const doc: unknown = parse(bu?.content ?? '');
    expect(doc).toMatchObject({ variant: 'flatcar', version: '1.0.0' });
    const files = (doc as { storage: { files: { path: string; mode: number; contents: { inline: string } }[] } }).storage.files;
    expect(files.map((file) => file.path)).toEqual([
      '/etc/containerd/certs.d/docker.io/hosts.toml',
      '/etc/containerd/certs.d/ghcr.io/hosts.toml',
      '/etc/containerd/certs.d/registry.internal:5000/hosts.toml',
      '/etc/docker/daemon.json',
    ]);
    for (const file of files) expect(file.mode).toBe(0o644);
    expect(files[1]?.contents.inline).toBe(clientFiles(config, 'containerd', 'pullgate.lan:5000')[1]?.content);
    expect(JSON.parse(files[3]?.contents.inline ?? '')).toMatchObject({ 'registry-mirrors': ['http://pullgate.lan:5000'] });
  });
});

describe('the mirror address', () => {
  it('is the listen address when that names a host', () => {
    expect(mirrorAddress({ host: '127.0.0.1', port: 5000 }, undefined)).toBe('127.0.0.1:5000');
    expect(mirrorAddress({ host: '::1', port: 5000 }, undefined)).toBe('[::1]:5000');
  });

  it('requires --mirror when listen is 0.0.0.0 or ::, and never hands out an unspecified address', () => {
    for (const host of ['0.0.0.0', '::', '0:0::0']) {
      expect(message(thrown(() => mirrorAddress({ host, port: 5000 }, undefined)))).toMatch(/clients cannot dial.*--mirror HOST:PORT/);
    }
    expect(mirrorAddress({ host: '0.0.0.0', port: 5000 }, 'pullgate.lan:5001')).toBe('pullgate.lan:5001');
    expect(mirrorAddress({ host: '::', port: 5000 }, '[fd00::1]:5000')).toBe('[fd00::1]:5000');
    expect(message(thrown(() => mirrorAddress({ host: '0.0.0.0', port: 5000 }, '0.0.0.0:5000')))).toMatch(/not one clients can reach/);
    expect(message(thrown(() => mirrorAddress({ host: '127.0.0.1', port: 5000 }, 'pullgate.lan')))).toMatch(/not HOST:PORT/);
  });
});

describe('pullgate hosts --out', () => {
  it('merges registry-mirrors into an existing daemon.json, keeping every other key and mirror', () => {
    const dir = tempDir();
    const existing = { 'log-level': 'warn', 'registry-mirrors': ['https://mirror.example'], features: { buildkit: true } };
    writeFileSync(path.join(dir, 'daemon.json'), JSON.stringify(existing));
    const [line] = writeClientFiles(dir, clientFiles(config, 'docker', '127.0.0.1:5000'));
    expect(line).toMatch(/^updated .*daemon\.json: registry-mirrors: added http:\/\/127\.0\.0\.1:5000 after 1 existing/);
    expect(JSON.parse(readFileSync(path.join(dir, 'daemon.json'), 'utf8'))).toEqual({ ...existing, 'registry-mirrors': ['https://mirror.example', 'http://127.0.0.1:5000'] });
  });

  it('adds the mirror once: a second run says it is already present and leaves the file as it is', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'daemon.json'), '{"registry-mirrors": ["http://127.0.0.1:5000/"]}');
    const before = statSync(path.join(dir, 'daemon.json')).ino;
    const [line] = writeClientFiles(dir, clientFiles(config, 'docker', '127.0.0.1:5000'));
    expect(line).toMatch(/^unchanged .*already present/);
    expect(readFileSync(path.join(dir, 'daemon.json'), 'utf8')).toBe('{"registry-mirrors": ["http://127.0.0.1:5000/"]}');
    expect(statSync(path.join(dir, 'daemon.json')).ino).toBe(before);
  });

  it('creates daemon.json when there is none and says so', () => {
    const dir = tempDir();
    const [line] = writeClientFiles(path.join(dir, 'etc-docker'), clientFiles(config, 'docker', '127.0.0.1:5000'));
    expect(line).toMatch(/^created .*daemon\.json: registry-mirrors: added/);
    expect(JSON.parse(readFileSync(path.join(dir, 'etc-docker', 'daemon.json'), 'utf8'))).toEqual({ 'registry-mirrors': ['http://127.0.0.1:5000'] });
  });

  it('refuses a daemon.json that is not valid JSON, or whose registry-mirrors is not a list, and leaves it untouched', () => {
    for (const text of ['{ "log-level": "warn", }', '[1]', '{"registry-mirrors": "http://x"}']) {
      const dir = tempDir();
      writeFileSync(path.join(dir, 'daemon.json'), text);
      expect(message(thrown(() => writeClientFiles(dir, clientFiles(config, 'docker', '127.0.0.1:5000'))))).toMatch(/daemon\.json: .*left untouched/);
      expect(readFileSync(path.join(dir, 'daemon.json'), 'utf8')).toBe(text);
      expect(readdirSync(dir)).toEqual(['daemon.json']);
    }
  });

  it('writes atomically: a new inode renamed into place, the old mode kept, no temp file left behind', () => {
    const dir = tempDir();
    const file = path.join(dir, 'daemon.json');
    writeFileSync(file, '{"debug": true}');
    chmodSync(file, 0o600);
    const before = statSync(file).ino;
    writeClientFiles(dir, clientFiles(config, 'docker', '127.0.0.1:5000'));
    expect(statSync(file).ino).not.toBe(before);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['daemon.json']);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ debug: true, 'registry-mirrors': ['http://127.0.0.1:5000'] });
  });

  it('writes the podman drop-in into --out when --out is registries.conf.d, and under registries.conf.d/ when it is /etc/containers', () => {
    const [conf] = clientFiles(config, 'podman', '127.0.0.1:5000');
    if (conf === undefined) throw new Error('no podman file');
    expect(targetPath('/etc/containers/registries.conf.d', conf)).toBe('/etc/containers/registries.conf.d/pullgate.conf');
    expect(targetPath('/etc/containers/registries.conf.d/', conf)).toBe('/etc/containers/registries.conf.d/pullgate.conf');
    expect(targetPath('/etc/containers', conf)).toBe('/etc/containers/registries.conf.d/pullgate.conf');

    const root = tempDir();
    mkdirSync(path.join(root, 'registries.conf.d'));
    const [direct] = writeClientFiles(path.join(root, 'registries.conf.d'), [conf]);
    expect(direct).toBe(`wrote ${path.join(root, 'registries.conf.d', 'pullgate.conf')}`);
    const [nested] = writeClientFiles(root, [conf]);
    expect(nested).toBe(`wrote ${path.join(root, 'registries.conf.d', 'pullgate.conf')}`);
    expect(readdirSync(path.join(root, 'registries.conf.d'))).toEqual(['pullgate.conf']);
    expect(readFileSync(path.join(root, 'registries.conf.d', 'pullgate.conf'), 'utf8')).toBe(conf.content);
  });

  it('merges a repeated mirror case- and slash-insensitively', () => {
    expect(mergeDaemonJson('{"registry-mirrors":["HTTP://127.0.0.1:5000/"]}', '127.0.0.1:5000').changed).toBe(false);
  });
});

describe('pullgate hosts: configs that would silently do nothing', () => {
  it('podman: a host:port key without an alias is left out with a warning and a comment, never an invalid mirror location', () => {
    const { files, warnings } = clientConfig(config, 'podman', '127.0.0.1:6300');
    const content = files[0]?.content ?? '';
    expect(content).not.toContain('127.0.0.1:6300/registry.internal:5000');
    expect(content).not.toMatch(/prefix = "registry\.internal:5000"/);
    expect(content).toMatch(/^# registry\.internal:5000: left out.*aliases: \{ registry\.internal-5000: "registry\.internal:5000" \}/m);
    expect(content.match(/\[\[registry\.mirror\]\]/g)).toHaveLength(2);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/registry\.internal:5000 left out.*not a valid reference.*alias with a dot/);
    // Every mirror location left is a valid reference: host[:port]/path with no colon in the path.
    for (const [, location] of content.matchAll(/^location = "([^"]+)"$/gm)) expect(location?.split('/').slice(1).join('/')).not.toContain(':');
  });

  it('podman: a host:port key with an alias mirrors through the alias, one with a dot preferred', () => {
    const aliased = loadConfigText(
      'registries:\n  docker.io: {}\n  registry.local:6302: { url: "http://registry.local:6302" }\naliases:\n  local: registry.local:6302\n  local.mirror: registry.local:6302\n',
      {},
      'test',
      '/tmp',
    );
    const { files, warnings } = clientConfig(aliased, 'podman', '127.0.0.1:6300');
    expect(warnings).toEqual([]);
    expect(files[0]?.content).toContain('prefix = "registry.local:6302"\nlocation = "registry.local:6302"\n\n[[registry.mirror]]\nlocation = "127.0.0.1:6300/local.mirror"');
  });

  it('containerd: with clients.anonymous false (and no anonymous rule) warns that containerd cannot log in, and says how to fix it', () => {
    const locked = loadConfigText('registries:\n  docker.io: {}\nclients: { anonymous: false, htpasswd: ./htpasswd }\n', {}, 'test', '/tmp');
    for (const kind of ['containerd', 'butane'] as const) {
      const [warning, ...rest] = clientConfig(locked, kind, '127.0.0.1:5000').warnings;
      expect(rest).toEqual([]);
      expect(warning).toMatch(/clients\.anonymous is false.*containerd sends no login.*401.*registry itself/);
      expect(warning).toContain('authorization = "Basic');
    }
    expect(configWarnings(locked).some((warning) => warning.includes('containerd sends no login'))).toBe(true);
    expect(clientConfig(config, 'containerd', '127.0.0.1:5000').warnings).toEqual([]);
  });

  it('docker: without a Docker Hub registry, registry-mirrors is left out with a warning (insecure-registries stays for pulls by prefix)', () => {
    const noHub = loadConfigText('registries:\n  ghcr.io: {}\n', {}, 'test', '/tmp');
    const loopback = clientConfig(noHub, 'docker', '127.0.0.1:5000');
    expect(loopback.files).toEqual([]);
    expect(loopback.warnings[0]).toMatch(/registry-mirrors left out.*no docker\.io.*404.*docker pull 127\.0\.0\.1:5000\/ghcr\.io\//);
    const lan = clientConfig(noHub, 'docker', 'pullgate.lan:5000');
    expect(JSON.parse(printable(lan.files))).toEqual({ 'insecure-registries': ['pullgate.lan:5000'] });
    expect(lan.warnings).toHaveLength(1);
    const [bu] = clientFiles(noHub, 'butane', '127.0.0.1:5000');
    expect(bu?.content).not.toContain('/etc/docker/daemon.json');
    expect(bu?.content).toContain('/etc/containerd/certs.d/ghcr.io/hosts.toml');
    expect(clientConfig(config, 'docker', '127.0.0.1:5000').warnings).toEqual([]);
  });
});
