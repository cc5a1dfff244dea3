/** The digests a manifest refers to, split into child manifests (of an index) and blobs (config, layers). */
export interface ManifestReferences {
  manifests: string[];
  blobs: string[];
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function digests(list: unknown, field: string): string[] {
  if (!Array.isArray(list)) return [];
  const found: string[] = [];
  for (const item of list) {
    const digest = record(item)?.[field];
    if (typeof digest === 'string' && digest !== '') found.push(digest);
  }
  return found;
}

/**
 * Reads what a stored manifest refers to — an index's `manifests`, an image's `config` and `layers`, an
 * artifact's `blobs`, a schema 1 manifest's `fsLayers` — leniently: anything that does not parse refers to
 * nothing. A `subject` is not a reference here: removing a signature must not remove what it signs.
 */
export function manifestReferences(bytes: Buffer): ManifestReferences {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { manifests: [], blobs: [] };
  }
  const body = record(parsed);
  if (body === undefined) return { manifests: [], blobs: [] };
  const config = record(body.config)?.digest;
  return {
    manifests: digests(body.manifests, 'digest'),
    blobs: [
      ...(typeof config === 'string' && config !== '' ? [config] : []),
      ...digests(body.layers, 'digest'),
      ...digests(body.blobs, 'digest'),
      ...digests(body.fsLayers, 'blobSum'),
    ],
  };
}
