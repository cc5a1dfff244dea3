// Real peers: a bundle exported by pullgate is read by skopeo (oci-archive:), imported into a pullgate whose
// upstream is unreachable and pulled from it with skopeo and docker; a skopeo-written oci-archive imports too.
import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { logsOf } from '../../support/diagnostics.js';
import { sha256Digest } from '../../support/oci-layout.js';
import { PULLGATE_CLI, startPullgate } from '../../support/pullgate.js';
import { run } from '../../support/proc.js';
import { skopeoInspectRaw } from '../../support/skopeo.js';
import { startDockerd } from './support/dockerd.js';
import { useSuite } from './support/suite.js';
import { startUpstream } from './support/upstream.js';

function pullgate(args: string[]): ReturnType<typeof run> {
  return run(process.execPath, [PULLGATE_CLI, ...args], { timeoutMs: 120_000 });
}

describe('air-gap bundles with real skopeo', () => {
  const suite = useSuite('bundle', async (ws) => {
    const up = await startUpstream(ws, 'htpasswd');
    const near = await startPullgate(ws, 'near', {
      defaultRegistry: up.registry.host,
      registries: [{ key: up.registry.host, url: up.registry.url, username: up.puller.username, password: up.puller.password }],
    });
    // The far side: the same registry key, at an address nothing answers (no route to any registry).
    const far = await startPullgate(ws, 'far', {
      defaultRegistry: up.registry.host,
      registries: [{ key: up.registry.host, url: 'http://127.0.0.1:1', username: 'nobody', password: 'unused' }],
    });
    return { up, near, far, ref: `${up.registry.host}/${up.repository}:${up.tag}` };
  });

  it('skopeo inspect oci-archive:FILE:REF finds the exported image with its manifest digest', async () => {
    const { ws, value } = suite();
    const { up, near, ref } = value;
    const file = ws.path('bundle.tar');
    const exported = await pullgate(['export', ref, '--out', file, '--config', near.configPath]);
    expect(exported.code, `${exported.stdout.toString()}\n${exported.stderr}\n${logsOf(near.daemon, up.registry.daemon)}`).toBe(0);
    const inspected = await run('skopeo', ['--insecure-policy', 'inspect', '--raw', `oci-archive:${file}:${ref}`]);
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(sha256Digest(inspected.stdout)).toBe(up.image.manifestDigest);
  });

  // First into the far side: a blob it already held would be skipped, not read, so a flipped byte in it would not matter.
  it("imports skopeo's own oci-archive, and refuses one with a flipped byte (exit 1, naming the digest)", async () => {
    const { ws, value } = suite();
    const { up, near, far } = value;
    const archive = ws.path('skopeo.tar');
    const ref = `${up.registry.host}/${up.repository}:from-skopeo`;
    const copied = await run('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', '--src-no-creds', `docker://${near.host}/${up.repository}:${up.tag}`, `oci-archive:${archive}:${ref}`]);
    expect(copied.code, copied.stderr).toBe(0);

    const bytes = await readFile(archive);
    const [bigDigest, bigBytes] = [...up.image.blobs].reduce((a, b) => (b[1].length > a[1].length ? b : a));
    const at = bytes.indexOf(bigBytes.subarray(0, 256));
    expect(at, 'the largest layer is stored uncompressed in the archive').toBeGreaterThan(0);
    const damaged = Buffer.from(bytes);
    damaged[at + 4096] = (damaged[at + 4096] ?? 0) ^ 0xff;
    await writeFile(ws.path('damaged.tar'), damaged);
    const refused = await pullgate(['import', ws.path('damaged.tar'), '--config', far.configPath]);
    expect(refused.code).toBe(1);
    expect(refused.stdout.toString()).toContain(`REFUSED: blob ${bigDigest} does not match its digest`);
    expect((await skopeoInspectRaw(`${far.host}/${up.repository}:from-skopeo`)).code).not.toBe(0);

    const imported = await pullgate(['import', archive, '--config', far.configPath]);
    expect(imported.code, `${imported.stdout.toString()}\n${imported.stderr}`).toBe(0);
    const pulled = await skopeoInspectRaw(`${far.host}/${up.repository}:from-skopeo`);
    expect(pulled.code, `${pulled.stderr}\n${logsOf(far.daemon)}`).toBe(0);
    expect(sha256Digest(pulled.stdout)).toBe(up.image.manifestDigest);
  });

  it('a .tar.zst bundle imported into the unreachable far side is pulled from it by skopeo, byte for byte', async () => {
    const { ws, value } = suite();
    const { up, near, far, ref } = value;
    const file = ws.path('bundle.tar.zst');
    const exported = await pullgate(['export', ref, '--out', file, '--config', near.configPath]);
    expect(exported.code, `${exported.stdout.toString()}\n${exported.stderr}`).toBe(0);
    expect((await readFile(file)).subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe(true);
    const imported = await pullgate(['import', file, '--config', far.configPath]);
    expect(imported.code, `${imported.stdout.toString()}\n${imported.stderr}`).toBe(0);
    expect(imported.stdout.toString()).toContain(`${ref}: imported`);
    const pulled = await skopeoInspectRaw(`${far.host}/${up.repository}:${up.tag}`);
    expect(pulled.code, `${pulled.stderr}\n${logsOf(far.daemon)}`).toBe(0);
    expect(sha256Digest(pulled.stdout)).toBe(up.image.manifestDigest);
    const copied = await run('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', '--src-no-creds', `docker://${far.host}/${up.repository}:${up.tag}`, `oci:${ws.path('far-copy')}:x`]);
    expect(copied.code, `${copied.stderr}\n${logsOf(far.daemon)}`).toBe(0);
  });

  it('docker pulls the imported image by tag from the far side, with the exported manifest digest', async () => {
    const { ws, value } = suite();
    const { up, far } = value;
    const daemonJson = ws.path('daemon.json');
    await writeFile(daemonJson, `${JSON.stringify({ 'insecure-registries': [far.host] })}\n`);
    const dockerd = await startDockerd(ws, daemonJson);
    const ref = `${far.host}/${up.repository}:${up.tag}`;
    const pulled = await dockerd.docker(['pull', ref], { timeoutMs: 120_000 });
    expect(pulled.code, `docker pull ${ref}\n${pulled.stderr}\n${logsOf(far.daemon, dockerd.daemon)}`).toBe(0);
    const inspect = await dockerd.dockerOk(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref]);
    expect(JSON.parse(inspect.stdout.toString('utf8'))).toEqual([`${far.host}/${up.repository}@${up.image.manifestDigest}`]);
  });
});
