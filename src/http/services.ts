import type { SharedStatus } from '../cache/shared-tier.js';
import type { StorageStatus } from '../cache/storage-health.js';
import type { UpstreamState } from '../proxy/upstream-health.js';
import type { Config } from '../config/config.js';
import type { BlobAnswer, BlobRequest, JsonAnswer, ManifestAnswer, ManifestRequest } from '../proxy/types.js';
import type { Route, Router } from '../routing/route.js';
import type { SendBuffers } from './send-chunks.js';
import type { AccessControl } from '../access/resolve.js';
import type { Metrics } from '../core/metrics.js';
import type { Passed } from './preflight.js';
import type { RequestFacts } from './request-facts.js';

export type { RequestFacts };

/** The services the routes call; the proxy layer implements them, tests may fake them. */
export interface Services {
  config: Config;
  /** Routes client names for this server (with its own memo). */
  router: Router;
  /** Send buffers reused by this server's cached-blob responses. */
  sendBuffers: SendBuffers;
  /** `clients.access` and `registries.<host>.repositories` resolved for this server (see access/resolve.ts). */
  access: AccessControl;
  /** This server's counters. */
  metrics: Metrics;
  manifests: {
    get(req: ManifestRequest): Promise<ManifestAnswer>;
    /** The answer available without asking upstream, if any (see ManifestProxy.fresh). */
    fresh?(req: Omit<ManifestRequest, 'signal'>): ManifestAnswer | undefined;
  };
  blobs: { get(req: BlobRequest): Promise<BlobAnswer> };
  listings: {
    tags(route: Route, query: URLSearchParams, signal: AbortSignal): Promise<JsonAnswer & { next: URLSearchParams | undefined }>;
    referrers(route: Route, digest: string, query: URLSearchParams, signal: AbortSignal): Promise<JsonAnswer>;
  };
  /** Whether the mirror can cache (storage writable), and why not (for /readyz). */
  ready(): Promise<Readiness>;
  /** Prometheus exposition of pullgate's counters. */
  metricsText(): Promise<{ contentType: string; body: string }>;
  /** Waits for blob fills in flight, then releases the cache (flushes the index). */
  close(): Promise<void>;
  /** Starts what runs beside the client listener (the cluster's internal listener); called once when the app is ready. */
  start?(): Promise<void>;
}

/** What /readyz reports: ready when storage is writable (without it, pullgate passes through without caching). */
export interface Readiness {
  ready: boolean;
  storage: StorageStatus;
  /**
   * The shared store behind the local disk (`storage.s3`), when configured. Unreachable does not make
   * pullgate unready (pulls go on from upstream and the local disk), but /readyz says so.
   */
  shared?: SharedStatus;
  /**
   * Each registry asked since start and how its last request ended. A registry failing does not make
   * pullgate unready (cached content is served, stale tags within staleIfError), but /readyz says so.
   */
  upstreams?: Record<string, UpstreamState>;
}


declare module 'fastify' {
  interface FastifyInstance {
    pullgate: Services;
  }
  interface FastifyRequest {
    facts: RequestFacts | null;
    /** What the preflight established for a /v2/ request (set in onRequest). */
    passed: Passed | null;
  }
}
