import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { clientFiles } from '../../src/cli/client-config.js';
import { removeContainerdHosts, writeClientFiles } from '../../src/cli/write-client-files.js';
import { loadConfigText } from '../../src/config/load.js';

const config = loadConfigText('registries:\n  docker.io: {}\n  ghcr.io: {}\n', {}, 'test', '/tmp');
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function certsDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-certs-d-'));
  dirs.push(dir);
  return dir;
}

/** A cloud provider's hosts.toml: its own server, a header table for it and a mirror of its own. */
const PROVIDER = [
  '# written by the node image',
  'server = "https://registry-1.docker.io"',
  '',
  '[host."https://mirror.gcr.io"]',
  '  capabilities = ["pull", "resolve"]',
  '',
  '[host."https://mirror.gcr.io".header]',
  '  x-mirror = "1"',
  '',
].join('\n');

function hostsOf(text: string): string[] {
  return [...text.matchAll(/^\[host\."([^"]+)"\]$/gm)].map((match) => match[1] ?? '');
}

describe('hosts containerd --out into existing hosts.toml files', () => {
  it("keeps the other hosts (with their subtables) and server, puts pullgate's host first, and says what changed", () => {
    const out = certsDir();
    mkdirSync(path.join(out, 'docker.io'));
    writeFileSync(path.join(out, 'docker.io', 'hosts.toml'), PROVIDER);
    const lines = writeClientFiles(out, clientFiles(config, 'containerd', '10.96.0.50:5000'));
    expect(lines[0]).toBe(`updated ${path.join(out, 'docker.io', 'hosts.toml')}: pullgate's host http://10.96.0.50:5000 first; kept https://mirror.gcr.io`);
    expect(lines[1]).toMatch(/^created .*ghcr\.io\/hosts\.toml: pullgate's host http:\/\/10\.96\.0\.50:5000$/);
    const merged = readFileSync(path.join(out, 'docker.io', 'hosts.toml'), 'utf8');
    expect(hostsOf(merged)).toEqual(['http://10.96.0.50:5000', 'https://mirror.gcr.io']);
    expect(merged.match(/^server = /gm)).toHaveLength(1);
    expect(merged).toContain('server = "https://registry-1.docker.io"');
    expect(merged).toContain('[host."https://mirror.gcr.io".header]\n  x-mirror = "1"');
    expect(merged).toContain('# written by the node image');
  });

  it('is idempotent: a second run leaves every file as it is (same inode); a new mirror address replaces the old one', () => {
    const out = certsDir();
    mkdirSync(path.join(out, 'docker.io'));
    writeFileSync(path.join(out, 'docker.io', 'hosts.toml'), PROVIDER);
    writeClientFiles(out, clientFiles(config, 'containerd', '10.96.0.50:5000'));
    const file = path.join(out, 'docker.io', 'hosts.toml');
    const first = readFileSync(file, 'utf8');
    const inode = statSync(file).ino;
    const again = writeClientFiles(out, clientFiles(config, 'containerd', '10.96.0.50:5000'));
    expect(again.every((line) => line.startsWith('unchanged '))).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe(first);
    expect(statSync(file).ino).toBe(inode);

    const moved = writeClientFiles(out, clientFiles(config, 'containerd', '10.96.0.77:5000'));
    expect(moved[0]).toContain("replaced pullgate's earlier http://10.96.0.50:5000");
    expect(hostsOf(readFileSync(file, 'utf8'))).toEqual(['http://10.96.0.77:5000', 'https://mirror.gcr.io']);
  });

  it('recognises a file an older pullgate wrote (no mark) as its own and replaces its host', () => {
    const out = certsDir();
    mkdirSync(path.join(out, 'ghcr.io'));
    const old = '# ghcr.io through pullgate; falls back to the registry itself if pullgate is down.\nserver = "https://ghcr.io"\n\n[host."http://10.0.0.9:5000"]\n  capabilities = ["pull", "resolve"]\n';
    writeFileSync(path.join(out, 'ghcr.io', 'hosts.toml'), old);
    writeClientFiles(out, clientFiles(config, 'containerd', '10.96.0.50:5000'));
    const text = readFileSync(path.join(out, 'ghcr.io', 'hosts.toml'), 'utf8');
    expect(hostsOf(text)).toEqual(['http://10.96.0.50:5000']);
    expect(text.match(/through pullgate/g)).toHaveLength(1);
  });

  it('--remove takes only pullgate\'s hosts out: a shared file keeps the others, a file of its own goes, and a second run removes nothing', () => {
    const out = certsDir();
    mkdirSync(path.join(out, 'docker.io'));
    writeFileSync(path.join(out, 'docker.io', 'hosts.toml'), PROVIDER);
    mkdirSync(path.join(out, 'quay.io'));
    writeFileSync(path.join(out, 'quay.io', 'hosts.toml'), 'server = "https://quay.io"\n\n[host."https://other.mirror"]\n');
    writeClientFiles(out, clientFiles(config, 'containerd', '10.96.0.50:5000'));
    const lines = removeContainerdHosts(out);
    expect(lines).toEqual([
      `updated ${path.join(out, 'docker.io', 'hosts.toml')}: removed pullgate's host http://10.96.0.50:5000, kept the others`,
      `removed ${path.join(out, 'ghcr.io', 'hosts.toml')}: it held only pullgate's host http://10.96.0.50:5000`,
    ]);
    const left = readFileSync(path.join(out, 'docker.io', 'hosts.toml'), 'utf8');
    expect(hostsOf(left)).toEqual(['https://mirror.gcr.io']);
    expect(left).toContain('server = "https://registry-1.docker.io"');
    expect(left).toContain('x-mirror = "1"');
    expect(left).not.toContain('pullgate');
    expect(existsSync(path.join(out, 'ghcr.io'))).toBe(false);
    expect(readFileSync(path.join(out, 'quay.io', 'hosts.toml'), 'utf8')).toBe('server = "https://quay.io"\n\n[host."https://other.mirror"]\n');
    expect(removeContainerdHosts(out)).toEqual([]);
    expect(removeContainerdHosts(path.join(out, 'missing'))).toEqual([]);
  });
});
