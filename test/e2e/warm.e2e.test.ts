// Real peers: `pullgate warm` fills a storage from a distribution registry with token auth; skopeo then
// pulls the image through a pullgate serving that storage while the upstream registry is stopped.
import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { logsOf } from '../../support/diagnostics.js';
import { diffBlobs, readLayout } from '../../support/oci-compare.js';
import { freePort } from '../../support/ports.js';
import { run } from '../../support/proc.js';
import { PULLGATE_CLI, renderPullgateConfig, startPullgate, startFlags } from '../../support/pullgate.js';
import { skopeoPull } from '../../support/skopeo.js';
import { useSuite } from './support/suite.js';
import { startUpstream } from './support/upstream.js';

describe('pullgate warm from a distribution registry with token auth', () => {
  const suite = useSuite('warm', async (ws) => ({ up: await startUpstream(ws, 'token') }));

  it('fills the storage with no mirror running; a mirror on it then serves skopeo with the upstream stopped', async () => {
    const { ws, value } = suite();
    const { up } = value;
    const registries = [{ key: up.registry.host, url: up.registry.url, username: up.puller.username, password: up.puller.password }];
    const storagePath = await ws.mkdir('warmed', 'data');
    const configPath = ws.path('warm.yaml');
    // Nothing listens on this port, so warm starts its own in-process mirror on the storage.
    await writeFile(configPath, renderPullgateConfig({ listen: `127.0.0.1:${await freePort()}`, storagePath, defaultRegistry: up.registry.host, registries }));
    const ref = `${up.repository}:${up.tag}`;
    const warmed = await run(process.execPath, [...startFlags(), PULLGATE_CLI, 'warm', '--config', configPath, '--platform', 'all', ref], { timeoutMs: 120_000 });
    const out = warmed.stdout.toString('utf8');
    expect(warmed.code, `pullgate warm exited ${warmed.code}\n${out}\n${warmed.stderr}`).toBe(0);
    expect(warmed.stderr).toContain(`filling ${storagePath} directly`);
    const blobs = 1 + up.image.layers.length;
    expect(out).toContain(`${ref}: single-platform image: ${blobs} blobs`);
    expect(out).toMatch(new RegExp(`^${ref}: warmed 1 manifest, ${blobs} blobs, `, 'm'));
    expect(out).not.toContain(up.puller.password);
    expect(warmed.stderr).not.toContain(up.puller.password);

    await up.registry.daemon.stop();
    const pg = await startPullgate(ws, 'warmed', { defaultRegistry: up.registry.host, registries });
    const dir = ws.path('skopeo-out');
    const pulled = await skopeoPull(`${pg.host}/${ref}`, dir, up.tag);
    expect(pulled.code, `skopeo copy with the upstream stopped\n${pulled.stderr}\n${logsOf(pg.daemon)}`).toBe(0);
    const layout = await readLayout(dir, up.tag);
    expect(layout.manifestDigest).toBe(up.image.manifestDigest);
    expect(diffBlobs(up.image, layout.blobs)).toEqual([]);
  });
});
