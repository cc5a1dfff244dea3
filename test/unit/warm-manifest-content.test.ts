import { describe, expect, it } from 'vitest';
import { chooseEntries, configPlatform, hostPlatform, manifestContent, parsePlatforms, platformSummary, type IndexEntry } from '../../src/warm/manifest-content.js';

const d = (c: string): string => `sha256:${c.repeat(64)}`;
const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

describe('warm: manifest content', () => {
  it('lists config and layers once each, leaving out foreign layers', () => {
    const content = manifestContent(
      json({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: { digest: d('c'), size: 10 },
        layers: [
          { digest: d('a'), size: 100 },
          { digest: d('f'), size: 5, urls: ['https://go.microsoft.com/fwlink/?linkid=1'] },
          { digest: d('a'), size: 100 },
          { digest: d('b'), size: 200 },
        ],
      }),
      'application/vnd.docker.distribution.manifest.v2+json',
    );
    expect(content).toEqual({
      kind: 'image',
      blobs: [
        { digest: d('c'), size: 10 },
        { digest: d('a'), size: 100 },
        { digest: d('b'), size: 200 },
      ],
      config: d('c'),
      skipped: [d('f')],
    });
  });

  it('reads schema 1 blobSums and index entries with their platforms', () => {
    expect(manifestContent(json({ schemaVersion: 1, fsLayers: [{ blobSum: d('1') }, { blobSum: d('2') }, { blobSum: d('1') }] }), undefined)).toEqual({
      kind: 'image',
      blobs: [
        { digest: d('1'), size: undefined },
        { digest: d('2'), size: undefined },
      ],
      skipped: [],
    });
    expect(manifestContent(json({ manifests: [{ digest: d('9'), mediaType: 'x', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }, { digest: d('8') }] }), undefined)).toEqual({
      kind: 'index',
      entries: [
        { digest: d('9'), mediaType: 'x', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
        { digest: d('8'), mediaType: undefined, platform: undefined },
      ],
    });
  });

  it('refuses what is not a manifest, with the reason', () => {
    expect(() => manifestContent(Buffer.from('<html>'), 'text/html')).toThrow('the manifest is not JSON');
    expect(() => manifestContent(json([1]), undefined)).toThrow('the manifest is not a JSON object');
    expect(() => manifestContent(json({ schemaVersion: 2 }), undefined)).toThrow('the manifest has neither manifests, layers nor a config');
    expect(() => manifestContent(json({ layers: [{ size: 1 }] }), undefined)).toThrow('layers[0] has no digest');
  });
});

describe('warm: platforms', () => {
  const entries: IndexEntry[] = [
    { digest: d('1'), mediaType: undefined, platform: { os: 'linux', architecture: 'amd64' } },
    { digest: d('2'), mediaType: undefined, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
    { digest: d('3'), mediaType: undefined, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    { digest: d('4'), mediaType: undefined, platform: { os: 'unknown', architecture: 'unknown' } },
  ];

  it('parses os/arch[/variant] lists and all, and rejects anything else', () => {
    expect(parsePlatforms('all')).toBe('all');
    expect(parsePlatforms('linux/amd64, linux/arm/v7')).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ]);
    for (const bad of ['amd64', 'linux/', 'linux/arm/v7/x', 'linux/arm/']) expect(() => parsePlatforms(bad)).toThrow(/is not os\/arch\[\/variant\]/);
  });

  it('chooses entries by platform, any variant when none is asked, and says what an index has', () => {
    expect(chooseEntries(entries, [{ os: 'linux', architecture: 'arm', variant: 'v7' }]).map((e) => e.digest)).toEqual([d('3')]);
    expect(chooseEntries(entries, [{ os: 'linux', architecture: 'arm' }, { os: 'linux', architecture: 'amd64' }]).map((e) => e.digest)).toEqual([d('2'), d('3'), d('1')]);
    expect(chooseEntries(entries, 'all')).toHaveLength(4);
    expect(() => chooseEntries(entries, [{ os: 'windows', architecture: 'amd64' }])).toThrow('no windows/amd64 manifest in this index (it has linux/amd64, linux/arm/v6, linux/arm/v7)');
  });

  it('names a few platforms in full and summarises many as a count, the first four and how many more', () => {
    expect(platformSummary(['linux/amd64', 'linux/arm64'])).toBe('linux/amd64, linux/arm64');
    expect(platformSummary(['a/1', 'a/2', 'a/3', 'a/4', 'a/5'])).toBe('a/1, a/2, a/3, a/4, a/5');
    const many = Array.from({ length: 500 }, (_, i) => `linux/arch${i}`);
    expect(platformSummary(many)).toBe('500 platforms: linux/arch0, linux/arch1, linux/arch2, linux/arch3 and 496 more');
    expect(platformSummary([])).toBe('');
  });

  it("reads an image config's platform, and none from an artifact's config", () => {
    expect(configPlatform(json({ os: 'linux', architecture: 'arm', variant: 'v7', rootfs: {} }))).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(configPlatform(json({ name: 'chart', version: '1.0.0' }))).toBeUndefined();
    expect(configPlatform(Buffer.from('not json'))).toBeUndefined();
  });

  it("maps Node's architecture names to OCI's", () => {
    expect(hostPlatform('x64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(hostPlatform('arm64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(hostPlatform('ia32')).toEqual({ os: 'linux', architecture: '386' });
  });
});
