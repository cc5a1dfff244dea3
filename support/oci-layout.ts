import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildTar } from './tar.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** An image written as an OCI image layout, with every blob kept in memory for comparisons. */
export interface BuiltImage {
  dir: string;
  tag: string;
  manifest: Buffer;
  manifestDigest: string;
  config: Descriptor;
  layers: Descriptor[];
  /** Every blob (config and layers) and the manifest, by digest. */
  blobs: Map<string, Buffer>;
}

export interface ImageSpec {
  tag: string;
  /** Seeds the random layer contents: same seed, same bytes, same digests. */
  seed: string;
  /** Size of the big random file in the first layer. */
  bigFileBytes: number;
  /** Sizes of further random files, one layer each, after the big one (default: none). */
  extraLayerBytes?: readonly number[];
}

export function sha256Digest(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Deterministic pseudo-random bytes: AES-CTR keystream keyed by the seed. */
export function deterministicBytes(seed: string, length: number): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

function hostPlatform(): { os: string; architecture: string } {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}

/** What goes into an image's config besides the layers' diff_ids: the runtime settings and labels. */
export interface ImageRuntimeConfig {
  Cmd: string[];
  Env: string[];
  Labels: Record<string, string>;
}

/**
 * Writes an image of the given uncompressed layer tars (gzipped, in order) and runtime config as an OCI image
 * layout in `dir`, the manifest tagged `tag` in index.json.
 */
export async function writeOciImage(dir: string, tag: string, tars: readonly Buffer[], runtime: ImageRuntimeConfig): Promise<BuiltImage> {
  const blobs = new Map<string, Buffer>();
  const blobDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  const putBlob = async (mediaType: string, data: Buffer): Promise<Descriptor> => {
    const digest = sha256Digest(data);
    blobs.set(digest, data);
    await writeFile(join(blobDir, digest.slice('sha256:'.length)), data);
    return { mediaType, digest, size: data.length };
  };

  const layers: Descriptor[] = [];
  for (const tar of tars) layers.push(await putBlob(OCI_LAYER_GZIP, gzipSync(tar, { level: 6 })));

  const configJson = {
    created: '2024-01-01T00:00:00Z',
    ...hostPlatform(),
    config: runtime,
    rootfs: { type: 'layers', diff_ids: tars.map(sha256Digest) },
    history: tars.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'pullgate e2e layout builder' })),
  };
  const config = await putBlob(OCI_CONFIG, Buffer.from(JSON.stringify(configJson)));

  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers }));
  const manifestDesc = await putBlob(OCI_MANIFEST, manifest);

  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ ...manifestDesc, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  };
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));

  return { dir, tag, manifest, manifestDigest: manifestDesc.digest, config, layers, blobs };
}

/**
 * Builds an image of one big random file, optional further random files and one small text file (one layer each)
 * as an OCI image layout in `dir`.
 */
export async function buildOciImage(dir: string, spec: ImageSpec): Promise<BuiltImage> {
  const tars = [
    buildTar([{ path: 'e2e' }, { path: 'e2e/big.bin', data: deterministicBytes(`${spec.seed}/big`, spec.bigFileBytes) }]),
    ...(spec.extraLayerBytes ?? []).map((bytes, i) =>
      buildTar([{ path: 'e2e' }, { path: `e2e/extra-${i}.bin`, data: deterministicBytes(`${spec.seed}/extra-${i}`, bytes) }]),
    ),
    buildTar([{ path: 'e2e' }, { path: 'e2e/hello.txt', data: Buffer.from(`hello from ${spec.seed}:${spec.tag}\n`) }]),
  ];
  return writeOciImage(dir, spec.tag, tars, { Cmd: ['/bin/sh'], Env: ['PATH=/usr/bin:/bin'], Labels: { 'e2e.seed': spec.seed } });
}
