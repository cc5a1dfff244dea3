import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeImage } from '../../src/cache/remove-image.js';
import { FakeRegistry, makeImage, sha256, type FakeImage } from '../helpers/fake-registry.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { harness, type Harness } from '../helpers/harness.js';
import { runCliFromSource, type CliRun } from '../helpers/cli-from-source.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function setup(clock = new FakeClock(), storage?: string): Promise<{ fake: FakeRegistry; pg: Harness; yaml: string }> {
  const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
  cleanups.push(() => fake.stop());
  const yaml = `defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n`;
  const pg = harness(yaml, storage === undefined ? { clock } : { clock, storage });
  cleanups.push(() => pg.close());
  return { fake, pg, yaml };
}

/** An image that also carries `shared` (a layer of another image) as its last layer. */
function imageSharing(repository: string, tag: string, shared: [string, Buffer]): FakeImage {
  const image = makeImage(repository, tag);
  const body = JSON.parse(image.manifest.toString()) as { layers: { mediaType: string; digest: string; size: number }[] };
  body.layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: shared[0], size: shared[1].length });
  const manifest = Buffer.from(JSON.stringify(body));
  image.blobs.set(shared[0], shared[1]);
  return { ...image, manifest, digest: sha256(manifest) };
}

/** An OCI index over `children` (each already added to the fake under its own tag). */
function indexOf(repository: string, tag: string, children: FakeImage[]): FakeImage {
  const mediaType = 'application/vnd.oci.image.index.v1+json';
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      manifests: children.map((child, i) => ({ mediaType: child.mediaType, digest: child.digest, size: child.manifest.length, platform: { os: 'linux', architecture: `arch${i}` } })),
    }),
  );
  return { repository, tag, manifest, digest: sha256(manifest), mediaType, blobs: new Map() };
}

/** Pulls an image's manifest (by tag) and every blob through pullgate, so the cache holds all of it. */
async function pull(pg: Harness, image: FakeImage, children: FakeImage[] = []): Promise<void> {
  const manifest = await pg.app.inject({ url: `/v2/${image.repository}/manifests/${image.tag}`, headers: { accept: image.mediaType } });
  expect(manifest.statusCode).toBe(200);
  for (const child of children) {
    expect((await pg.app.inject({ url: `/v2/${child.repository}/manifests/${child.digest}`, headers: { accept: child.mediaType } })).statusCode).toBe(200);
  }
  for (const owner of [image, ...children]) {
    for (const digest of owner.blobs.keys()) expect((await pg.app.inject({ url: `/v2/${owner.repository}/blobs/${digest}` })).statusCode).toBe(200);
  }
  await pg.cache.drain();
}

function cached(pg: Harness, digest: string): boolean {
  return pg.cache.index.blob(digest) !== undefined;
}

async function stored(pg: Harness, digest: string): Promise<boolean> {
  return (await pg.cache.localStore.stat(digest)) !== undefined;
}

function parts(pg: Harness): Parameters<typeof removeImage>[0] {
  return { index: pg.cache.index, store: pg.cache.localStore };
}

describe('cache rm', () => {
  it('removes a tag, its manifest and the blobs only it references; keeps a layer another cached image shares', async () => {
    const { fake, pg } = await setup();
    const app = fake.add(makeImage('team/app', '1', 2));
    const [sharedDigest, sharedBytes] = [...app.blobs.entries()][2] ?? ['', Buffer.alloc(0)];
    const other = fake.add(imageSharing('team/other', '1', [sharedDigest, sharedBytes]));
    await pull(pg, app);
    await pull(pg, other);
    for (const digest of [app.digest, ...app.blobs.keys()]) expect(cached(pg, digest) && (await stored(pg, digest))).toBe(true);

    const removal = await removeImage(parts(pg), { registry: 'reg.example', repository: 'team/app', kind: 'tag', reference: '1' }, { tagOnly: false });

    expect(removal.found).toBe(true);
    expect(pg.cache.index.tag('reg.example', 'team/app', '1')).toBeUndefined();
    const gone = [app.digest, ...[...app.blobs.keys()].filter((digest) => digest !== sharedDigest)];
    expect(removal.removed.map((row) => row.digest).sort()).toEqual([...gone].sort());
    for (const digest of gone) {
      expect(cached(pg, digest)).toBe(false);
      expect(await stored(pg, digest)).toBe(false);
    }
    expect(removal.kept).toEqual([{ digest: sharedDigest, reason: `referenced by cached manifest ${other.digest}` }]);
    for (const digest of [other.digest, ...other.blobs.keys()]) expect(cached(pg, digest) && (await stored(pg, digest))).toBe(true);
    expect(removal.freedBytes).toBe(removal.removed.reduce((sum, row) => sum + row.size, 0));
  });

  it('removes an index with its child manifests and their blobs', async () => {
    const { fake, pg } = await setup();
    const amd = fake.add(makeImage('team/multi', 'amd'));
    const arm = fake.add(makeImage('team/multi', 'arm'));
    const index = fake.add(indexOf('team/multi', '2', [amd, arm]));
    await pull(pg, index, [amd, arm]);
    const all = [index.digest, amd.digest, arm.digest, ...amd.blobs.keys(), ...arm.blobs.keys()];
    for (const digest of all) expect(cached(pg, digest)).toBe(true);

    const removal = await removeImage(parts(pg), { registry: 'reg.example', repository: 'team/multi', kind: 'tag', reference: '2' }, { tagOnly: false });

    expect(removal.removed.map((row) => row.digest).sort()).toEqual([...all].sort());
    for (const digest of all) expect(await stored(pg, digest)).toBe(false);
    expect(pg.cache.index.totals()).toEqual({ bytes: 0, count: 0 });
  });

  it('keeps a manifest another tag still names, and removes it by digest only once no tag does', async () => {
    const { fake, pg } = await setup();
    const image = fake.add(makeImage('team/app', '1'));
    fake.add({ ...image, tag: 'latest' });
    await pull(pg, image);
    await pull(pg, { ...image, tag: 'latest' });

    const first = await removeImage(parts(pg), { registry: 'reg.example', repository: 'team/app', kind: 'tag', reference: '1' }, { tagOnly: false });
    expect(first.removed).toEqual([]);
    expect(first.kept.find((kept) => kept.digest === image.digest)?.reason).toBe('still tagged reg.example/team/app:latest');
    expect(cached(pg, image.digest)).toBe(true);

    pg.cache.index.deleteTag('reg.example', 'team/app', 'latest');
    const byDigest = await removeImage(parts(pg), { registry: 'reg.example', repository: 'team/app', kind: 'digest', reference: image.digest }, { tagOnly: false });
    expect(byDigest.removed).toHaveLength(1 + image.blobs.size);
  });

  it('--tag drops only the tag row, so pullgate on the same storage asks upstream again on the next pull', async () => {
    const clock = new FakeClock();
    const storage = mkdtempSync(path.join(tmpdir(), 'pullgate-rm-'));
    cleanups.push(() => Promise.resolve(rmSync(storage, { recursive: true, force: true })));
    const { fake, pg, yaml } = await setup(clock, storage);
    const image = fake.add(makeImage('team/app', '1'));
    await pull(pg, image);
    const manifestGets = (): number => fake.seen.filter((seen) => seen.method === 'GET' && seen.path === '/v2/team/app/manifests/1').length;
    expect(manifestGets()).toBe(1);
    await pg.close();
    cleanups.pop();

    const before = harness(yaml, { clock, storage });
    expect((await before.app.inject({ url: '/v2/team/app/manifests/1', headers: { accept: image.mediaType } })).statusCode).toBe(200);
    expect(manifestGets()).toBe(1);
    const removal = await removeImage(parts(before), { registry: 'reg.example', repository: 'team/app', kind: 'tag', reference: '1' }, { tagOnly: true });
    await before.close();
    expect(removal).toMatchObject({ found: true, digest: image.digest, removed: [] });

    const after = harness(yaml, { clock, storage });
    cleanups.push(() => after.close());
    expect((await after.app.inject({ url: '/v2/team/app/manifests/1', headers: { accept: image.mediaType } })).statusCode).toBe(200);
    expect(manifestGets()).toBe(2);
    expect(cached(after, image.digest)).toBe(true);
  });

  it('the CLI: prints what it removed, exits 1 for a reference that is not cached and 2 for --tag with a digest', async () => {
    const { fake, pg, yaml } = await setup();
    const image = fake.add(makeImage('team/app', '1'));
    await pull(pg, image);
    const config = path.join(pg.storage, 'pullgate.yaml');
    writeFileSync(config, `${yaml}storage: { path: ${JSON.stringify(pg.storage)} }\n`);

    const removed = await run(['cache', 'rm', 'reg.example/team/app:1', '--config', config]);
    expect(removed.stdout).toContain(`removed tag reg.example/team/app:1 (was ${image.digest})`);
    expect(removed.stdout).toContain(`removed 1 manifests and ${image.blobs.size} blobs of reg.example/team/app:1`);
    expect(removed.stdout).toContain('cache.tagTTL');
    expect(removed.status).toBe(0);

    const missing = await run(['cache', 'rm', 'reg.example/team/app:1', '--config', config]);
    expect(missing).toMatchObject({ status: 1, stdout: '', stderr: 'pullgate: cache rm: reg.example/team/app:1 is not cached\n' });

    const usage = await run(['cache', 'rm', '--tag', `reg.example/team/app@${image.digest}`, '--config', config]);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('--tag needs a tag');
  });
});

/** Runs the CLI from source with the caller's environment, minus PULLGATE_CONFIG. */
function run(args: string[]): Promise<CliRun> {
  return runCliFromSource(args, { ...process.env, PULLGATE_CONFIG: '' });
}
