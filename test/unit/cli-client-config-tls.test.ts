import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { clientFiles, printable, type MirrorTls } from '../../src/cli/client-config.js';
import { writeClientFiles } from '../../src/cli/write-client-files.js';
import { loadConfigText } from '../../src/config/load.js';
import { thrown } from './support.js';

const config = loadConfigText('registries:\n  docker.io: {}\n  ghcr.io: {}\ntls: { cert: /etc/pullgate/tls.crt, key: /etc/pullgate/tls.key }\n', {}, 'test', '/tmp');
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const WITH_CA: MirrorTls = { ca: { path: '/etc/pullgate/ca.crt', pem: PEM } };
const MIRROR = 'pullgate.lan:5000';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('pullgate hosts with tls:', () => {
  it('containerd: an https:// host and ca = "<path>" when a CA is given', () => {
    const [hub] = clientFiles(config, 'containerd', MIRROR, WITH_CA);
    expect(hub?.content).toContain(`[host."https://${MIRROR}"]`);
    expect(hub?.content).toContain('  ca = "/etc/pullgate/ca.crt"');
    const [publicCert] = clientFiles(config, 'containerd', MIRROR, { ca: undefined });
    expect(publicCert?.content).toContain(`[host."https://${MIRROR}"]`);
    expect(publicCert?.content).not.toContain('ca =');
  });

  it('docker: an https:// mirror without insecure-registries, and certs.d/<host:port>/ca.crt written under --out', () => {
    const files = clientFiles(config, 'docker', MIRROR, WITH_CA);
    expect(JSON.parse(files[0]?.content ?? '')).toEqual({ 'registry-mirrors': [`https://${MIRROR}`] });
    const out = mkdtempSync(path.join(tmpdir(), 'pullgate-hosts-tls-'));
    dirs.push(out);
    writeClientFiles(out, files);
    expect(readFileSync(path.join(out, 'certs.d', MIRROR, 'ca.crt'), 'utf8')).toBe(PEM);
    // Printed, a PEM file cannot sit beside daemon.json: --out is the way.
    expect(String(thrown(() => printable(files)))).toMatch(/write them with --out DIR/);
  });

  it('podman: insecure = false, and where the CA goes', () => {
    const [conf] = clientFiles(config, 'podman', MIRROR, WITH_CA);
    expect(conf?.content).toContain('insecure = false');
    expect(conf?.content).not.toContain('insecure = true');
    expect(conf?.content).toContain(`/etc/containers/certs.d/${MIRROR}/ca.crt`);
  });

  it('butane: writes docker certs.d/<host:port>/ca.crt and points containerd at that file', () => {
    const [bu] = clientFiles(config, 'butane', MIRROR, WITH_CA);
    const files = (parse(bu?.content ?? '') as { storage: { files: { path: string; contents: { inline: string } }[] } }).storage.files;
    const caPath = `/etc/docker/certs.d/${MIRROR}/ca.crt`;
    expect(files.find((f) => f.path === caPath)?.contents.inline).toBe(PEM);
    expect(files.find((f) => f.path === '/etc/containerd/certs.d/docker.io/hosts.toml')?.contents.inline).toContain(`ca = "${caPath}"`);
  });
});
