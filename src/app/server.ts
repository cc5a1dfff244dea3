import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { buildApp, buildServices } from './app.js';
import type { Config } from '../config/config.js';
import type { Deps } from '../core/deps.js';
import { configWarnings } from '../config/warnings.js';
import { exposureWarnings } from '../access/exposure.js';
import { TlsFiles } from '../http/tls-files.js';
import { Metrics } from '../core/metrics.js';
import { processRuntime, reportRuntime } from '../core/runtime-flags.js';
import type { StatusCollector } from '../status/collector.js';

/** How long in-flight pulls may take to finish after SIGTERM before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 25_000;

/** Starts listening and installs graceful shutdown on SIGTERM/SIGINT. Resolves with the address. */
export async function serve(
  config: Config,
  deps: Deps,
  /**
   * `beforeListen`: awaited once the app is built, before it listens (workers wait for one another there).
   * `hostMetrics`: given this process's registry, what /metrics answers instead of it (a worker: every
   * worker's figures, summed by the primary). `startup`: fields for the start-up line (workers and why).
   * `requestIdPrefix`: see AppOptions (a worker's index, so request ids are unique on the host).
   * `keepTemps`: a worker replacing a dead one leaves the temp files of the others' fills.
   * `hostStatus`: given this process's status collector, joins it to the host's (a worker: the status page
   * shows every worker).
   */
  options: {
    beforeListen?: () => Promise<void>;
    hostMetrics?: (registry: Registry) => () => Promise<{ contentType: string; body: string }>;
    hostStatus?: (collector: StatusCollector) => void;
    startup?: Record<string, unknown>;
    requestIdPrefix?: string;
    keepTemps?: boolean;
  } = {},
): Promise<{ app: FastifyInstance; address: string }> {
  // Unreadable or mismatched certificate files stop the start here (the CLI exits 2 with the file at fault).
  const tls = config.tls === undefined ? undefined : new TlsFiles(config.tls, deps.logger);
  await tls?.load();
  const metrics = new Metrics();
  const services = buildServices(config, deps, metrics, { keepTemps: options.keepTemps === true });
  const hostMetrics = options.hostMetrics?.(metrics.registry);
  if (services.status !== undefined) options.hostStatus?.(services.status);
  const app = buildApp(config, deps, hostMetrics === undefined ? services : { ...services, metricsText: hostMetrics }, { tls, requestIdPrefix: options.requestIdPrefix });
  await options.beforeListen?.();
  // With tls:, buildApp tells Fastify the scheme: the address (and Fastify's own line) say https://.
  const address = await app.listen({ host: config.listen.host, port: config.listen.port });
  deps.logger.info(
    {
      address,
      config: config.source,
      storage: config.storage.path,
      registries: [...config.registries.keys()],
      tls: config.tls === undefined ? 'off' : config.tls.clientCA === undefined ? 'on' : 'mutual',
      ...options.startup,
      ...(config.metrics.listen !== undefined ? { metrics: `http://${config.metrics.listen.host}:${config.metrics.listen.port}/metrics` } : {}),
    },
    'pullgate listening',
  );
  if (config.unsetVariables.length > 0) {
    deps.logger.warn({ variables: config.unsetVariables }, 'config refers to unset environment variables');
  }
  for (const warning of configWarnings(config)) deps.logger.warn(warning);
  for (const warning of exposureWarnings(config)) deps.logger.warn({ exposure: true }, warning);
  reportRuntime(deps.logger, metrics, processRuntime());
  // Start-up lines go out now, not when the buffer fills: `kubectl logs` must show a running server.
  deps.logger.flush();
  const crash = (err: unknown): void => {
    // fatal is written synchronously (see logging.ts) before the process ends
    deps.logger.fatal({ err }, 'pullgate stopped on an unexpected error');
    process.exit(1);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    deps.logger.info({ signal }, 'shutting down: finishing in-flight requests');
    const timer = setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS);
    timer.unref();
    const exit = (code: number): void => {
      deps.logger.flush(() => process.exit(code));
    };
    app.close().then(
      () => exit(0),
      () => exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return { app, address };
}
