import type { Cache, CachedManifest } from '../cache/cache.js';
import { manifestReferences } from '../cache/manifest-references.js';
import { parseImageRef } from '../doctor/image-ref.js';
import { describeError } from '../core/errors.js';
import { MAX_MANIFEST_BYTES, validateManifest } from '../proxy/manifest-validate.js';
import { looksLikeDigest } from '../routing/reference.js';
import type { Route } from '../routing/route.js';
import { readBody } from '../upstream/http.js';
import { INDEX_FILE, MAX_INDEX_BYTES, REF_NAME, digestOfPath, parseIndexJson } from './oci-layout.js';
import { StagingArea } from './staging.js';
import { readTar } from './tar-reader.js';
import { Readable } from 'node:stream';

/** Indexes nested deeper than this are refused (real images nest at most once). */
const MAX_INDEX_DEPTH = 4;

/** A bundle that cannot be read at all (not a tar, no index.json). */
export class BundleUnreadable extends Error {}

export interface ImportOptions {
  /** Where a reference's name goes: the far side's own routing (its registries and aliases). */
  route: (name: string) => Route;
  /** Milliseconds, for the tags' validation and import times. */
  now: () => number;
  /** Keep each imported image's digests out of eviction until `cache unpin REF`. */
  pin?: boolean;
}

/** What happened to one image of the bundle. */
export interface ImageImport {
  ref: string;
  imported: boolean;
  /** Why it was refused, naming the digest and the image. */
  reason?: string;
  manifests: number;
  blobs: number;
  /** Child manifests of an index that the bundle does not carry (exported with --platform). */
  platformsLeftOut: number;
}

export interface ImportEvents {
  /** Tar bytes read so far. */
  progress(bytes: number): void;
}

export interface ImportResult {
  images: ImageImport[];
  /** Blobs written to the staging area (and moved into the cache when their image was published). */
  staged: number;
  stagedBytes: number;
  /** Blobs of the bundle the cache already held: skipped, not copied. */
  alreadyHeld: number;
}

/** An image whose every manifest and blob is verified and present: what publishing it writes. */
interface VerifiedImage {
  outcome: ImageImport;
  route: Route;
  /** The tag or digest of the reference, as `cache unpin` names it. */
  reference: string;
  tag: string | undefined;
  /** Children first, the top manifest last. */
  manifests: CachedManifest[];
  blobs: Set<string>;
}

class Refused extends Error {}

function mediaTypeOf(bytes: Buffer, named: string | undefined, digest: string): string {
  try {
    return validateManifest(bytes, named ?? 'application/json', undefined, { registry: 'the bundle', what: `manifest ${digest}` });
  } catch (err) {
    throw new Refused(`manifest ${digest} is not a usable manifest (${describeError(err)})`);
  }
}

/** Reads a bundle's tar: index.json into memory, each blob the cache lacks into the staging area (verified). */
async function readBundle(chunks: AsyncIterable<Buffer>, cache: Cache, staging: StagingArea, events: ImportEvents, result: ImportResult): Promise<Buffer> {
  let index: Buffer | undefined;
  let read = 0;
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      read += chunk.length;
      events.progress(read);
      yield chunk;
    }
  };
  try {
    for await (const entry of readTar(counted())) {
      if (entry.type !== 'file') continue;
      if (entry.name === INDEX_FILE) {
        index = await readBody(Readable.from(entry.body), MAX_INDEX_BYTES);
        continue;
      }
      const digest = digestOfPath(entry.name);
      if (digest === undefined || staging.staged.has(digest)) continue;
      if (cache.lookup(digest) !== undefined) {
        // Held already: checked, but nothing is copied.
        if (await staging.verify(digest, entry.body)) result.alreadyHeld += 1;
        continue;
      }
      if (await staging.stage(digest, entry.body)) {
        result.staged += 1;
        result.stagedBytes += entry.size;
      }
    }
  } catch (err) {
    throw new BundleUnreadable(`the bundle is not a readable tar: ${describeError(err)}`);
  }
  if (index === undefined) throw new BundleUnreadable('the bundle has no index.json (not an OCI image layout)');
  return index;
}

/** Checks one image against what was staged and what the cache holds; throws Refused naming the first problem. */
async function verifyImage(cache: Cache, staging: StagingArea, entry: { ref: string | undefined; digest: string; mediaType: string | undefined }, route: (name: string) => Route): Promise<VerifiedImage> {
  const ref = entry.ref ?? entry.digest;
  const outcome: ImageImport = { ref, imported: false, manifests: 0, blobs: 0, platformsLeftOut: 0 };
  if (entry.ref === undefined) throw new Refused(`index.json names ${entry.digest} without ${REF_NAME}: nothing says which repository it belongs to`);
  const { name, reference } = parseImageRef(entry.ref);
  let target: Route;
  try {
    target = route(name);
  } catch (err) {
    throw new Refused(describeError(err));
  }
  if (looksLikeDigest(reference) && reference !== entry.digest) throw new Refused(`${entry.ref} names ${reference} but index.json points at ${entry.digest}`);
  const verified: VerifiedImage = { outcome, route: target, reference, tag: looksLikeDigest(reference) ? undefined : reference, manifests: [], blobs: new Set() };
  const seen = new Set<string>();
  const manifestBytes = async (digest: string): Promise<Buffer | undefined> => {
    const bad = staging.bad.get(digest);
    if (bad !== undefined) throw new Refused(`manifest ${digest} does not match its digest (its content has ${bad})`);
    return (await staging.read(digest)) ?? cache.manifest(digest)?.bytes;
  };
  const visit = async (digest: string, mediaType: string | undefined, depth: number, optional: boolean): Promise<void> => {
    if (seen.has(digest)) return;
    seen.add(digest);
    const bytes = await manifestBytes(digest);
    if (bytes === undefined) {
      if (optional) {
        outcome.platformsLeftOut += 1;
        return;
      }
      throw new Refused(`manifest ${digest} is neither in the bundle nor in this cache`);
    }
    if (bytes.length > MAX_MANIFEST_BYTES) throw new Refused(`manifest ${digest} is larger than ${MAX_MANIFEST_BYTES} bytes`);
    const type = mediaTypeOf(bytes, mediaType, digest);
    const refs = manifestReferences(bytes);
    if (refs.manifests.length > 0 && depth >= MAX_INDEX_DEPTH) throw new Refused(`manifest ${digest}: indexes nested more than ${MAX_INDEX_DEPTH} deep`);
    const children = childTypes(bytes);
    // A child of an index that the bundle lacks is a platform left out (export --platform), not damage.
    for (const child of refs.manifests) await visit(child, children.get(child), depth + 1, true);
    for (const blob of refs.blobs) {
      const bad = staging.bad.get(blob);
      if (bad !== undefined) throw new Refused(`blob ${blob} does not match its digest (its content has ${bad})`);
      if (!staging.staged.has(blob) && cache.lookup(blob) === undefined) throw new Refused(`blob ${blob} is neither in the bundle nor in this cache`);
      verified.blobs.add(blob);
    }
    verified.manifests.push({ digest, mediaType: type, bytes });
  };
  await visit(entry.digest, entry.mediaType, 0, false);
  outcome.manifests = verified.manifests.length;
  outcome.blobs = verified.blobs.size;
  return verified;
}

/** The media types an index's descriptors name for its children. */
function childTypes(bytes: Buffer): Map<string, string> {
  const types = new Map<string, string>();
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { manifests?: unknown };
    if (!Array.isArray(parsed.manifests)) return types;
    for (const item of parsed.manifests as unknown[]) {
      if (item === null || typeof item !== 'object') continue;
      const { digest, mediaType } = item as { digest?: unknown; mediaType?: unknown };
      if (typeof digest === 'string' && typeof mediaType === 'string') types.set(digest, mediaType);
    }
  } catch {
    // validated before: not reached
  }
  return types;
}

/** Moves a verified image's staged blobs into the cache, links the held ones, stores its manifests (children first), then its tag. */
function publish(cache: Cache, staging: StagingArea, image: VerifiedImage, now: number, pin: boolean): void {
  const { registry, repository } = image.route;
  for (const digest of image.blobs) {
    const staged = staging.staged.get(digest);
    if (staged !== undefined && !staged.adopted) {
      if (!cache.adoptBlob(staged.file, digest, staged.size, registry, repository)) throw new Refused(`blob ${digest} could not be stored (storage is failing: see the log)`);
      staged.adopted = true;
    } else {
      cache.link(registry, repository, digest);
    }
  }
  for (const manifest of image.manifests) cache.putManifest(manifest, registry, repository);
  if (pin) cache.index.pin(registry, repository, image.reference, [...image.blobs, ...image.manifests.map((m) => m.digest)]);
  const top = image.manifests[image.manifests.length - 1];
  if (image.tag !== undefined && top !== undefined) cache.putTag(registry, repository, image.tag, { digest: top.digest, media_type: top.mediaType, validated_at: now, imported_at: now });
}

/**
 * `pullgate import`: reads a bundle (an OCI layout tar from `pullgate export` or `skopeo copy … oci-archive:`),
 * writing each blob the cache lacks to a staging area while verifying it, then checks every image named in
 * index.json — each manifest and blob present (in the bundle or already in the cache) and matching its digest
 * — before publishing any of it: an image with one bad or missing blob is refused whole, the others go in.
 * Its tag is recorded as imported, so it is served when the upstream is unreachable however old it gets.
 */
export async function importBundle(chunks: AsyncIterable<Buffer>, cache: Cache, options: ImportOptions, events: ImportEvents): Promise<ImportResult> {
  const staging = await StagingArea.create(cache.store.root);
  const result: ImportResult = { images: [], staged: 0, stagedBytes: 0, alreadyHeld: 0 };
  try {
    const indexBytes = await readBundle(chunks, cache, staging, events, result);
    let entries: ReturnType<typeof parseIndexJson>;
    try {
      entries = parseIndexJson(indexBytes);
    } catch (err) {
      throw new BundleUnreadable(describeError(err));
    }
    const verified: VerifiedImage[] = [];
    for (const entry of entries) {
      try {
        verified.push(await verifyImage(cache, staging, entry, options.route));
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        result.images.push({ ref: entry.ref ?? entry.digest, imported: false, reason: err.message, manifests: 0, blobs: 0, platformsLeftOut: 0 });
      }
    }
    const now = options.now();
    for (const image of verified) {
      try {
        publish(cache, staging, image, now, options.pin === true);
        image.outcome.imported = true;
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        image.outcome.reason = err.message;
      }
      result.images.push(image.outcome);
    }
    return result;
  } finally {
    await staging.remove();
  }
}
