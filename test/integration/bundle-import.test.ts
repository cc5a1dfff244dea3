import { createReadStream, createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { exportBundle } from '../../src/bundle/export.js';
import { writeDigests } from '../../src/bundle/have-list.js';
import { importBundle, type ImportResult } from '../../src/bundle/import.js';
import { route } from '../../src/routing/route.js';
import type { PlatformChoice } from '../../src/warm/manifest-content.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { type FakeImage, FakeRegistry, makeImage, sha256 } from '../helpers/fake-registry.js';
import { harness, type Harness } from '../helpers/harness.js';
import { OCI_INDEX, OCI_MANIFEST, addMultiArch, addSigned } from '../helpers/bundle-fixtures.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const YEAR_MS = 365 * 24 * 3600 * 1000;

interface Sites {
  fake: FakeRegistry;
  near: Harness;
  nearUrl: string;
  far: Harness;
  dir: string;
  dispatcher: Agent;
}

/** A connected mirror over a fake registry, and an air-gapped one whose registry URL nothing answers. */
async function sites(): Promise<Sites> {
  const fake = await new FakeRegistry({ kind: 'none' }, new FakeClock()).start();
  cleanups.push(() => fake.stop());
  const near = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n`);
  cleanups.push(() => near.close());
  // Port 1 on loopback: connection refused, as on a site with no route to any registry.
  const far = harness('defaultRegistry: reg.example\nregistries:\n  reg.example: { url: "http://127.0.0.1:1" }\n');
  cleanups.push(() => far.close());
  const dispatcher = new Agent();
  cleanups.push(() => dispatcher.close());
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-bundle-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return { fake, near, nearUrl: await near.listen(), far, dir, dispatcher };
}

async function exportTo(s: Sites, file: string, images: string[], have: Set<string> = new Set(), platforms: PlatformChoice = 'all'): Promise<void> {
  const out = createWriteStream(file);
  await exportBundle(images, out, { mirror: s.nearUrl, authorization: undefined, platforms, have, timeoutMs: 5_000, dispatcher: s.dispatcher }, { planned: () => undefined, progress: () => undefined, warning: () => undefined });
  out.end();
  await finished(out);
}

function importInto(site: Harness, file: string, pin = false): Promise<ImportResult> {
  return importBundle(createReadStream(file), site.cache, { route: (name) => route(site.config, name, undefined), now: () => site.clock.now(), pin }, { progress: () => undefined });
}

const ACCEPT = [OCI_INDEX, OCI_MANIFEST].join(', ');

/** Pulls an image by tag from a mirror the way a client does (manifest, child of `arch`, config and layers); the digests seen. */
async function pull(site: Harness, repository: string, tag: string, images: FakeImage[]): Promise<string> {
  const top = await site.app.inject({ url: `/v2/${repository}/manifests/${tag}`, headers: { accept: ACCEPT } });
  expect(top.statusCode, top.body).toBe(200);
  for (const image of images) {
    const manifest = await site.app.inject({ url: `/v2/${repository}/manifests/${image.digest}`, headers: { accept: ACCEPT } });
    expect(manifest.statusCode, manifest.body).toBe(200);
    expect(manifest.rawPayload.equals(image.manifest)).toBe(true);
    for (const [digest, bytes] of image.blobs) {
      const blob = await site.app.inject({ url: `/v2/${repository}/blobs/${digest}` });
      expect(blob.statusCode, blob.body).toBe(200);
      expect(blob.rawPayload.equals(bytes)).toBe(true);
    }
  }
  return String(top.headers['docker-content-digest']);
}

describe('pullgate export → import into an air-gapped mirror', () => {
  it('serves both images by tag, arm64 included, with the same digests, a year after the import with no upstream', async () => {
    const s = await sites();
    const { image, signature } = addSigned(s.fake, 'team/app', '1.0');
    const { index, amd64, arm64 } = addMultiArch(s.fake, 'team/multi', '2');
    const file = path.join(s.dir, 'bundle.tar');
    await exportTo(s, file, ['reg.example/team/app:1.0', 'team/multi:2']);

    const result = await importInto(s.far, file);
    expect(result.images.map((i) => [i.ref, i.imported])).toEqual([
      ['reg.example/team/app:1.0', true],
      [`reg.example/team/app:${image.digest.replace(':', '-')}.sig`, true],
      ['team/multi:2', true],
    ]);
    expect(result.alreadyHeld).toBe(0);

    s.far.clock.advance(YEAR_MS);
    expect(await pull(s.far, 'team/app', '1.0', [image])).toBe(image.digest);
    expect(await pull(s.far, 'team/app', `${image.digest.replace(':', '-')}.sig`, [signature])).toBe(signature.digest);
    expect(await pull(s.far, 'team/multi', '2', [arm64, amd64])).toBe(index.digest);

    // Importing it again copies nothing: every blob is held already.
    const again = await importInto(s.far, file);
    expect(again.staged).toBe(0);
    expect(again.images.every((i) => i.imported)).toBe(true);
  });

  it('refuses an image with one flipped byte in a layer, naming the digest, and makes nothing of it visible; the other image goes in', async () => {
    const s = await sites();
    const { image: good } = addSigned(s.fake, 'team/good', '1');
    const bad = s.fake.add(makeImage('team/bad', '1', 2, 30_000));
    const file = path.join(s.dir, 'bundle.tar');
    await exportTo(s, file, ['team/good:1', 'team/bad:1']);
    const [badLayer, bytes] = [...bad.blobs].at(-1) ?? ['', Buffer.alloc(0)];
    const tar = readFileSync(file);
    const at = tar.indexOf(bytes.subarray(0, 64));
    expect(at).toBeGreaterThan(0);
    tar[at + 1000] = (tar[at + 1000] ?? 0) ^ 0x01;
    writeFileSync(file, tar);

    const result = await importInto(s.far, file);
    const refused = result.images.find((i) => i.ref === 'team/bad:1');
    expect(refused?.imported).toBe(false);
    expect(refused?.reason).toContain(`blob ${badLayer} does not match its digest`);
    expect(result.images.find((i) => i.ref === 'team/good:1')?.imported).toBe(true);

    // A bundle damaged in a blob the far side already holds is refused too: every blob is checked, none copied.
    const again = await importInto(s.far, file);
    expect(again.images.find((i) => i.ref === 'team/good:1')).toMatchObject({ imported: true });
    const goodFile = path.join(s.dir, 'good.tar');
    await exportTo(s, goodFile, ['team/good:1']);
    const goodTar = readFileSync(goodFile);
    const [goodLayer, goodBytes] = [...good.blobs].at(-1) ?? ['', Buffer.alloc(0)];
    const goodAt = goodTar.indexOf(goodBytes.subarray(0, 64));
    goodTar[goodAt + 100] = (goodTar[goodAt + 100] ?? 0) ^ 0x01;
    writeFileSync(goodFile, goodTar);
    const held = await importInto(s.far, goodFile);
    expect(held.images[0]?.reason).toContain(`blob ${goodLayer} does not match its digest`);
    expect(held.staged).toBe(0);

    expect(s.far.cache.tag('reg.example', 'team/bad', '1')).toBeUndefined();
    expect(s.far.cache.manifest(bad.digest)).toBeUndefined();
    for (const digest of bad.blobs.keys()) expect(s.far.cache.lookup(digest)).toBeUndefined();
    expect((await s.far.app.inject({ url: '/v2/team/bad/manifests/1', headers: { accept: ACCEPT } })).statusCode).not.toBe(200);
    expect(await pull(s.far, 'team/good', '1', [good])).toBe(good.digest);
    // The staging area is gone, the refused image's blobs with it.
    expect(readdirSync(path.join(s.far.storage, 'import-staging'))).toEqual([]);
  });

  it('a delta of a new tag adding one small layer, made from the far side\'s cache digests, is at most 10% of the full export and pulls offline', async () => {
    const s = await sites();
    const v1 = s.fake.add(makeImage('team/app', 'v1', 3, 200_000));
    const full1 = path.join(s.dir, 'v1.tar');
    await exportTo(s, full1, ['team/app:v1']);
    expect((await importInto(s.far, full1)).images[0]?.imported).toBe(true);

    // v2: v1's config and layers plus one small layer.
    const small = Buffer.from('a small new layer');
    const manifest = JSON.parse(v1.manifest.toString()) as { layers: unknown[] };
    manifest.layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(small), size: small.length });
    const body = Buffer.from(JSON.stringify(manifest));
    const v2 = s.fake.add({ repository: 'team/app', tag: 'v2', manifest: body, digest: sha256(body), mediaType: OCI_MANIFEST, blobs: new Map([...v1.blobs, [sha256(small), small]]) });

    let digests = '';
    await writeDigests(s.far.cache.contentIndex, (text) => {
      digests += text;
      return Promise.resolve();
    });
    const have = new Set(digests.trim().split('\n'));
    const full = path.join(s.dir, 'v2-full.tar');
    const delta = path.join(s.dir, 'v2-delta.tar');
    await exportTo(s, full, ['team/app:v2']);
    await exportTo(s, delta, ['team/app:v2'], have);
    expect(statSync(delta).size).toBeLessThanOrEqual(0.1 * statSync(full).size);

    const result = await importInto(s.far, delta);
    expect(result.images[0]).toMatchObject({ ref: 'team/app:v2', imported: true });
    expect(result.staged).toBe(2);
    s.far.clock.advance(YEAR_MS);
    expect(await pull(s.far, 'team/app', 'v2', [v2])).toBe(v2.digest);
  });

  it('refuses a delta whose left-out blob the far side does not hold, naming it', async () => {
    const s = await sites();
    const image = s.fake.add(makeImage('team/app', 'v1', 2, 10_000));
    const [left] = [...image.blobs.keys()].slice(-1);
    const file = path.join(s.dir, 'delta.tar');
    await exportTo(s, file, ['team/app:v1'], new Set([left ?? '']));
    const result = await importInto(s.far, file);
    expect(result.images[0]?.imported).toBe(false);
    expect(result.images[0]?.reason).toBe(`blob ${left} is neither in the bundle nor in this cache`);
    expect(s.far.cache.tag('reg.example', 'team/app', 'v1')).toBeUndefined();
  });

  it('--pin keeps an imported image out of eviction until cache unpin of its reference; other content is evicted', async () => {
    const s = await sites();
    const pinned = s.fake.add(makeImage('team/pinned', '1', 2, 20_000));
    const other = s.fake.add(makeImage('team/other', '1', 2, 20_000));
    const pinnedFile = path.join(s.dir, 'pinned.tar');
    const otherFile = path.join(s.dir, 'other.tar');
    await exportTo(s, pinnedFile, ['team/pinned:1']);
    await exportTo(s, otherFile, ['team/other:1']);
    await importInto(s.far, pinnedFile, true);
    await importInto(s.far, otherFile);

    await s.far.cache.evictTo(0);
    for (const digest of [pinned.digest, ...pinned.blobs.keys()]) expect(s.far.cache.lookup(digest), digest).toBeDefined();
    for (const digest of [other.digest, ...other.blobs.keys()]) expect(s.far.cache.lookup(digest), digest).toBeUndefined();
    expect(await pull(s.far, 'team/pinned', '1', [pinned])).toBe(pinned.digest);

    expect(s.far.cache.index.unpin('reg.example', 'team/other', '1')).toBe(0);
    expect(s.far.cache.index.unpin('reg.example', 'team/pinned', '1')).toBe(pinned.blobs.size + 1);
    await s.far.cache.evictTo(0);
    for (const digest of pinned.blobs.keys()) expect(s.far.cache.lookup(digest)).toBeUndefined();
  });
});
