import { BlobFill, FillNotJoinable } from '../cache/blob-fill.js';
import type { FillSource } from '../cache/fill-source.js';
import { RemoteFill } from '../cache/remote-fill.js';
import type { Cache } from '../cache/cache.js';

import { TailReader } from '../cache/tail-reader.js';
import { UpstreamUnavailable } from '../core/errors.js';
import type { Metrics } from '../core/metrics.js';
import { header } from '../upstream/http.js';
import { failureFor } from '../upstream/status.js';
import type { Upstreams } from '../upstream/upstreams.js';
import type { UpstreamBlobs } from './blobs.js';
import { resolveRange } from './range.js';
import type { BlobAnswer, BlobRequest, OwnedFill, OwnerSource } from './types.js';
import type { Route } from '../routing/route.js';

/** A fill this process reads: its own, or another worker's on this host. */
type Fill = BlobFill | RemoteFill;

/**
 * Serves blobs local-first; on a miss streams one upstream fetch to every client asking for the
 * digest and to the cache. A blob cached for one repository is served for another only after
 * upstream confirmed that repository may see it.
 */
export class BlobProxy {
  /**
   * Fills whose bytes come from the shared store or from the digest's owner in a cluster, not from upstream
   * (for the access log's source and the metrics); a fill not listed here reads from upstream.
   */
  private readonly fillOrigins = new WeakMap<FillSource, 'shared' | 'peer' | 'worker'>();
  /** Upstream GETs being started, so concurrent misses share one (single flight); undefined: the owner has it stored. */
  private readonly starting = new Map<string, Promise<Fill | undefined>>();
  /** Fills of other workers of this host that this process follows, by digest, for its other clients to join. */
  private readonly following = new Map<string, RemoteFill>();

  constructor(
    private readonly upstreams: Upstreams,
    private readonly remote: UpstreamBlobs,
    private readonly cache: Cache,
    private readonly metrics: Metrics,
    /** In a cluster: the digest's owner, asked for a cold blob before upstream is. */
    private readonly owners?: OwnerSource,
  ) {}

  async get(req: BlobRequest): Promise<BlobAnswer> {
    try {
      return await this.answer(req);
    } catch (err) {
      if (!(err instanceof FillNotJoinable)) throw err;
    }
    // The fill this request joined moved on while it waited (its bytes left memory, or it ended): ask again.
    try {
      return await this.answer(req);
    } catch (err) {
      if (err instanceof FillNotJoinable) throw new UpstreamUnavailable(req.route.registry, `blob ${req.digest}: ${err.message}; retry`, true);
      throw err;
    }
  }

  private async answer(req: BlobRequest): Promise<BlobAnswer> {
    // Checked before any await, so a pullgate without redirects pays nothing for them on its hot path.
    // Never for a range: a ranged client cannot verify its bytes, so a range is served here, verified.
    if (this.cache.shared?.redirect === true && req.method === 'GET' && req.range === undefined && req.fromPeer !== true) {
      const redirect = await this.redirect(req);
      if (redirect !== undefined) return redirect;
    }
    const row = this.cache.lookup(req.digest);
    if (row !== undefined) {
      await this.confirmAccess(req);
      const cached = this.fromCache(req, row.size);
      if (cached !== undefined) {
        this.metrics.hits.blob.inc();
        return cached;
      }
    }
    const running = this.cache.inflight(req.digest) ?? this.followed(req.digest, req.route);
    if (req.method === 'HEAD') {
      const sameRepository = running?.registry === req.route.registry && running.repository === req.route.repository;
      if (running?.size !== undefined && sameRepository) return this.fromFill(req, running, 'coalesced');
      this.metrics.misses.blob.inc();
      return this.remote.get(req);
    }
    const pending = this.starting.get(req.digest);
    if (running !== undefined || pending !== undefined) {
      const fill = running ?? (await pending);
      if (fill === undefined) return this.storedByOwner(req);
      const sameRepository = fill.registry === req.route.registry && fill.repository === req.route.repository;
      // Another repository's fill on another worker is not joined: that worker checks this repository's access itself.
      if (fill instanceof BlobFill || sameRepository) {
        if (fill instanceof BlobFill && !sameRepository) {
          await this.confirmAccess(req);
          fill.alsoLink(req.route.registry, req.route.repository);
        }
        this.metrics.coalesced.inc();
        return this.fromFill(req, fill, 'coalesced');
      }
    }
    this.metrics.misses.blob.inc();
    const start = this.startFill(req);
    this.starting.set(req.digest, start);
    try {
      const fill = await start;
      if (fill === undefined) return await this.storedByOwner(req);
      return this.fromFill(req, fill, this.fillOrigins.get(fill) ?? 'upstream');
    } finally {
      if (this.starting.get(req.digest) === start) this.starting.delete(req.digest);
    }
  }

  /** The fill of another worker of this host this process follows for (registry, repository), if a reader can still join it. */
  private followed(digest: string, route: Route): RemoteFill | undefined {
    const fill = this.following.get(digest);
    return fill?.joinable() === true && fill.registry === route.registry && fill.repository === route.repository ? fill : undefined;
  }

  /** The digest's owner on this host said it is stored (and checked this repository's access): read it through the shared index. */
  private async storedByOwner(req: BlobRequest): Promise<BlobAnswer> {
    await this.confirmAccess(req);
    const row = this.cache.lookup(req.digest);
    const cached = row === undefined ? undefined : this.fromCache(req, row.size);
    if (cached === undefined) throw new FillNotJoinable(`blob ${req.digest}: the worker that owns it stored it, but its file is not found here`);
    this.metrics.hits.blob.inc();
    return cached;
  }

  /**
   * For another worker of this host that follows the digest (the peer fill endpoint): this worker's fill of
   * it, started or joined with the checks a client's request gets, for the follower to read from disk —
   * or word that it is stored, or that the fill is not written to disk (the follower then asks for bytes).
   */
  async ownedFill(route: Route, digest: string, signal: AbortSignal): Promise<OwnedFill> {
    const req: BlobRequest = { route, digest, method: 'GET', range: undefined, signal, fromPeer: true };
    if (this.cache.lookup(digest) !== undefined) {
      await this.confirmAccess(req);
      return { kind: 'cached' };
    }
    // No await unless a start is pending: between this check and `starting.set` no other request may start a fill.
    const pending = this.starting.get(digest);
    let fill = this.cache.inflight(digest) ?? (pending === undefined ? undefined : await pending);
    if (fill instanceof BlobFill) {
      if (fill.registry !== route.registry || fill.repository !== route.repository) {
        await this.confirmAccess(req);
        fill.alsoLink(route.registry, route.repository);
      }
      this.metrics.coalesced.inc();
    } else {
      this.metrics.misses.blob.inc();
      const start = this.startFill(req);
      this.starting.set(digest, start);
      try {
        fill = await start;
      } finally {
        if (this.starting.get(digest) === start) this.starting.delete(digest);
      }
    }
    if (!(fill instanceof BlobFill)) return { kind: 'uncached' };
    return fill.caching && fill.tempPath !== undefined ? { kind: 'fill', fill } : { kind: 'uncached' };
  }

  /**
   * `storage.s3.redirect`: a GET of a blob the shared store holds, for a repository whose access is
   * confirmed, is answered 307 to a presigned URL; never for a cluster peer, which streams it on, nor
   * for a range, which must come verified.
   */
  private async redirect(req: BlobRequest): Promise<BlobAnswer | undefined> {
    const shared = this.cache.shared;
    if (shared === undefined) return undefined;
    const location = await shared.redirectUrl(req.digest);
    if (location === undefined) return undefined;
    const { registry, repository } = req.route;
    if (!this.cache.isLinked(registry, repository, req.digest) && !(await this.cache.linkedInShared(registry, repository, req.digest))) {
      await this.remote.get({ ...req, method: 'HEAD', range: undefined });
      await shared.link(registry, repository, req.digest);
    }
    this.metrics.hits.blob.inc();
    return { status: 307, location, length: 0, contentRange: undefined, body: undefined, source: 'shared' };
  }

  /** Digest knowledge is not access: a repository not yet linked to the digest is checked with an upstream HEAD. */
  private async confirmAccess(req: BlobRequest): Promise<void> {
    const { registry, repository } = req.route;
    if (this.cache.isLinked(registry, repository, req.digest)) return;
    // Another replica's upstream confirmation, recorded in the shared store, counts as well.
    if (await this.cache.linkedInShared(registry, repository, req.digest)) return;
    await this.remote.get({ ...req, method: 'HEAD', range: undefined });
    if (this.cache.lookup(req.digest) !== undefined) this.cache.link(registry, repository, req.digest);
  }

  private async startFill(req: BlobRequest): Promise<Fill | undefined> {
    const { registry, repository } = req.route;
    // A local miss that the shared store holds is read from there once this repository's access is confirmed.
    const shared = await this.cache.fillFromShared(req.digest, registry, repository, () => this.confirmAccess(req));
    if (shared !== undefined) {
      this.fillOrigins.set(shared, 'shared');
      return shared;
    }
    // In a cluster the owner fetches once for every replica. Another worker of this host is followed on the
    // shared disk (its file, its verification); another replica's bytes are verified here as upstream's would be.
    const owned = req.fromPeer === true ? undefined : await this.owners?.fromOwner(registry, repository, req.digest);
    if (owned?.kind === 'cached') return undefined;
    if (owned?.kind === 'fill') {
      const fill = owned.fill;
      this.fillOrigins.set(fill, 'worker');
      this.following.set(req.digest, fill);
      void fill.settled.then(() => {
        if (this.following.get(req.digest) === fill) this.following.delete(req.digest);
      });
      return fill;
    }
    if (owned?.kind === 'bytes') {
      const { body, size } = owned.blob;
      try {
        // 'peer': the owner uploads its own fill to the shared store; the followers do not upload it again.
        const fill = this.cache.beginFill(req.digest, body, size, registry, repository, 'peer');
        this.fillOrigins.set(fill, 'peer');
        return fill;
      } catch (err) {
        body.destroy();
        throw err;
      }
    }
    // Detached from the client: the fetch finishes (bounded by the upstream timeout) so the next client gets a hit.
    const response = await this.upstreams.get(registry).request({
      method: 'GET',
      repository,
      path: `/blobs/${req.digest}`,
      headers: {},
      redirects: 'storage',
    });
    if (response.status !== 200) throw await failureFor(registry, response, 'blob', `blob ${req.digest} in ${repository}`);
    const length = Number(header(response.headers, 'content-length'));
    try {
      return this.cache.beginFill(req.digest, response.body, Number.isFinite(length) ? length : undefined, registry, repository);
    } catch (err) {
      response.body.destroy();
      throw err;
    }
  }

  private fromFill(req: BlobRequest, fill: Fill, source: BlobAnswer['source']): BlobAnswer {
    const size = fill.size;
    const range = size === undefined ? undefined : resolveRange(req.range, size);
    const length = range ? range.end - range.start + 1 : (size ?? Number.NaN);
    const contentRange = range && size !== undefined ? `bytes ${range.start}-${range.end}/${size}` : undefined;
    if (req.method === 'HEAD') return { status: range ? 206 : 200, length, contentRange, body: undefined, source };
    const origin = this.fillOrigins.get(fill) ?? 'upstream';
    const reader = new TailReader(fill, range?.start ?? 0, range?.end, (bytes) => this.metrics.bytesServed.inc({ source: origin }, bytes));
    return {
      status: range ? 206 : 200,
      length,
      contentRange,
      body: reader,
      source,
    };
  }

  /** A cached blob's answer; undefined when its file vanished since the lookup (the caller fetches it). */
  private fromCache(req: BlobRequest, size: number): BlobAnswer | undefined {
    const range = resolveRange(req.range, size);
    const length = range ? range.end - range.start + 1 : size;
    const contentRange = range ? `bytes ${range.start}-${range.end}/${size}` : undefined;
    if (req.method === 'HEAD') return { status: range ? 206 : 200, length, contentRange, body: undefined, source: 'cache' };
    const body = this.cache.openRead(req.digest, range?.start ?? 0, range?.end ?? size - 1);
    if (body === undefined) return undefined;
    this.metrics.bytesServed.inc({ source: 'cache' }, length);
    return { status: range ? 206 : 200, length, contentRange, body, source: 'cache' };
  }
}
