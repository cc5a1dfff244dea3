import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { configFromArchive, isGzip } from '../../src/auth/docker-config/archive.js';
import { WatchedAuthFile } from '../../src/auth/docker-config/file.js';
import { tarFiles } from '../../src/util/tar.js';

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length > 0) rmSync(dirs.pop() ?? '', { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-tar-'));
  dirs.push(dir);
  return dir;
}

/** Archives `member` under `dir` with the system's GNU tar, in the given format, gzipped or not. */
function systemTar(dir: string, member: string, format: 'gnu' | 'pax' | 'ustar', gzip = true): Buffer {
  const out = path.join(dir, `out.tar${gzip ? '.gz' : ''}`);
  execFileSync('tar', [`--format=${format}`, gzip ? '-czf' : '-cf', out, '-C', dir, member]);
  return readFileSync(out);
}

const CONFIG = JSON.stringify({ auths: { 'registry.mesos:5000': { auth: Buffer.from('mesos:pw').toString('base64') } } });

describe('tarFiles: a minimal reader for in-memory tar archives', () => {
  it('reads ustar names with a ./ prefix (what `tar czf docker.tar.gz .docker` writes from the home directory)', () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, '.docker'));
    writeFileSync(path.join(dir, '.docker', 'config.json'), CONFIG);
    const tar = systemTar(dir, './.docker', 'ustar', false);
    const files = tarFiles(tar);
    expect(files.map((f) => f.name)).toEqual(['.docker/config.json']);
    expect(files[0]?.data.toString()).toBe(CONFIG);
  });

  it('reads GNU long names and PAX path records (names over 100 bytes)', () => {
    for (const format of ['gnu', 'pax'] as const) {
      const dir = tempDir();
      const deep = path.join('a'.repeat(60), 'b'.repeat(60));
      mkdirSync(path.join(dir, deep), { recursive: true });
      writeFileSync(path.join(dir, deep, 'config.json'), CONFIG);
      const files = tarFiles(systemTar(dir, 'a'.repeat(60), format, false));
      expect(files.map((f) => f.name)).toEqual([`${deep}/config.json`]);
      expect(files[0]?.data.toString()).toBe(CONFIG);
    }
  });

  it('throws on a truncated archive and on a malformed size field', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'f'), 'x'.repeat(2000));
    const tar = systemTar(dir, 'f', 'ustar', false);
    expect(() => tarFiles(tar.subarray(0, 1024))).toThrow(/truncated/);
    const bad = Buffer.from(tar);
    bad.write('zzzz', 124);
    expect(() => tarFiles(bad)).toThrow(/malformed/);
  });
});

describe('Mesos docker.tar.gz', () => {
  it('finds .docker/config.json inside the gzip archive, in memory', () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, '.docker'));
    writeFileSync(path.join(dir, '.docker', 'config.json'), CONFIG);
    const archive = systemTar(dir, '.docker', 'gnu');
    expect(isGzip(archive)).toBe(true);
    expect(configFromArchive(archive, 'docker.tar.gz')).toBe(CONFIG);
  });

  it('says what is wrong with an archive without the file, or one that is not gzip', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'other'), 'x');
    expect(() => configFromArchive(systemTar(dir, 'other', 'gnu'), 'd.tar.gz')).toThrow('d.tar.gz holds neither .docker/config.json nor .dockercfg');
    expect(() => configFromArchive(Buffer.from([0x1f, 0x8b, 1, 2, 3]), 'd.tar.gz')).toThrow(/d\.tar\.gz is not a readable gzip archive/);
    expect(() => configFromArchive(gzipSync(Buffer.from('not a tar at all'.padEnd(600, '!'))), 'd.tar.gz')).toThrow(/d\.tar\.gz: /);
  });

  it('WatchedAuthFile reads auths out of the archive and re-reads it when it is replaced', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, '.docker'));
    writeFileSync(path.join(dir, '.docker', 'config.json'), CONFIG);
    const file = path.join(dir, 'docker.tar.gz');
    writeFileSync(file, systemTar(dir, '.docker', 'gnu'));
    const watched = new WatchedAuthFile(file);
    expect([...((await watched.read())?.auths.keys() ?? [])]).toEqual(['registry.mesos:5000']);
    writeFileSync(path.join(dir, '.docker', 'config.json'), JSON.stringify({ auths: { 'other.example': { auth: Buffer.from('u:p').toString('base64') } } }));
    writeFileSync(file, systemTar(dir, '.docker', 'gnu'));
    expect([...((await watched.read())?.auths.keys() ?? [])]).toEqual(['other.example']);
  });
});
