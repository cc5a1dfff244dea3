import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type BuiltImage, sha256Digest } from './oci-layout.js';

/** What a client wrote into an OCI image layout: the tagged manifest digest and every blob file. */
export interface LayoutContents {
  manifestDigest: string | undefined;
  blobs: Map<string, Buffer>;
}

function isIndex(value: unknown): value is { manifests: { digest: string; annotations?: Record<string, string> }[] } {
  return typeof value === 'object' && value !== null && Array.isArray((value as { manifests?: unknown }).manifests);
}

/** Reads an OCI image layout (as `skopeo copy ... oci:dir:tag` writes it). */
export async function readLayout(dir: string, tag: string): Promise<LayoutContents> {
  const index: unknown = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
  if (!isIndex(index)) throw new Error(`${dir}/index.json has no manifests`);
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  const blobDir = join(dir, 'blobs', 'sha256');
  const blobs = new Map<string, Buffer>();
  for (const name of await readdir(blobDir)) {
    blobs.set(`sha256:${name}`, await readFile(join(blobDir, name)));
  }
  return { manifestDigest: entry?.digest, blobs };
}

/** Lists how `actual` blobs differ from the pushed image: missing, extra, or with other bytes. */
export function diffBlobs(expected: BuiltImage, actual: ReadonlyMap<string, Buffer>): string[] {
  const problems: string[] = [];
  for (const [digest, bytes] of expected.blobs) {
    const got = actual.get(digest);
    if (got === undefined) problems.push(`missing ${digest}`);
    else if (!got.equals(bytes)) problems.push(`${digest}: got ${got.length} bytes hashing to ${sha256Digest(got)}`);
    else if (sha256Digest(got) !== digest) problems.push(`${digest}: file content does not hash to its name`);
  }
  for (const digest of actual.keys()) {
    if (!expected.blobs.has(digest)) problems.push(`unexpected blob ${digest}`);
  }
  return problems;
}
