import type { Readable } from 'node:stream';

/** What a store knows about one stored object. */
export interface ContentInfo {
  digest: string;
  size: number;
  /** When the object was written (or, in a store that refreshes it on read, last refreshed), in ms. */
  modifiedAt: number;
}

/**
 * `created`: this call made the object appear; `exists`: it was already there (another writer won). A store
 * that publishes by replacing (the filesystem's) says `exists` when the object was there before the put;
 * writers racing it may each say `created`, and one intact object remains either way.
 */
export type PutOutcome = 'created' | 'exists';

/** Bytes `start`..`end`, both inclusive, as in an HTTP Range. */
export interface ByteRange {
  start: number;
  end: number;
}

/** One page of a listing in digest order; `next` is the cursor of the following page, if any. */
export interface ContentPage {
  items: ContentInfo[];
  next: string | undefined;
}

/**
 * Verified blobs and manifests by digest. Callers verify content before they put it; a store makes an
 * object visible only once it is complete (never a half object under its digest), and two writers of
 * the same digest leave exactly one intact object. Implementations: filesystem (the local tier), S3 (the shared tier).
 */
export interface ContentStore {
  /** Where the content lives, for messages and `cache stats` (`/var/cache/pullgate`, `s3://bucket/prefix/`). */
  readonly location: string;
  /**
   * Stores the verified content of a local file of `size` bytes. With `move`, the store may take the
   * file (rename it into place) and the caller must not use it afterwards; without, the file is left as it is.
   */
  putFile(digest: string, file: string, size: number, options?: { move?: boolean }): Promise<PutOutcome>;
  /** Stores small verified content (a manifest) from memory. */
  putBytes(digest: string, bytes: Buffer): Promise<PutOutcome>;
  /** The object's bytes (all, or an inclusive range within it) as a stream; undefined when it is not stored. */
  openRead(digest: string, range?: ByteRange): Promise<Readable | undefined>;
  stat(digest: string): Promise<ContentInfo | undefined>;
  /**
   * Notes that the object was read, so an age-based space policy keeps it: its `modifiedAt` becomes
   * now. Resolves false when the object is not there.
   */
  refresh(digest: string): Promise<boolean>;
  /** Removes the object; nothing happens when it is not there. */
  delete(digest: string): Promise<void>;
  /** Up to `limit` objects in digest order, starting after the cursor `after`. */
  list(options?: { after?: string; limit?: number }): Promise<ContentPage>;
  /** Releases connections; the store is not used afterwards. */
  close(): Promise<void>;
}

/**
 * Repository links kept beside shared content: that upstream confirmed (registry, repository) may see
 * a digest, recorded by whichever replica confirmed it, so the others need not ask upstream again.
 */
export interface LinkStore {
  isLinked(registry: string, repository: string, digest: string): Promise<boolean>;
  link(registry: string, repository: string, digest: string): Promise<void>;
}

/**
 * A store on this host's disk that the cache also uses synchronously: a manifest read on the hot path and a
 * fill's commit must not wait a turn of the event loop. A publish replaces what is at the digest's path
 * (atomically, by rename), so a verified fill also repairs a damaged file there.
 */
export interface LocalContentStore extends ContentStore {
  /** The storage directory (`storage.path`), holding `blobs/`, `tmp/` and the index. */
  readonly root: string;
  readonly blobsDir: string;
  /** Creates the storage directory, `blobs/` and `tmp/` where missing; returns what it created. Throws when it cannot. */
  ensureLayout(): string[];
  /** Writes and removes a small file under `tmp/`; throws when storage cannot be written. */
  probeSync(): void;
  /** The same probe without blocking the event loop (for /readyz). */
  probe(): Promise<void>;
  /** Where a digest's file lives. */
  pathOf(digest: string): string;
  /** A fresh temp path under `tmp/` for staging content of `digest`. */
  tempPath(digest: string): string;
  /** Moves a verified temp file into place (atomic within one filesystem), replacing what was there. */
  commit(tempPath: string, digest: string): void;
  /** Writes small verified content (a manifest) durably: temp file, fdatasync, rename into place. */
  putBytesSync(digest: string, bytes: Buffer): void;
  /** Small stored content whose size the index knows; undefined when the file is shorter; throws ENOENT when it is gone. */
  readExactly(digest: string, size: number): Buffer | undefined;
  exists(digest: string): boolean;
  /** Removes a stored file; nothing happens when it is not there. */
  deleteSync(digest: string): void;
  /** Deletes temp files left by a crash; returns how many. */
  removeTemps(): number;
  /** Removes a temp file if it still exists. */
  discard(tempPath: string): void;
}

/** A store that can hand out time-limited URLs that read an object without credentials (S3). */
export interface Presigner {
  presignedUrl(digest: string, expiresInSeconds: number): Promise<string>;
}

/** True when a content store can presign reads. */
export function presigns(store: ContentStore): store is ContentStore & Presigner {
  return 'presignedUrl' in store;
}

/** True when a content store also keeps repository links. */
export function keepsLinks(store: ContentStore): store is ContentStore & LinkStore {
  return 'isLinked' in store && 'link' in store;
}

/** Default page size of `list`. */
export const DEFAULT_PAGE = 1000;

/** Every object of a store in digest order, page by page. */
export async function* listAll(store: ContentStore, pageSize = DEFAULT_PAGE): AsyncGenerator<ContentInfo> {
  let after: string | undefined;
  do {
    const page = await store.list({ after, limit: pageSize });
    yield* page.items;
    after = page.next;
  } while (after !== undefined);
}

/** `sha256:<hex>` → [`sha256`, `<hex>`]; throws on anything that could escape a path or key. */
export function splitDigest(digest: string): [algorithm: string, hex: string] {
  const match = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/.exec(digest);
  if (match === null || match[1] === undefined || match[2] === undefined) throw new Error(`not a digest: ${JSON.stringify(digest)}`);
  return [match[1], match[2]];
}
