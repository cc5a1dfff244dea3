import type { Cache, CachedManifest } from '../cache/cache.js';
import type { Clock } from '../core/deps.js';
import { DigestMismatch, ManifestRejected, UpstreamRateLimited, UpstreamUnavailable } from '../core/errors.js';
import { failureReason } from '../upstream/upstream-outcomes.js';
import type { Metrics } from '../core/metrics.js';
import type { RateRation } from '../upstream/rate-ration.js';
import { AcceptDecisions, widenAccept } from './accept.js';
import { DEFAULT_MANIFEST_ACCEPT, type UpstreamManifests } from './manifests.js';
import type { UpstreamHealth } from './upstream-health.js';
import type { ManifestAnswer, ManifestRequest } from './types.js';

export interface ManifestPolicy {
  tagTtlMs: number;
  staleIfErrorMs: number;
  /** Time limit for the HEAD that revalidates a stale tag (short: a stale answer is ready). */
  revalidateTimeoutMs: number;
}

/** Upstream failures after which a cached tag may be served stale. */
function transient(err: unknown): boolean {
  return err instanceof UpstreamUnavailable || err instanceof UpstreamRateLimited || (err instanceof Error && err.name === 'TimeoutError');
}

/**
 * Serves manifests local-first. Digest-addressed manifests are cached for good (verified); tag
 * answers live `tagTTL`, are revalidated with a HEAD (which Docker Hub does not count as a pull),
 * and are served stale for `staleIfError` when upstream is down or rate limiting.
 */
export class ManifestProxy {
  /** Upstream manifest fetches in flight, shared by concurrent identical requests. */
  private readonly inflight = new Map<string, Promise<ManifestAnswer>>();
  /** This service's remembered Accept decisions (the manifest hot path asks on every request). */
  private readonly accept = new AcceptDecisions();

  constructor(
    private readonly remote: UpstreamManifests,
    private readonly cache: Cache,
    private readonly health: UpstreamHealth,
    private readonly metrics: Metrics,
    private readonly policy: ManifestPolicy,
    private readonly clock: Clock,
    /** Rationing of registries' pulls (`rateLimit.reserve`, a 429); none = never rationed. */
    private readonly ration?: RateRation,
  ) {}

  get(req: ManifestRequest): Promise<ManifestAnswer> {
    const ready = this.fresh(req);
    if (ready !== undefined) return Promise.resolve(ready);
    return req.reference.kind === 'digest' ? this.byDigest(req) : this.byTag(req);
  }

  /**
   * The answer the cache gives without asking upstream (a digest already linked to this repository,
   * or a tag within its TTL), counted as a hit; undefined when upstream must be asked. Synchronous,
   * so the HTTP layer can answer the commonest request without any await.
   */
  fresh(req: Omit<ManifestRequest, 'signal'>): ManifestAnswer | undefined {
    const { registry, repository } = req.route;
    if (req.reference.kind === 'digest') {
      const digest = req.reference.value;
      const cached = this.cache.manifest(digest);
      if (cached === undefined || !this.accept.accepts(req.accept, cached.mediaType) || !this.cache.isLinked(registry, repository, digest)) return undefined;
      this.metrics.hits.manifest.inc();
      return this.answer(cached, req, 'cache');
    }
    const row = this.cache.tag(registry, repository, req.reference.value);
    if (row === undefined || this.clock.now() - row.validated_at >= this.policy.tagTtlMs) return undefined;
    const cached = this.cache.manifest(row.digest);
    if (cached === undefined || !this.accept.accepts(req.accept, cached.mediaType)) return undefined;
    this.metrics.hits.tag.inc();
    return this.answer(cached, req, 'cache');
  }

  private answer(manifest: CachedManifest, req: Pick<ManifestRequest, 'method'>, source: ManifestAnswer['source']): ManifestAnswer {
    return {
      digest: manifest.digest,
      mediaType: manifest.mediaType,
      size: manifest.bytes.length,
      body: req.method === 'HEAD' ? undefined : manifest.bytes,
      source,
    };
  }

  private async byDigest(req: ManifestRequest): Promise<ManifestAnswer> {
    const { registry, repository } = req.route;
    const digest = req.reference.value;
    const cached = this.cache.manifest(digest);
    if (cached !== undefined && this.accept.accepts(req.accept, cached.mediaType)) {
      // Cached via another repository (fresh() answered the linked case): upstream must confirm this one may see it.
      await this.upstream({ ...req, method: 'HEAD' });
      this.cache.link(registry, repository, digest);
      this.metrics.hits.manifest.inc();
      return this.answer(cached, req, 'cache');
    }
    // Pulled through another replica: served from the shared store when upstream confirmed this repository there.
    if (await this.cache.linkedInShared(registry, repository, digest)) {
      const shared = await this.cache.manifestFromShared(digest, registry, repository);
      if (shared !== undefined && this.accept.accepts(req.accept, shared.mediaType)) {
        this.metrics.hits.manifest.inc();
        return this.answer(shared, req, 'cache');
      }
    }
    this.metrics.misses.manifest.inc();
    const fetched = await this.fetch(req, req.accept);
    return { ...fetched, body: req.method === 'HEAD' ? undefined : fetched.body };
  }

  private async byTag(req: ManifestRequest): Promise<ManifestAnswer> {
    const { registry, repository } = req.route;
    const row = this.cache.tag(registry, repository, req.reference.value);
    const cached = row === undefined ? undefined : this.cache.manifest(row.digest);
    if (row !== undefined && cached !== undefined && this.accept.accepts(req.accept, cached.mediaType)) {
      // Within the TTL fresh() has answered already: this one needs revalidation.
      const age = this.clock.now() - row.validated_at;
      // A tag imported from a bundle (and not changed upstream since) is served however old: an air-gapped mirror has no upstream.
      const staleAllowed = age < this.policy.tagTtlMs + this.policy.staleIfErrorMs || typeof row.imported_at === 'number';
      if (staleAllowed && (this.health.isDown(registry) || this.ration?.limited(registry) === true)) return this.stale(cached, req);
      try {
        const head = await this.upstream({
          ...req,
          method: 'HEAD',
          accept: widenAccept(req.accept, DEFAULT_MANIFEST_ACCEPT),
          signal: AbortSignal.any([req.signal, AbortSignal.timeout(this.policy.revalidateTimeoutMs)]),
        });
        this.health.markUp(registry);
        if (head.digest === row.digest) {
          this.cache.putTag(registry, repository, req.reference.value, { ...row, validated_at: this.clock.now() });
          this.metrics.hits.tag.inc();
          return this.answer(cached, req, 'cache');
        }
        // Moved upstream, but a GET would spend the allowance kept in reserve: the cached digest it is (tag left unvalidated).
        if (this.ration?.rationed(registry) === true) {
          this.ration.heldBack(registry, repository, req.reference.value);
          return this.stale(cached, req);
        }
      } catch (err) {
        if (!transient(err) || req.signal.aborted) throw err;
        this.health.markDown(registry);
        if (staleAllowed) return this.stale(cached, req);
        throw err;
      }
    }
    this.metrics.misses.tag.inc();
    const fetched = await this.fetch(req, widenAccept(req.accept, DEFAULT_MANIFEST_ACCEPT));
    this.cache.putTag(registry, repository, req.reference.value, {
      digest: fetched.digest,
      media_type: fetched.mediaType,
      validated_at: this.clock.now(),
    });
    if (!this.accept.accepts(req.accept, fetched.mediaType)) return this.upstream(req);
    return { ...fetched, body: req.method === 'HEAD' ? undefined : fetched.body };
  }

  /** One upstream manifest request; content that did not match its digest is counted per registry. */
  private async upstream(req: ManifestRequest): Promise<ManifestAnswer> {
    try {
      return await this.remote.get(req);
    } catch (err) {
      if (err instanceof DigestMismatch) this.metrics.digestMismatches.inc({ registry: req.route.registry });
      // The registry answered, with content pullgate refuses: an upstream failure too (the client sent nothing wrong).
      if (err instanceof DigestMismatch || err instanceof ManifestRejected) {
        const reason = failureReason(err);
        this.metrics.upstreamFailures.inc({ registry: req.route.registry, reason });
        this.health.failed(req.route.registry, reason);
      }
      throw err;
    }
  }

  private stale(cached: CachedManifest, req: ManifestRequest): ManifestAnswer {
    this.metrics.staleServes.inc({ registry: req.route.registry });
    return this.answer(cached, req, 'stale');
  }

  /** GETs a manifest upstream (one fetch for concurrent identical requests) and stores it. */
  private async fetch(req: ManifestRequest, accept: string | undefined): Promise<ManifestAnswer> {
    const { registry, repository } = req.route;
    const key = JSON.stringify([registry, repository, req.reference.value, accept ?? '']);
    let pending = this.inflight.get(key);
    if (pending === undefined) {
      pending = this
        .upstream({ ...req, method: 'GET', accept, signal: AbortSignal.timeout(60_000) })
        .then((fetched) => {
          if (fetched.body !== undefined) {
            this.cache.putManifest({ digest: fetched.digest, mediaType: fetched.mediaType, bytes: fetched.body }, registry, repository);
          }
          this.health.markUp(registry);
          return fetched;
        })
        .catch((err: unknown) => {
          if (err instanceof UpstreamUnavailable && !err.reachable) this.health.markDown(registry);
          throw err;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }
}
