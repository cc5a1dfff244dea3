import { parseImageRef } from '../doctor/image-ref.js';
import { describeError } from '../core/errors.js';
import { type PlatformChoice, chooseEntries, manifestContent } from '../warm/manifest-content.js';
import type { BundleEntry } from './oci-layout.js';
import { type MirrorClient, type MirrorManifest, MirrorRequestFailed } from './mirror-client.js';

/** Indexes nested deeper than this are refused (real images nest at most once). */
const MAX_INDEX_DEPTH = 4;
/** cosign's tags for what is attached to `sha256:<hex>`: signatures and attestations. */
const COSIGN_SUFFIXES = ['sig', 'att'] as const;

/** An image could not be planned for export; the message names the image and what failed. */
export class ExportFailed extends Error {}

/** What one requested image puts in the bundle: its manifests (in memory: they are small) and its blobs. */
export interface ImagePlan {
  image: string;
  /** Entries of index.json: the image and each cosign tag attached to it. */
  entries: BundleEntry[];
  manifests: Map<string, MirrorManifest>;
  /** Blob digest → size from its descriptor, when the descriptor names one. */
  blobs: Map<string, number | undefined>;
  platforms: number;
}

/** Walks a manifest through the mirror: every child of the chosen platforms, and the blobs each image needs. */
async function walk(client: MirrorClient, plan: ImagePlan, reference: string, choice: PlatformChoice, depth: number): Promise<MirrorManifest> {
  const manifest = await client.manifest(reference);
  plan.manifests.set(manifest.digest, manifest);
  const content = manifestContent(manifest.bytes, manifest.mediaType);
  if (content.kind === 'image') {
    for (const blob of content.blobs) plan.blobs.set(blob.digest, blob.size);
    if (depth <= 1) plan.platforms += 1;
    return manifest;
  }
  if (depth >= MAX_INDEX_DEPTH) throw new Error(`manifest ${reference}: indexes nested more than ${MAX_INDEX_DEPTH} deep`);
  for (const entry of chooseEntries(content.entries, depth === 0 ? choice : 'all')) await walk(client, plan, entry.digest, 'all', depth + 1);
  return manifest;
}

/**
 * Plans one image of an export: fetches its manifests through the mirror (which caches them), the
 * chosen platforms of an index, and the cosign `.sig`/`.att` tags of its digest (absent ones are
 * skipped; `warn` hears of one the mirror could not answer).
 */
export async function planImage(image: string, client: (name: string) => MirrorClient, choice: PlatformChoice, warn: (text: string) => void): Promise<ImagePlan> {
  const { name, reference } = parseImageRef(image);
  const mirror = client(name);
  const plan: ImagePlan = { image, entries: [], manifests: new Map(), blobs: new Map(), platforms: 0 };
  let top: MirrorManifest;
  try {
    top = await walk(mirror, plan, reference, choice, 0);
  } catch (err) {
    throw new ExportFailed(`${image}: ${describeError(err)}`);
  }
  plan.entries.push({ ref: image, digest: top.digest, mediaType: top.mediaType, size: top.bytes.length });
  const platforms = plan.platforms;
  const [algorithm, hex] = top.digest.split(':');
  for (const suffix of COSIGN_SUFFIXES) {
    const tag = `${algorithm}-${hex}.${suffix}`;
    try {
      const attached = await walk(mirror, plan, tag, 'all', 0);
      plan.entries.push({ ref: `${name}:${tag}`, digest: attached.digest, mediaType: attached.mediaType, size: attached.bytes.length });
    } catch (err) {
      if (err instanceof MirrorRequestFailed && err.status === 404) continue;
      warn(`cosign tag ${tag} left out: ${describeError(err)}`);
    }
  }
  plan.platforms = platforms;
  return plan;
}
