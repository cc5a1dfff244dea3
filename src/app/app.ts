import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';
import type { Deps } from '../core/deps.js';
import { registerAccessLog } from '../http/access-log.js';
import { AccessSampling } from '../http/access-sampling.js';
import { frameworkErrors, registerErrorHandling } from '../http/error-plugin.js';
import { registerHealthRoutes } from '../http/health-routes.js';
import type { Services } from '../http/services.js';
import { registerV2Routes } from '../http/v2-routes.js';
import { Cache } from '../cache/cache.js';
import { registerMetricsRoute } from '../http/metrics-route.js';
import { Htpasswd } from '../client-auth/htpasswd.js';
import { ClientAuth } from '../client-auth/client-auth.js';
import { Preflight } from '../http/preflight.js';
import { ClientLimits } from '../access/client-limits.js';
import { buildAccessControl } from '../access/resolve.js';
import type { TlsFiles } from '../http/tls-files.js';
import { startMetricsListener } from '../http/metrics-listener.js';
import type { Server } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import { fastManifestHandler } from '../http/fast-manifests.js';
import { clientErrorHandler, createListener } from '../http/listener.js';
import { ConnectionDrain } from '../http/connection-drain.js';
import { Metrics } from '../core/metrics.js';
import { LoginThrottled } from '../core/errors.js';
import { BlobProxy } from '../proxy/blob-proxy.js';
import { UpstreamBlobs } from '../proxy/blobs.js';
import { UpstreamListings } from '../proxy/listings.js';
import { ManifestProxy } from '../proxy/manifest-proxy.js';
import { UpstreamManifests } from '../proxy/manifests.js';
import { UpstreamHealth } from '../proxy/upstream-health.js';
import { Upstreams } from '../upstream/upstreams.js';
import { Router, type Route } from '../routing/route.js';
import type { BlobAnswer, OwnedFill } from '../proxy/types.js';
import { SendBuffers } from '../http/send-chunks.js';
import { ClusterNode } from '../cluster/cluster-node.js';
import { sharedTierFor } from '../cache/shared-tier.js';
import type { ContentStore } from '../storage/content-store.js';
import { isLoopback } from '../access/exposure.js';
import { RecentEvents } from '../util/recent-events.js';
import { StatusCollector } from '../status/collector.js';
import { countingServices, PullsInProgress } from '../status/counting-services.js';
import { StatusAccess } from '../status/status-access.js';
import { registerStatusRoutes, statusHandler } from '../status/status-routes.js';
import { Traffic } from '../status/traffic.js';

/** Longest wait for the HEAD that revalidates a stale tag before the stale answer is served. */
const REVALIDATE_TIMEOUT_MS = 5_000;

/** Wires the cache and the local-first proxy services for a config. */
export function buildServices(
  config: Config,
  deps: Deps,
  metrics = new Metrics(),
  /**
   * `sharedStore`: the store behind the local disk instead of the one `storage.s3` names (tests).
   * `exposed`: whether the listener is reachable from other machines, for the safe default of the
   * access rules (default: its host is not loopback; tests inject it). `keepTemps`: leave the temp files
   * at start (a worker started in place of a dead one: the other workers' fills are writing there).
   */
  options: { sharedStore?: ContentStore; exposed?: boolean; keepTemps?: boolean } = {},
): Services & StatusServices & { upstreams: Upstreams; cache: Cache; metrics: Metrics } {
  const health = new UpstreamHealth(deps.clock);
  const recent = new RecentEvents(deps.clock);
  // Every upstream request's end: failures counted by registry and reason, and each registry's state for /readyz;
  // `recent` gets the failures for the status page.
  const upstreams = new Upstreams(
    config,
    deps,
    undefined,
    {
      answered: (registry) => health.answered(registry),
      failed: (registry, reason) => {
        metrics.upstreamFailures.inc({ registry, reason });
        health.failed(registry, reason);
      },
    },
    recent,
  );
  const shared = sharedTierFor(config.storage, deps, options.sharedStore);
  // Storage that cannot be written at start degrades to pass-through (with /readyz 503) rather than refusing to serve.
  const cache = new Cache({
    root: config.storage.path,
    maxSizeBytes: config.storage.maxSizeBytes,
    clock: deps.clock,
    logger: deps.logger,
    metrics,
    passThroughIfUnwritable: true,
    ...(options.keepTemps === true ? { keepTemps: true } : {}),
    ...(shared === undefined ? {} : { shared }),
  });
  // Read when /metrics is collected: the host's cache size (shared by every worker) and this process's exchanges.
  metrics.readAtScrape({ cacheBytes: () => cache.sizeBytes, tokenExchanges: () => upstreams.tokens.exchanges, rateLimits: () => upstreams.watch.rateLimits(),
    endpoints: () => upstreams.endpointStates().map(({ registry, endpoint, breaker }) => ({ registry, endpoint, up: breaker.state === 'up' })),
  });
  const policy = {
    tagTtlMs: config.cache.tagTtlMs,
    staleIfErrorMs: config.cache.staleIfErrorMs,
    revalidateTimeoutMs: Math.min(REVALIDATE_TIMEOUT_MS, config.upstream.timeoutMs),
  };
  // In a cluster, cold blobs come from their owner among the replicas (one upstream fetch per cluster).
  const cluster = config.cluster === undefined ? undefined : new ClusterNode(config.cluster, deps, { timeoutMs: config.upstream.timeoutMs });
  const sendBuffers = new SendBuffers();
  const blobs = new BlobProxy(upstreams, new UpstreamBlobs(upstreams), cache, metrics, cluster);
  const access = buildAccessControl(config, options.exposed);
  // The status page counts what the proxies answer to clients (cluster peers' requests are their clients' already).
  const traffic = new Traffic(deps.clock);
  const pulls = new PullsInProgress(cache);
  const counted = countingServices({ manifests: new ManifestProxy(new UpstreamManifests(upstreams), cache, health, metrics, policy, deps.clock, upstreams.ration), blobs }, traffic, pulls);
  const status = new StatusCollector({ config, clock: deps.clock, cache, watch: upstreams.watch, recent, traffic, pulls, cluster: cluster?.membership });
  return {
    config,
    router: new Router(config),
    sendBuffers,
    access,
    upstreams,
    cache,
    metrics,
    manifests: counted.manifests,
    blobs: counted.blobs,
    status,
    recent,
    exposed: options.exposed ?? !isLoopback(config.listen.host),
    listings: new UpstreamListings(upstreams),
    ready: async () => {
      const [storage, shared] = await Promise.all([cache.probeStorage(), cache.shared?.probe()]);
      // Upstreams down do not make pullgate unready: it serves what it holds; /readyz says which are failing.
      return { ready: storage.writable, storage, ...(shared === undefined ? {} : { shared }), upstreams: health.report() };
    },
    start: async () => {
      if (cluster === undefined) return;
      const owned = (route: Route, digest: string, signal: AbortSignal): Promise<BlobAnswer> => blobs.get({ route, digest, method: 'GET', range: undefined, signal, fromPeer: true });
      // A peer's request passes the registry's fetch policy as a client's does (the preflight's check).
      const registries = { knownRegistry: (registry: string) => config.registries.has(registry), fetchVerdict: (route: Route) => access.filters.get(route.registry)?.verdict(route.repository) };
      const fills = (route: Route, digest: string, signal: AbortSignal): Promise<OwnedFill> => blobs.ownedFill(route, digest, signal);
      await cluster.start({ blobs: owned, fills, stored: (digest) => cache.lookup(digest) !== undefined }, registries, sendBuffers);
    },
    close: async () => {
      await cluster?.close();
      await cache.close();
    },
    metricsText: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
  };
}

/** What buildServices adds for the status page; absent from services a test fakes (then there is no status page). */
export interface StatusServices {
  status?: StatusCollector | undefined;
  /** Refusals and upstream errors of this process, newest first. */
  recent?: RecentEvents | undefined;
  /** Whether the listener is reachable from other machines (default: its host is not loopback). */
  exposed?: boolean | undefined;
}

/** Options of buildApp that need I/O before it (the caller loads them). */
export interface AppOptions {
  /** HTTPS on the listener: the loaded files (TlsFiles.load), watched for changes while listening. */
  tls?: TlsFiles | undefined;
  /** How often the TLS files are re-read (default TLS_RELOAD_INTERVAL_MS); tests shorten it. */
  tlsReloadMs?: number;
  /** Put after `req-` in every request id, so processes logging side by side (`serve --workers`) never share one: `w1-` gives `req-w1-2s`. */
  requestIdPrefix?: string | undefined;
  /** How long a keep-alive connection must be silent during shutdown before it is closed (default DRAIN_QUIET_MS); tests shorten it. */
  drainQuietMs?: number;
}

/** Builds the Fastify app (not listening): wiring only. */
export function buildApp(config: Config, deps: Deps, services: Services & StatusServices = buildServices(config, deps), options: AppOptions = {}): FastifyInstance {
  const logger: FastifyBaseLogger = deps.logger;
  // Client logins are checked whenever an htpasswd file is configured; clients.access decides what they allow.
  const auth =
    config.clients.htpasswd !== undefined
      ? new ClientAuth(Htpasswd.load(config.clients.htpasswd), { clock: deps.clock, throttle: config.clients.loginThrottle })
      : undefined;
  const preflight = new Preflight({
    router: services.router,
    access: services.access,
    auth,
    metrics: services.metrics,
    // docker sends its login only after /v2/ asked for one: ask when a login could let it pull more than
    // anonymous clients may; when they may pull something and a login adds nothing, /v2/ answers 200.
    challengeBase: auth !== undefined && services.access.policy.loginMayWiden(),
    limits: config.clients.limits === undefined ? undefined : new ClientLimits(config.clients.limits, deps.clock),
    recent: services.recent,
  });
  let requests = 0;
  const idPrefix = `req-${options.requestIdPrefix ?? ''}`;
  const requestId = (): string => `${idPrefix}${(requests++).toString(36)}`;
  let closing = false;
  let server: Server | undefined;
  const tls = options.tls;
  if (config.tls !== undefined && tls?.options === undefined) throw new Error('tls: the certificate files must be loaded (TlsFiles.load) before buildApp');
  const drain = new ConnectionDrain(options.drainQuietMs);
  const sampling = new AccessSampling(config.log.access);
  const fast = fastManifestHandler({ services, logger, preflight, requestId, open: () => !closing, sampling });
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: requestId,
    exposeHeadRoutes: false,
    // The listener answers 503 itself (OCI JSON) once closing starts.
    return503OnClosing: false,
    bodyLimit: 1024 * 1024,
    routerOptions: { maxParamLength: 2048 },
    frameworkErrors,
    clientErrorHandler: clientErrorHandler(logger),
    // The server is the factory's below; this only tells Fastify its scheme, for "Server listening at https://…" and listen()'s answer.
    ...(tls === undefined ? {} : { https: {} }),
    // The manifest hot path in front of Fastify's handler; timeouts and limits from clients.connections.
    serverFactory: (handler) => {
      server = createListener(handler, { connections: config.clients.connections, logger, clock: deps.clock, fast, open: () => !closing, tls: tls?.options, metrics: services.metrics, drain });
      return server;
    },
  });
  app.decorate('pullgate', services);
  // Requests still arriving on open connections are answered (503, Connection: close) until each connection is
  // closed between requests; only then does Fastify close the server and the services.
  app.addHook('preClose', async () => {
    closing = true;
    if (server !== undefined) await drain.drain(server);
  });
  app.addHook('onReady', async () => services.start?.());
  app.addHook('onClose', () => services.close());
  if (auth !== undefined) app.addHook('onClose', () => auth.close());
  if (tls !== undefined) {
    // New handshakes get a rotated certificate; open connections keep theirs.
    app.addHook('onListen', (done) => {
      tls.watch((secure) => {
        if (server instanceof HttpsServer) server.setSecureContext(secure);
      }, options.tlsReloadMs);
      done();
    });
    app.addHook('onClose', () => tls.stop());
  }
  const checkMetrics =
    config.metrics.auth && auth !== undefined
      ? async (authorization: string | undefined, address: string): Promise<void> => {
          try {
            await auth.check(authorization, address);
          } catch (err) {
            services.metrics.requestsDenied.inc({ reason: err instanceof LoginThrottled ? 'throttled' : 'unauthenticated' });
            throw err;
          }
        }
      : undefined;
  const status = services.status;
  const statusAccess = (exposed: boolean): StatusAccess => new StatusAccess({ exposed, allow: config.status.allow, groups: config.clients.groups, auth });
  const metricsListen = config.metrics.listen;
  if (metricsListen !== undefined) {
    let metricsServer: Server | undefined;
    const extra = status === undefined ? undefined : statusHandler(status, statusAccess(!isLoopback(metricsListen.host)));
    app.addHook('onListen', async () => {
      metricsServer = await startMetricsListener(metricsListen, services, logger, checkMetrics, extra);
    });
    app.addHook('onClose', () => new Promise<void>((resolve) => (metricsServer === undefined ? resolve() : metricsServer.close(() => resolve()))));
  }
  registerErrorHandling(app);
  registerAccessLog(app, sampling);
  registerHealthRoutes(app);
  if (metricsListen === undefined) registerMetricsRoute(app, checkMetrics && ((request) => checkMetrics(request.headers.authorization, request.ip)));
  if (status !== undefined) registerStatusRoutes(app, status, statusAccess(services.exposed ?? !isLoopback(config.listen.host)));
  registerV2Routes(app, preflight);
  return app;
}
