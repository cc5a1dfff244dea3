/**
 * The OCI image layout as a bundle holds it (image-spec `image-layout.md`): `oci-layout`, `index.json`
 * naming each image with `org.opencontainers.image.ref.name`, and `blobs/<algorithm>/<hex>`.
 */

export const REF_NAME = 'org.opencontainers.image.ref.name';
export const LAYOUT_FILE = 'oci-layout';
export const INDEX_FILE = 'index.json';
export const LAYOUT_BYTES = Buffer.from(`${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`);
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
/** index.json is a few hundred bytes per image; anything this large is not one. */
export const MAX_INDEX_BYTES = 16 * 1024 * 1024;

/** One image of a bundle: its top manifest and the reference it was exported as. */
export interface BundleEntry {
  ref: string;
  digest: string;
  mediaType: string;
  size: number;
}

/** The tar path of a digest's blob. */
export function blobPath(digest: string): string {
  const [algorithm = 'sha256', hex = ''] = digest.split(':');
  return `blobs/${algorithm}/${hex}`;
}

/** The digest a tar path names, when it is a blob of the layout (`blobs/sha256/<64 hex>`). */
export function digestOfPath(name: string): string | undefined {
  const match = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(name);
  if (match === null) return undefined;
  const [, algorithm, hex = ''] = match;
  return hex.length === (algorithm === 'sha256' ? 64 : 128) ? `${algorithm}:${hex}` : undefined;
}

/** index.json for these images, each with its reference as given. */
export function indexJson(entries: readonly BundleEntry[]): Buffer {
  const manifests = entries.map((e) => ({ mediaType: e.mediaType, digest: e.digest, size: e.size, annotations: { [REF_NAME]: e.ref } }));
  return Buffer.from(`${JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }, null, 2)}\n`);
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/**
 * The images an index.json names. An entry without a reference name (skopeo wrote one without `:REF`)
 * is returned with `ref` undefined, so the importer can say which one it cannot place.
 */
export function parseIndexJson(bytes: Buffer): { ref: string | undefined; digest: string; mediaType: string | undefined; size: number | undefined }[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error('index.json is not JSON');
  }
  const manifests = record(parsed)?.manifests;
  if (!Array.isArray(manifests)) throw new Error('index.json has no manifests list');
  return manifests.map((item, i) => {
    const entry = record(item);
    const digest = entry?.digest;
    if (typeof digest !== 'string' || !/^(sha256|sha512):[a-f0-9]+$/.test(digest)) throw new Error(`index.json: manifests[${i}] has no valid digest`);
    const ref = record(entry?.annotations)?.[REF_NAME];
    return {
      ref: typeof ref === 'string' && ref !== '' ? ref : undefined,
      digest,
      mediaType: typeof entry?.mediaType === 'string' ? entry.mediaType : undefined,
      size: typeof entry?.size === 'number' ? entry.size : undefined,
    };
  });
}
