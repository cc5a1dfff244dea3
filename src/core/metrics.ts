import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** Figures read when /metrics is collected rather than set as they change (see Metrics.readAtScrape). */
export interface ScrapeSources {
  /** The host's cache size (the index's usage row, shared by every worker). */
  cacheBytes(): number;
  /** Token exchanges this process performed since start. */
  tokenExchanges(): number;
  /** Each registry's rate limit as its last answer stated it (Docker Hub's `ratelimit-*` headers). */
  rateLimits(): [registry: string, limit: { limit: number | undefined; remaining: number | undefined }][];
  /** Each endpoint of each registry (its url, then its mirrors) and whether its circuit breaker lets requests through. */
  endpoints?(): { registry: string; endpoint: string; up: boolean }[];
}

/**
 * Every counter pullgate keeps, in one place, on a registry of its own (exported at /metrics).
 * Labels carry only registry keys and fixed words: never repositories' secrets or tokens.
 *
 * With `serve --workers` the primary sums the workers' registries (prom-client's AggregatorRegistry):
 * counters, histograms and per-process gauges add up; each gauge below that every worker reads from the
 * shared storage names an `aggregator` instead, so the host's figure is not counted once per worker.
 */
export class Metrics {
  readonly registry = new Registry();
  private sources: ScrapeSources | undefined;
  readonly cacheHits = new Counter({ name: 'pullgate_cache_hits_total', help: 'Requests answered from the cache', labelNames: ['kind'], registers: [this.registry] });
  readonly cacheMisses = new Counter({ name: 'pullgate_cache_misses_total', help: 'Requests that went upstream for content', labelNames: ['kind'], registers: [this.registry] });
  /** The hit and miss counters per kind, bound once (labelling on every request costs a hash per call). */
  readonly hits = { tag: this.cacheHits.labels({ kind: 'tag' }), manifest: this.cacheHits.labels({ kind: 'manifest' }), blob: this.cacheHits.labels({ kind: 'blob' }) };
  readonly misses = { tag: this.cacheMisses.labels({ kind: 'tag' }), manifest: this.cacheMisses.labels({ kind: 'manifest' }), blob: this.cacheMisses.labels({ kind: 'blob' }) };
  readonly coalesced = new Counter({ name: 'pullgate_coalesced_followers_total', help: 'Blob requests that joined an upstream fetch already in flight', registers: [this.registry] });
  readonly bytesServed = new Counter({ name: 'pullgate_bytes_served_total', help: 'Blob bytes sent to clients by origin', labelNames: ['source'], registers: [this.registry] });
  readonly bytesFetched = new Counter({ name: 'pullgate_upstream_bytes_total', help: 'Blob bytes fetched from upstream', labelNames: ['registry'], registers: [this.registry] });
  readonly staleServes = new Counter({ name: 'pullgate_stale_serves_total', help: 'Tag answers served stale because upstream failed', labelNames: ['registry'], registers: [this.registry] });
  readonly upstreamFailures = new Counter({ name: 'pullgate_upstream_failures_total', help: 'Upstream requests that failed or were refused', labelNames: ['registry', 'reason'], registers: [this.registry] });
  readonly digestMismatches = new Counter({ name: 'pullgate_digest_mismatches_total', help: 'Upstream content that did not match its digest', labelNames: ['registry'], registers: [this.registry] });
  readonly evictions = new Counter({ name: 'pullgate_evictions_total', help: 'Blobs evicted to stay within storage.maxSize', registers: [this.registry] });
  readonly cacheBytes: Gauge = new Gauge({
    name: 'pullgate_cache_bytes',
    help: 'Bytes of blobs and manifests in the cache',
    registers: [this.registry],
    // Every worker reads the same shared total.
    aggregator: 'max',
    collect: () => {
      if (this.sources !== undefined) this.cacheBytes.set(this.sources.cacheBytes());
    },
  });
  readonly storageErrors = new Counter({ name: 'pullgate_storage_errors_total', help: 'Storage writes that failed (the cache then passes through)', labelNames: ['op'], registers: [this.registry] });
  readonly storageWritable = new Gauge({
    name: 'pullgate_storage_writable',
    help: '1 when the cache can write to storage, 0 while it passes through',
    registers: [this.registry],
    // One storage for every worker: 0 as soon as one of them finds it failing.
    aggregator: 'min',
  });
  readonly connectionsRefused = new Counter({
    name: 'pullgate_connections_refused_total',
    help: 'Client connections closed on accept: limit="address" (clients.connections.perAddress) or "total" (clients.connections.max)',
    labelNames: ['limit'],
    registers: [this.registry],
  });
  readonly runtimeTrickRefused = new Counter({ name: 'pullgate_runtime_trick_refused_total', help: 'Runtime tricks the runtime refused at start (minor-collection: the gc extension of young-sweep.ts)', labelNames: ['trick'], registers: [this.registry] });
  readonly requestsDenied = new Counter({ name: 'pullgate_requests_denied_total', help: 'Client requests refused before any upstream work, by reason (rule, no_rule, registry_policy, unauthenticated, throttled, limited)', labelNames: ['reason'], registers: [this.registry] });
  readonly tokenExchanges: Gauge = new Gauge({
    name: 'pullgate_token_exchanges',
    help: 'Token exchanges performed since start',
    registers: [this.registry],
    collect: () => {
      if (this.sources !== undefined) this.tokenExchanges.set(this.sources.tokenExchanges());
    },
  });

  readonly rateLimitLimit: Gauge = new Gauge({
    name: 'pullgate_upstream_ratelimit_limit',
    help: 'Pulls the registry allows per window, from the ratelimit-limit header of its last answer',
    labelNames: ['registry'],
    registers: [this.registry],
    // Every worker reads the same registry's allowance.
    aggregator: 'max',
    collect: () => this.readRateLimits(),
  });
  readonly rateLimitRemaining: Gauge = new Gauge({
    name: 'pullgate_upstream_ratelimit_remaining',
    help: 'Pulls left in the window, from the ratelimit-remaining header of the registry\'s last answer',
    labelNames: ['registry'],
    registers: [this.registry],
    // The worker that asked last saw the fewest left.
    aggregator: 'min',
    collect: () => this.readRateLimits(),
  });

  readonly endpointUp: Gauge = new Gauge({
    name: 'pullgate_upstream_endpoint_up',
    help: 'Whether an upstream endpoint (a registry\'s url or one of its mirrors) is asked (1) or skipped by its circuit breaker (0)',
    labelNames: ['registry', 'endpoint'],
    registers: [this.registry],
    // An endpoint any worker still asks is up.
    aggregator: 'max',
    collect: () => {
      for (const { registry, endpoint, up } of this.sources?.endpoints?.() ?? []) this.endpointUp.set({ registry, endpoint }, up ? 1 : 0);
    },
  });

  constructor() {
    // Process figures (RSS, heap, event-loop lag, open fds) beside pullgate's own counters.
    collectDefaultMetrics({ register: this.registry, prefix: 'pullgate_' });
  }

  private readRateLimits(): void {
    if (this.sources === undefined) return;
    for (const [registry, { limit, remaining }] of this.sources.rateLimits()) {
      if (limit !== undefined) this.rateLimitLimit.set({ registry }, limit);
      if (remaining !== undefined) this.rateLimitRemaining.set({ registry }, remaining);
    }
  }

  /** Reads these figures afresh whenever the registry is collected (a scrape here, or the primary asking this worker). */
  readAtScrape(sources: ScrapeSources): void {
    this.sources = sources;
  }
}
