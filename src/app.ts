import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from './config/config.js';
import type { Deps } from './deps.js';
import { registerAccessLog } from './http/access-log.js';
import { frameworkErrors, registerErrorHandling } from './http/error-plugin.js';
import { registerHealthRoutes } from './http/health-routes.js';
import type { Services } from './http/services.js';
import { registerV2Routes } from './http/v2-routes.js';
import { Cache } from './cache/cache.js';
import { registerMetricsRoute } from './http/metrics-route.js';
import { Htpasswd } from './auth/htpasswd.js';
import { ClientAuth } from './http/client-auth.js';
import { Preflight } from './http/preflight.js';
import { ClientLimits } from './access/client-limits.js';
import { buildAccessControl } from './access/resolve.js';
import type { TlsFiles } from './http/tls-files.js';
import { startMetricsListener } from './http/metrics-listener.js';
import type { Server } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import { fastManifestHandler } from './http/fast-manifests.js';
import { clientErrorHandler, createListener } from './http/listener.js';
import { Metrics } from './metrics.js';
import { LoginThrottled } from './errors.js';
import { BlobProxy } from './proxy/blob-proxy.js';
import { UpstreamBlobs } from './proxy/blobs.js';
import { UpstreamListings } from './proxy/listings.js';
import { ManifestProxy } from './proxy/manifest-proxy.js';
import { UpstreamManifests } from './proxy/manifests.js';
import { UpstreamHealth } from './proxy/upstream-health.js';
import { Upstreams } from './upstream/upstreams.js';
import { Router, type Route } from './routing/route.js';
import type { BlobAnswer, OwnedFill } from './proxy/types.js';
import { SendBuffers } from './http/send-chunks.js';
import { ClusterNode } from './cluster/cluster-node.js';
import { sharedTierFor } from './cache/shared-tier.js';
import type { ContentStore } from './storage/content-store.js';

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
   * access rules (default: its host is not loopback; tests inject it).
   */
  options: { sharedStore?: ContentStore; exposed?: boolean } = {},
): Services & { upstreams: Upstreams; cache: Cache; metrics: Metrics } {
  const upstreams = new Upstreams(config, deps);
  const shared = sharedTierFor(config.storage, deps, options.sharedStore);
  // Storage that cannot be written at start degrades to pass-through (with /readyz 503) rather than refusing to serve.
  const cache = new Cache({
    root: config.storage.path,
    maxSizeBytes: config.storage.maxSizeBytes,
    clock: deps.clock,
    logger: deps.logger,
    metrics,
    passThroughIfUnwritable: true,
    ...(shared === undefined ? {} : { shared }),
  });
  // Read when /metrics is collected: the host's cache size (shared by every worker) and this process's exchanges.
  metrics.readAtScrape({ cacheBytes: () => cache.sizeBytes, tokenExchanges: () => upstreams.tokens.exchanges });
  const health = new UpstreamHealth(deps.clock);
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
  return {
    config,
    router: new Router(config),
    sendBuffers,
    access,
    upstreams,
    cache,
    metrics,
    manifests: new ManifestProxy(new UpstreamManifests(upstreams), cache, health, metrics, policy, deps.clock),
    blobs,
    listings: new UpstreamListings(upstreams),
    ready: async () => {
      const [storage, shared] = await Promise.all([cache.probeStorage(), cache.shared?.probe()]);
      return { ready: storage.writable, storage, ...(shared === undefined ? {} : { shared }) };
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

/** Options of buildApp that need I/O before it (the caller loads them). */
export interface AppOptions {
  /** HTTPS on the listener: the loaded files (TlsFiles.load), watched for changes while listening. */
  tls?: TlsFiles | undefined;
  /** How often the TLS files are re-read (default TLS_RELOAD_INTERVAL_MS); tests shorten it. */
  tlsReloadMs?: number;
}

/** Builds the Fastify app (not listening): wiring only. */
export function buildApp(config: Config, deps: Deps, services: Services = buildServices(config, deps), options: AppOptions = {}): FastifyInstance {
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
    challengeBase: auth !== undefined && config.clients.anonymous !== true,
    limits: config.clients.limits === undefined ? undefined : new ClientLimits(config.clients.limits, deps.clock),
  });
  let requests = 0;
  const requestId = (): string => `req-${(requests++).toString(36)}`;
  let closing = false;
  let server: Server | undefined;
  const tls = options.tls;
  if (config.tls !== undefined && tls?.options === undefined) throw new Error('tls: the certificate files must be loaded (TlsFiles.load) before buildApp');
  const fast = fastManifestHandler({ services, logger, preflight, requestId, open: () => !closing });
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
    // The manifest hot path in front of Fastify's handler; timeouts and limits from clients.connections.
    serverFactory: (handler) => {
      server = createListener(handler, { connections: config.clients.connections, logger, clock: deps.clock, fast, open: () => !closing, tls: tls?.options });
      return server;
    },
  });
  app.decorate('pullgate', services);
  app.addHook('preClose', (done) => {
    closing = true;
    done();
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
  const metricsListen = config.metrics.listen;
  if (metricsListen !== undefined) {
    let metricsServer: Server | undefined;
    app.addHook('onListen', async () => {
      metricsServer = await startMetricsListener(metricsListen, services, logger, checkMetrics);
    });
    app.addHook('onClose', () => new Promise<void>((resolve) => (metricsServer === undefined ? resolve() : metricsServer.close(() => resolve()))));
  }
  registerErrorHandling(app);
  registerAccessLog(app);
  registerHealthRoutes(app);
  if (metricsListen === undefined) registerMetricsRoute(app, checkMetrics && ((request) => checkMetrics(request.headers.authorization, request.ip)));
  registerV2Routes(app, preflight);
  return app;
}
