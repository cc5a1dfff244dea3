import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';
import { createLogger } from '../../src/core/deps.js';
import { findRunningMirror, startLocalMirror } from '../../src/warm/local-mirror.js';
import { parsePlatforms, type PlatformChoice } from '../../src/warm/manifest-content.js';
import { plainDisplay } from '../../src/warm/progress.js';
import { type WarmSummary, warmImage } from '../../src/warm/warm.js';
import { Cache } from '../../src/cache/cache.js';
import { Metrics } from '../../src/core/metrics.js';
import { FakeRegistry, makeImage, sha256, type FakeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

async function setup(): Promise<{ fake: FakeRegistry; pg: Harness; url: string; dispatcher: Agent }> {
  const clock = new FakeClock();
  const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
  cleanups.push(() => fake.stop());
  const pg = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n`, { clock });
  cleanups.push(() => pg.close());
  const dispatcher = new Agent();
  cleanups.push(() => dispatcher.close());
  return { fake, pg, url: await pg.listen(), dispatcher };
}

/** A two-platform index (plus an attestation entry) over three images of `repository`, tagged `tag`. */
function addIndex(fake: FakeRegistry, repository: string, tag: string): { amd64: FakeImage; arm64: FakeImage; index: FakeImage } {
  const amd64 = fake.add(makeImage(repository, 'amd64-only', 2, 32 * 1024));
  const arm64 = fake.add(makeImage(repository, 'arm64-only', 1, 48 * 1024));
  const attestation = fake.add(makeImage(repository, 'attestation', 1, 1024));
  const index = fake.add(
    indexOf(repository, tag, [
      [amd64, { os: 'linux', architecture: 'amd64' }],
      [arm64, { os: 'linux', architecture: 'arm64', variant: 'v8' }],
      [attestation, { os: 'unknown', architecture: 'unknown' }],
    ]),
  );
  return { amd64, arm64, index };
}

/** An OCI image of `repository` (tagged by its digest only) with a fresh config and these layers. */
function imageOf(repository: string, layers: Buffer[]): FakeImage {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
  const blobs = new Map<string, Buffer>([[sha256(config), config], ...layers.map((l): [string, Buffer] => [sha256(l), l])]);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(l), size: l.length })),
    }),
  );
  return { repository, tag: sha256(manifest), manifest, digest: sha256(manifest), mediaType: OCI_MANIFEST, blobs };
}

function indexOf(repository: string, tag: string, entries: [FakeImage, Record<string, string>][]): FakeImage {
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: entries.map(([image, platform]) => ({ mediaType: OCI_MANIFEST, digest: image.digest, size: image.manifest.length, platform })),
    }),
  );
  return { repository, tag, manifest, digest: sha256(manifest), mediaType: OCI_INDEX, blobs: new Map() };
}

function blobGets(fake: FakeRegistry): string[] {
  return fake.seen.filter((s) => s.method === 'GET' && s.path.includes('/blobs/')).map((s) => s.path.slice(s.path.lastIndexOf('/') + 1));
}

async function warm(url: string, dispatcher: Agent, image: string, platforms: PlatformChoice, lines: string[] = [], strictPlatform = false): Promise<{ summary: WarmSummary; lines: string[] }> {
  const show = plainDisplay((line) => lines.push(line));
  let clock = 0;
  const summary = await warmImage(image, { mirror: url, authorization: undefined, platforms, strictPlatform, timeoutMs: 5_000, parallel: 2 }, { dispatcher, now: () => (clock += 250) }, show);
  show.done(summary);
  return { summary, lines };
}

describe('pullgate warm', () => {
  it('fetches the chosen platform of an index through the mirror, which then serves it with upstream gone', async () => {
    const { fake, pg, url, dispatcher } = await setup();
    const { amd64, arm64, index } = addIndex(fake, 'team/multi', '1');
    const { summary, lines } = await warm(url, dispatcher, 'team/multi:1', parsePlatforms('linux/arm64'));
    expect(summary).toMatchObject({ platforms: ['linux/arm64/v8'], manifests: 2, blobs: arm64.blobs.size });
    expect(summary.bytes).toBe([...arm64.blobs.values()].reduce((n, b) => n + b.length, 0));
    expect(blobGets(fake).sort()).toEqual([...arm64.blobs.keys()].sort());
    for (const digest of amd64.blobs.keys()) expect(pg.cache.lookup(digest)).toBeUndefined();
    expect(lines[0]).toBe(`team/multi:1: linux/arm64/v8: ${arm64.blobs.size} blobs, ${(summary.bytes / 1024).toFixed(1)}KiB to fetch`);
    expect(lines.at(-1)).toMatch(/^team\/multi:1: warmed linux\/arm64\/v8: 2 manifests, 2 blobs, [\d.]+KiB in [\d.]+ s$/);

    // Everything warmed is now local: with upstream down the index, the manifest and the blobs are served.
    await fake.stop();
    const digestPath = `/v2/team/multi/manifests/${index.digest}`;
    expect((await pg.app.inject({ url: digestPath, headers: { accept: OCI_INDEX } })).statusCode).toBe(200);
    for (const [digest, bytes] of arm64.blobs) {
      const hit = await pg.app.inject({ url: `/v2/team/multi/blobs/${digest}` });
      expect(hit.statusCode).toBe(200);
      expect(hit.rawPayload.equals(bytes)).toBe(true);
    }
  });

  it('with "all" takes every entry, attestations included, and fetches a layer two platforms share once', async () => {
    const { fake, url, dispatcher } = await setup();
    const shared = randomBytes(20_000);
    const amd64 = fake.add(imageOf('team/shared', [shared, randomBytes(10_000)]));
    const arm64 = fake.add(imageOf('team/shared', [randomBytes(12_000), shared]));
    const attestation = fake.add(imageOf('team/shared', [randomBytes(100)]));
    fake.add(indexOf('team/shared', '1', [
      [amd64, { os: 'linux', architecture: 'amd64' }],
      [arm64, { os: 'linux', architecture: 'arm64' }],
      [attestation, { os: 'unknown', architecture: 'unknown' }],
    ]));
    const { summary } = await warm(url, dispatcher, 'team/shared:1', 'all');
    const all = new Set([...amd64.blobs.keys(), ...arm64.blobs.keys(), ...attestation.blobs.keys()]);
    expect(all.size).toBe(3 + 2 + 1 + 1);
    expect(summary).toMatchObject({ platforms: ['linux/amd64', 'linux/arm64', 'unknown/unknown'], manifests: 4, blobs: all.size });
    expect(blobGets(fake).sort()).toEqual([...all].sort());
  });

  it('reports what the mirror answered, and an index without the asked platform, without fetching blobs', async () => {
    const { fake, url, dispatcher } = await setup();
    addIndex(fake, 'team/multi', '1');
    await expect(warm(url, dispatcher, 'team/multi:nope', 'all')).rejects.toThrow(/^manifest nope: the mirror answered 404 MANIFEST_UNKNOWN/);
    await expect(warm(url, dispatcher, 'team/multi:1', parsePlatforms('linux/s390x'))).rejects.toThrow(
      'team/multi:1: no linux/s390x manifest in this index (it has linux/amd64, linux/arm64/v8)',
    );
    await expect(warm(url, dispatcher, 'unknown.example/team/app:1', 'all')).rejects.toThrow(/the mirror answered 404 NAME_UNKNOWN/);
    expect(blobGets(fake)).toEqual([]);
  });

  it('summarises a many-platform index in one short line, in the plan, the result and an unmatched --platform', async () => {
    const { fake, url, dispatcher } = await setup();
    const entries = Array.from({ length: 40 }, (_, i): [FakeImage, Record<string, string>] => [fake.add(makeImage('team/wide', `p${i}`, 1, 64)), { os: 'linux', architecture: `arch${i}` }]);
    fake.add(indexOf('team/wide', '1', entries));
    const { summary, lines } = await warm(url, dispatcher, 'team/wide:1', 'all');
    expect(summary.platforms).toHaveLength(40);
    expect(lines[0]).toMatch(/^team\/wide:1: 40 platforms: linux\/arch0, linux\/arch1, linux\/arch2, linux\/arch3 and 36 more: 80 blobs, [\d.]+ ?KiB to fetch$/);
    expect(lines.at(-1)).toMatch(/^team\/wide:1: warmed 40 platforms: linux\/arch0, linux\/arch1, linux\/arch2, linux\/arch3 and 36 more: 41 manifests, 80 blobs, /);
    for (const line of lines) expect(line.length).toBeLessThan(200);
    await expect(warm(url, dispatcher, 'team/wide:1', parsePlatforms('linux/s390x'))).rejects.toThrow(
      'team/wide:1: no linux/s390x manifest in this index (it has 40 platforms: linux/arch0, linux/arch1, linux/arch2, linux/arch3 and 36 more)',
    );
  });

  it('--platform that a single-platform image does not match fails it, fetching only its config; the default platform warns and warms', async () => {
    const { fake, url, dispatcher } = await setup();
    const image = fake.add(makeImage('team/amd', '1', 2, 1024));
    const config = [...image.blobs.keys()][0];
    const strict: string[] = [];
    await expect(warm(url, dispatcher, 'team/amd:1', parsePlatforms('linux/arm64'), strict, true)).rejects.toThrow(
      'team/amd:1 is a single-platform linux/amd64 image, not linux/arm64: nothing warmed (--platform linux/amd64 or --platform all warms it)',
    );
    expect(blobGets(fake)).toEqual([config]);

    const lenient: string[] = [];
    const { summary } = await warm(url, dispatcher, 'team/amd:1', parsePlatforms('linux/arm64'), lenient, false);
    expect(lenient[0]).toBe("team/amd:1: WARNING: a single-platform linux/amd64 image, not linux/arm64 (this machine's platform); warming it anyway");
    expect(summary).toMatchObject({ platforms: ['linux/amd64'], blobs: 3 });

    const matching = await warm(url, dispatcher, 'team/amd:1', parsePlatforms('linux/amd64'), [], true);
    expect(matching.summary.platforms).toEqual(['linux/amd64']);
    expect(matching.lines.some((line) => line.includes('WARNING'))).toBe(false);
  });

  it('fails an image whose blob upstream corrupts, and stores nothing for it', async () => {
    const { fake, pg, url, dispatcher } = await setup();
    const image = fake.add(makeImage('team/app', '1', 1, 64 * 1024));
    const [digest] = [...image.blobs.entries()].find(([, b]) => b.length === 64 * 1024) ?? [];
    if (digest === undefined) throw new Error('no layer');
    image.blobs.set(digest, Buffer.alloc(64 * 1024, 1));
    await expect(warm(url, dispatcher, 'team/app:1', 'all')).rejects.toThrow(/^blob sha256:[0-9a-f]{64}: /);
    expect(pg.cache.lookup(digest)).toBeUndefined();
  });

  it('finds a running mirror by its address, and fills the storage itself when none runs', async () => {
    const { url, dispatcher } = await setup();
    expect(await findRunningMirror(url, dispatcher)).toBe(url);
    const fake = await new FakeRegistry({ kind: 'none' }, new FakeClock()).start();
    cleanups.push(() => fake.stop());
    const image = fake.add(makeImage('team/app', '2', 2, 16 * 1024));
    const storage = mkdtempSync(path.join(tmpdir(), 'pullgate-warm-'));
    cleanups.push(() => rmSync(storage, { recursive: true, force: true }));
    // htpasswd-protected in the config: the command's own in-process mirror still takes it anonymously.
    const htpasswd = path.join(storage, 'htpasswd');
    const config = loadConfigText(
      `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\nclients: { anonymous: false, htpasswd: ${htpasswd} }\nstorage: { path: ${storage} }\n`,
      {},
      'test',
      storage,
    );
    writeFileSync(htpasswd, '');
    const logs: string[] = [];
    const local = await startLocalMirror(config, { clock: new FakeClock(), dispatcher, logger: createLogger('warn', { write: (l: string) => logs.push(l) }), env: {} });
    const { summary } = await warm(local.url, dispatcher, 'team/app:2', 'all');
    await local.close();
    expect(summary.blobs).toBe(image.blobs.size);
    const cache = new Cache({ root: storage, maxSizeBytes: 1024 * 1024 * 1024, clock: new FakeClock(), logger: createLogger('silent'), metrics: new Metrics() });
    for (const digest of image.blobs.keys()) expect(cache.lookup(digest)?.size).toBe(image.blobs.get(digest)?.length);
    await cache.close();
    expect(await findRunningMirror(local.url, dispatcher)).toBeUndefined();
  });
});
