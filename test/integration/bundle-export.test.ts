import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { exportBundle, type ExportEvents } from '../../src/bundle/export.js';
import { parsePlatforms } from '../../src/warm/manifest-content.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeRegistry } from '../helpers/fake-registry.js';
import { harness } from '../helpers/harness.js';
import { addMultiArch, addSigned, tarContents } from '../helpers/bundle-fixtures.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function quiet(lines: string[] = []): ExportEvents {
  return { planned: (image, plan) => lines.push(`${image} ${JSON.stringify(plan)}`), progress: () => undefined, warning: (image, text) => lines.push(`${image} WARNING ${text}`) };
}

describe('pullgate export', () => {
  it('writes an OCI layout tar naming each image by its reference as given, cosign tags along, through the cache', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => fake.stop());
    const pg = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n`, { clock });
    cleanups.push(() => pg.close());
    const url = await pg.listen();
    const dispatcher = new Agent();
    cleanups.push(() => dispatcher.close());
    const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-export-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { image, signature } = addSigned(fake, 'team/app', '1.0');
    const { index, amd64, arm64 } = addMultiArch(fake, 'team/multi', '2');

    const file = path.join(dir, 'bundle.tar');
    const out = createWriteStream(file);
    const lines: string[] = [];
    const summary = await exportBundle(['reg.example/team/app:1.0', 'team/multi:2'], out, { mirror: url, authorization: undefined, platforms: 'all', have: new Set(), timeoutMs: 5_000, dispatcher }, quiet(lines));
    out.end();
    await finished(out);

    const files = await tarContents(file);
    expect(JSON.parse(files.get('oci-layout')?.toString() ?? '')).toEqual({ imageLayoutVersion: '1.0.0' });
    const indexJson = JSON.parse(files.get('index.json')?.toString() ?? '') as { manifests: { digest: string; annotations: Record<string, string> }[] };
    expect(indexJson.manifests.map((m) => [m.annotations['org.opencontainers.image.ref.name'], m.digest])).toEqual([
      ['reg.example/team/app:1.0', image.digest],
      [`reg.example/team/app:${image.digest.replace(':', '-')}.sig`, signature.digest],
      ['team/multi:2', index.digest],
    ]);
    for (const fakeImage of [image, signature, index, amd64, arm64]) {
      expect(files.get(`blobs/sha256/${fakeImage.digest.slice(7)}`)?.equals(fakeImage.manifest)).toBe(true);
      for (const [digest, bytes] of fakeImage.blobs) expect(files.get(`blobs/sha256/${digest.slice(7)}`)?.equals(bytes)).toBe(true);
    }
    expect(summary).toMatchObject({ images: 2, manifests: 5, leftOut: 0 });
    // Through the cache: what was exported is now held by the mirror (once its fills are stored).
    await pg.cache.drain();
    for (const digest of [...image.blobs.keys(), ...arm64.blobs.keys()]) expect(pg.cache.lookup(digest)).toBeDefined();
    expect(lines[0]).toContain('"signatures":1');
  });

  it('limits an index to --platform and leaves out the blobs of --have, the manifests still naming them', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => fake.stop());
    const pg = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n`, { clock });
    cleanups.push(() => pg.close());
    const url = await pg.listen();
    const dispatcher = new Agent();
    cleanups.push(() => dispatcher.close());
    const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-export-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { index, amd64, arm64 } = addMultiArch(fake, 'team/multi', '2');
    const [armConfig, armLayer] = [...arm64.blobs.keys()];

    const file = path.join(dir, 'delta.tar');
    const out = createWriteStream(file);
    const summary = await exportBundle(['team/multi:2'], out, { mirror: url, authorization: undefined, platforms: parsePlatforms('linux/arm64'), have: new Set([armLayer ?? '']), timeoutMs: 5_000, dispatcher }, quiet());
    out.end();
    await finished(out);
    const files = await tarContents(file);
    expect(files.has(`blobs/sha256/${index.digest.slice(7)}`)).toBe(true);
    expect(files.has(`blobs/sha256/${arm64.digest.slice(7)}`)).toBe(true);
    expect(files.has(`blobs/sha256/${amd64.digest.slice(7)}`)).toBe(false);
    expect(files.has(`blobs/sha256/${(armConfig ?? '').slice(7)}`)).toBe(true);
    expect(files.has(`blobs/sha256/${(armLayer ?? '').slice(7)}`)).toBe(false);
    expect(summary).toMatchObject({ manifests: 2, blobs: 1, leftOut: 1 });
    // Left out means not fetched either.
    expect(fake.seen.some((s) => s.path.endsWith(armLayer ?? '-'))).toBe(false);
  });

  it('fails before writing a byte when an image cannot be read, naming it and what the mirror answered', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => fake.stop());
    const pg = harness(`defaultRegistry: reg.example\nregistries:\n  reg.example: { url: ${fake.origin} }\n`, { clock });
    cleanups.push(() => pg.close());
    const url = await pg.listen();
    const dispatcher = new Agent();
    cleanups.push(() => dispatcher.close());
    addSigned(fake, 'team/app', '1.0');
    const out = new PassThrough();
    let written = 0;
    out.on('data', (chunk: Buffer) => (written += chunk.length));
    await expect(
      exportBundle(['team/app:1.0', 'team/app:9.9'], out, { mirror: url, authorization: undefined, platforms: 'all', have: new Set(), timeoutMs: 5_000, dispatcher }, quiet()),
    ).rejects.toThrow(/^team\/app:9\.9: manifest 9\.9: the mirror answered 404 MANIFEST_UNKNOWN/);
    expect(written).toBe(0);
  });
});
