import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { PerKeyInterval } from '../util/per-key-interval.js';
import type { Config } from '../config/config.js';
import type { Clock } from '../core/deps.js';
import { digestAlgorithm } from '../routing/reference.js';
import { type ContentStore, keepsLinks, presigns } from '../storage/content-store.js';
import { createContentStore, sharedStoreSpec } from '../storage/factory.js';

/** The largest manifest read back from the shared store (as for upstream manifests). */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** A manifest's media type from its own JSON (`mediaType`, else the shape an OCI index or manifest has). */
export function mediaTypeOf(bytes: Buffer): string | undefined {
  let document: unknown;
  try {
    document = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof document !== 'object' || document === null) return undefined;
  if ('mediaType' in document && typeof document.mediaType === 'string' && document.mediaType !== '') return document.mediaType;
  return 'manifests' in document ? OCI_INDEX : OCI_MANIFEST;
}

/** The shared store as /readyz reports it. */
export interface SharedStatus {
  location: string;
  reachable: boolean;
  /** Why not, when it is not (no secret: the SDK's message, e.g. `connect ECONNREFUSED 10.0.0.5:7480`). */
  reason?: string;
}

/** A digest no one stores: asking for it shows whether the store answers at all. */
const PROBE_DIGEST = `sha256:${'0'.repeat(64)}`;
/** Lifetime of a presigned blob URL: long enough for a client to start the GET, short enough not to be shared. */
const REDIRECT_SECONDS = 300;
/** How long a probe's answer is reused (readiness probes come every few seconds from every kubelet). */
const PROBE_REUSE_MS = 5_000;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The shared store behind the local disk (S3 when `storage.s3` is set), as the cache uses it:
 * verified content goes up after it is stored locally, a local miss may be filled from it, and
 * repository links recorded by any replica are read back. A failing shared store never fails a
 * request: every method logs and answers "not there", so pulls go on from upstream.
 */
export class SharedTier {
  /**
   * Digests whose read time was written to the store within a quarter of `maxAge`, so hot blobs refresh
   * rarely; undefined without `maxAge` (reads are not noted).
   */
  private readonly refreshed: PerKeyInterval<string> | undefined;

  private lastProbe: { at: number; status: Promise<SharedStatus> } | undefined;

  constructor(
    readonly store: ContentStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    /** `storage.s3.maxAge`: objects not read for this long may be deleted, so reads are noted at a quarter of it. */
    maxAgeMs: number | undefined,
    /** `storage.s3.redirect`: blob GETs are answered with a presigned URL of the store. */
    readonly redirect = false,
  ) {
    this.refreshed = maxAgeMs === undefined ? undefined : new PerKeyInterval(100_000, maxAgeMs / 4);
  }

  /**
   * A presigned URL (valid REDIRECT_SECONDS) for a blob the store holds, for a 307; undefined when
   * redirects are off, the store cannot presign, does not hold the digest, or fails.
   */
  async redirectUrl(digest: string): Promise<string | undefined> {
    if (!this.redirect || !presigns(this.store)) return undefined;
    try {
      if ((await this.store.stat(digest)) === undefined) return undefined;
      const url = await this.store.presignedUrl(digest, REDIRECT_SECONDS);
      this.noteRead(digest);
      return url;
    } catch (err) {
      this.logger.warn({ digest, store: this.location, err: message(err) }, 'could not presign a shared blob; serving it here');
      return undefined;
    }
  }

  get location(): string {
    return this.store.location;
  }

  /** Whether the store answers (a HEAD of an object no one stores); concurrent and recent callers share one probe. */
  probe(): Promise<SharedStatus> {
    const now = this.clock.now();
    if (this.lastProbe !== undefined && now - this.lastProbe.at < PROBE_REUSE_MS) return this.lastProbe.status;
    const status = this.store.stat(PROBE_DIGEST).then(
      (): SharedStatus => ({ location: this.location, reachable: true }),
      (err: unknown): SharedStatus => ({ location: this.location, reachable: false, reason: message(err) }),
    );
    this.lastProbe = { at: now, status };
    return status;
  }

  /** Uploads a verified local file (left in place); resolves true when the store holds the digest afterwards. */
  async upload(digest: string, file: string, size: number): Promise<boolean> {
    try {
      const outcome = await this.store.putFile(digest, file, size);
      this.refreshed?.done(digest, this.clock.now());
      this.logger.debug({ digest, size, outcome, store: this.location }, 'blob in the shared store');
      return true;
    } catch (err) {
      this.logger.warn({ digest, size, store: this.location, err: message(err) }, 'could not upload a verified blob to the shared store; it stays local only');
      return false;
    }
  }

  async uploadBytes(digest: string, bytes: Buffer): Promise<boolean> {
    try {
      await this.store.putBytes(digest, bytes);
      this.refreshed?.done(digest, this.clock.now());
      return true;
    } catch (err) {
      this.logger.warn({ digest, store: this.location, err: message(err) }, 'could not upload a manifest to the shared store');
      return false;
    }
  }

  /** The whole object as a stream with its size; undefined when it is not there or the store fails. */
  async open(digest: string): Promise<{ size: number; body: Readable } | undefined> {
    try {
      const info = await this.store.stat(digest);
      if (info === undefined) return undefined;
      const body = await this.store.openRead(digest);
      if (body === undefined) return undefined;
      this.noteRead(digest);
      return { size: info.size, body };
    } catch (err) {
      this.logger.warn({ digest, store: this.location, err: message(err) }, 'shared store unreadable; fetching upstream');
      return undefined;
    }
  }

  /** A manifest from the store, verified against its digest; undefined when absent, too large, unverifiable or the store fails. */
  async manifest(digest: string): Promise<{ digest: string; mediaType: string; bytes: Buffer } | undefined> {
    try {
      const info = await this.store.stat(digest);
      if (info === undefined || info.size > MAX_MANIFEST_BYTES) return undefined;
      const body = await this.store.openRead(digest);
      if (body === undefined) return undefined;
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      const bytes = Buffer.concat(chunks);
      const algorithm = digestAlgorithm(digest);
      const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
      if (actual !== digest) {
        this.logger.error({ digest, actual, store: this.location }, 'shared store holds a manifest that does not match its digest: ignored (run pullgate cache verify)');
        return undefined;
      }
      const mediaType = mediaTypeOf(bytes);
      if (mediaType === undefined) return undefined;
      this.noteRead(digest);
      return { digest, mediaType, bytes };
    } catch (err) {
      this.logger.warn({ digest, store: this.location, err: message(err) }, 'shared store unreadable; asking upstream');
      return undefined;
    }
  }

  /** Deletes an object whose bytes did not match its digest. */
  async discard(digest: string): Promise<void> {
    this.logger.error({ digest, store: this.location }, 'shared store held a blob that does not match its digest: deleted (the next pull fetches it upstream)');
    try {
      await this.store.delete(digest);
    } catch (err) {
      this.logger.warn({ digest, store: this.location, err: message(err) }, 'could not delete a corrupt object from the shared store');
    }
  }

  /** True when some replica recorded that upstream let (registry, repository) see the digest. */
  async isLinked(registry: string, repository: string, digest: string): Promise<boolean> {
    if (!keepsLinks(this.store)) return false;
    try {
      return await this.store.isLinked(registry, repository, digest);
    } catch (err) {
      this.logger.warn({ digest, registry, repository, store: this.location, err: message(err) }, 'shared store unreadable; asking upstream');
      return false;
    }
  }

  /** Records a link upstream confirmed, for the other replicas. */
  async link(registry: string, repository: string, digest: string): Promise<void> {
    if (!keepsLinks(this.store)) return;
    try {
      await this.store.link(registry, repository, digest);
    } catch (err) {
      this.logger.warn({ digest, registry, repository, store: this.location, err: message(err) }, 'could not record a repository link in the shared store');
    }
  }

  /**
   * Notes a read (a local hit included) for the `maxAge` policy: the object's time is renewed in the
   * store when it was last renewed more than a quarter of maxAge ago. Runs in the background.
   */
  noteRead(digest: string): void {
    if (this.refreshed?.due(digest, this.clock.now()) !== true) return;
    this.store.refresh(digest).catch((err: unknown) => {
      this.logger.debug({ digest, err: message(err) }, 'could not renew a read time in the shared store');
    });
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}

/** The shared tier `storage.s3` asks for (undefined without it), or over `store` when one is given (tests). */
export function sharedTierFor(storage: Config['storage'], deps: { clock: Clock; logger: Logger }, store?: ContentStore): SharedTier | undefined {
  const spec = sharedStoreSpec(storage);
  const chosen = store ?? (spec === undefined ? undefined : createContentStore(spec, deps));
  return chosen === undefined ? undefined : new SharedTier(chosen, deps.clock, deps.logger, storage.s3?.maxAgeMs, storage.s3?.redirect ?? false);
}
