import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FakeImage, type FakeRegistry, makeImage, sha256 } from './fake-registry.js';
import { readTar } from '../../src/bundle/tar-reader.js';

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** An OCI image of `repository` for a platform (its config names it), tagged by its digest only. */
export function platformImage(repository: string, architecture: string, layers: Buffer[]): FakeImage {
  const config = Buffer.from(JSON.stringify({ architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }));
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

/** A two-platform index (amd64, arm64) tagged `tag`, its images added to the fake. */
export function addMultiArch(fake: FakeRegistry, repository: string, tag: string): { index: FakeImage; amd64: FakeImage; arm64: FakeImage } {
  const amd64 = fake.add(platformImage(repository, 'amd64', [randomBytes(40_000)]));
  const arm64 = fake.add(platformImage(repository, 'arm64', [randomBytes(30_000)]));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { mediaType: OCI_MANIFEST, digest: amd64.digest, size: amd64.manifest.length, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: OCI_MANIFEST, digest: arm64.digest, size: arm64.manifest.length, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    }),
  );
  const index = fake.add({ repository, tag, manifest, digest: sha256(manifest), mediaType: OCI_INDEX, blobs: new Map() });
  return { index, amd64, arm64 };
}

/** A single-platform image tagged `tag` with a cosign signature tag `sha256-<hex>.sig` attached to it. */
export function addSigned(fake: FakeRegistry, repository: string, tag: string, layers = 2, layerSize = 50_000): { image: FakeImage; signature: FakeImage } {
  const image = fake.add(makeImage(repository, tag, layers, layerSize));
  const signature = fake.add(makeImage(repository, `${image.digest.replace(':', '-')}.sig`, 1, 300));
  return { image, signature };
}

/** The entries of a tar file: name → bytes (test bundles are small). */
export async function tarContents(file: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for await (const entry of readTar(createReadStream(file))) {
    if (entry.type !== 'file') continue;
    const chunks: Buffer[] = [];
    for await (const chunk of entry.body) chunks.push(chunk);
    files.set(entry.name, Buffer.concat(chunks));
  }
  return files;
}
