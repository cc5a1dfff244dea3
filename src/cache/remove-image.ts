import type { BlobRow, CacheIndex, TagName } from '../storage/cache-index.js';
import type { ContentStore } from '../storage/content-store.js';
import { manifestReferences } from './manifest-references.js';

/** What `cache rm` names: a tag or a manifest digest of a repository of a configured registry. */
export interface RemovalTarget {
  registry: string;
  repository: string;
  kind: 'tag' | 'digest';
  reference: string;
}

/** What a removal did: rows and files dropped, and the cached content it kept because something else still uses it. */
export interface Removal {
  /** False when neither the tag nor the manifest was cached (nothing was changed). */
  found: boolean;
  /** The tag row that was dropped, when a tag was named. */
  tag: TagName | undefined;
  /** The manifest the tag pointed at, or the digest named. */
  digest: string | undefined;
  removed: BlobRow[];
  /** Digests that would have gone but stay, each with why (another tag, another cached manifest). */
  kept: { digest: string; reason: string }[];
  freedBytes: number;
}

/** The parts of the cache a removal works on: the index (rows, tags) and the local store (files). */
export interface RemovalParts {
  index: CacheIndex;
  store: ContentStore;
}

function tagName(name: TagName): string {
  return `${name.registry}/${name.repository}:${name.tag}`;
}

async function readManifest(store: ContentStore, digest: string): Promise<Buffer | undefined> {
  const stream = await store.openRead(digest);
  if (stream === undefined) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}

async function referencesOf(store: ContentStore, digest: string): Promise<string[]> {
  const bytes = await readManifest(store, digest);
  if (bytes === undefined) return [];
  const refs = manifestReferences(bytes);
  return [...refs.manifests, ...refs.blobs];
}

/**
 * `cache rm`: drops a tag (`tagOnly`: only the tag row, so the next pull asks upstream again), else also
 * its manifest and the child manifests and blobs that only it references. A digest another tag points
 * at, or another cached manifest refers to, stays (and is reported as kept). Rows go in one index
 * transaction first, then the files, as eviction does, so it is safe beside a server on the same storage.
 */
export async function removeImage(parts: RemovalParts, target: RemovalTarget, options: { tagOnly: boolean }): Promise<Removal> {
  const { index, store } = parts;
  const result: Removal = { found: false, tag: undefined, digest: undefined, removed: [], kept: [], freedBytes: 0 };
  let root: string;
  if (target.kind === 'tag') {
    const row = index.tag(target.registry, target.repository, target.reference);
    if (row === undefined) return result;
    result.tag = { registry: target.registry, repository: target.repository, tag: target.reference };
    index.deleteTag(target.registry, target.repository, target.reference);
    result.found = true;
    root = row.digest;
  } else {
    root = target.reference;
  }
  result.digest = root;
  if (options.tagOnly) return result;
  const rootRow = index.blob(root);
  if (rootRow?.kind !== 'manifest') return result;
  result.found = true;

  // What the image consists of: the manifest, its child manifests (an index) and every blob below them.
  const candidates = new Map<string, BlobRow>();
  const refsOf = new Map<string, string[]>();
  const queue = [root];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    if (candidates.has(next)) continue;
    const row = index.blob(next);
    if (row === undefined) continue;
    candidates.set(next, row);
    if (row.kind !== 'manifest') continue;
    const refs = await referencesOf(store, next);
    refsOf.set(next, refs);
    queue.push(...refs);
  }

  // What must stay: manifests of the image another tag still names, and whatever another cached manifest refers to.
  const kept = new Map<string, string>();
  for (const [digest, row] of candidates) {
    if (row.kind !== 'manifest') continue;
    const tags = index.tagsOf(digest);
    if (tags.length > 0) kept.set(digest, `still tagged ${tags.map(tagName).join(', ')}`);
  }
  for (const row of index.rows('digest')) {
    if (row.kind !== 'manifest' || candidates.has(row.digest)) continue;
    for (const ref of await referencesOf(store, row.digest)) {
      if (candidates.has(ref) && !kept.has(ref)) kept.set(ref, `referenced by cached manifest ${row.digest}`);
    }
  }
  // A kept manifest keeps what it refers to.
  const keptManifests = [...kept.keys()];
  for (let digest = keptManifests.shift(); digest !== undefined; digest = keptManifests.shift()) {
    for (const ref of refsOf.get(digest) ?? []) {
      if (!candidates.has(ref) || kept.has(ref)) continue;
      kept.set(ref, `referenced by kept manifest ${digest}`);
      keptManifests.push(ref);
    }
  }

  const doomed = [...candidates.values()].filter((row) => !kept.has(row.digest));
  const deleted = new Set(index.deleteBlobs(doomed.map((row) => row.digest).sort()));
  for (const row of doomed) {
    if (!deleted.has(row.digest)) continue;
    await store.delete(row.digest);
    result.removed.push(row);
    result.freedBytes += row.size;
  }
  result.kept = [...kept].map(([digest, reason]) => ({ digest, reason }));
  return result;
}
