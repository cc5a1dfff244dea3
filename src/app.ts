import { mkdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from './config/config.js';
import type { Deps } from './deps.js';
import { registerAccessLog } from './http/access-log.js';
import { registerErrorHandling } from './http/error-plugin.js';
import { registerHealthRoutes } from './http/health-routes.js';
import type { Services } from './http/services.js';
import { registerV2Routes } from './http/v2-routes.js';
import { UpstreamBlobs } from './proxy/blobs.js';
import { UpstreamListings } from './proxy/listings.js';
import { UpstreamManifests } from './proxy/manifests.js';
import { Upstreams } from './upstream/upstreams.js';

/** True when a file can be written in the storage directory. */
async function storageWritable(dir: string): Promise<boolean> {
  const probe = path.join(dir, `.readyz-${process.pid}`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(probe, 'ok');
    await unlink(probe);
    return true;
  } catch {
    return false;
  }
}

/** Wires the proxy services for a config. */
export function buildServices(config: Config, deps: Deps): Services & { upstreams: Upstreams } {
  const upstreams = new Upstreams(config, deps);
  return {
    config,
    upstreams,
    manifests: new UpstreamManifests(upstreams),
    blobs: new UpstreamBlobs(upstreams),
    listings: new UpstreamListings(upstreams),
    ready: () => storageWritable(config.storage.path),
  };
}

/** Builds the Fastify app (not listening): wiring only. */
export function buildApp(config: Config, deps: Deps, services: Services = buildServices(config, deps)): FastifyInstance {
  const logger: FastifyBaseLogger = deps.logger;
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    return503OnClosing: true,
    bodyLimit: 1024 * 1024,
    routerOptions: { maxParamLength: 2048 },
  });
  app.decorate('pullgate', services);
  registerErrorHandling(app);
  registerAccessLog(app);
  registerHealthRoutes(app);
  registerV2Routes(app);
  return app;
}
