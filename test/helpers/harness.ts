import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from 'undici';
import type { FastifyInstance } from 'fastify';
import { buildApp, buildServices, type AppOptions } from '../../src/app/app.js';
import type { Cache } from '../../src/cache/cache.js';
import type { Config } from '../../src/config/config.js';
import { loadConfigText } from '../../src/config/load.js';
import { createLogger, type Deps } from '../../src/core/deps.js';
import { FakeClock } from './fake-clock.js';

export interface Harness {
  app: FastifyInstance;
  config: Config;
  cache: Cache;
  clock: FakeClock;
  deps: Deps;
  storage: string;
  /** Log lines pullgate wrote, for leak checks. */
  logs: string[];
  /** Listens on 127.0.0.1:0 (for tests that need real sockets) and returns the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

/**
 * Builds pullgate in-process on a YAML config (storage in a fresh temp dir, or `options.storage`, which close()
 * then leaves for the caller: a restart over the same storage), with a fake clock and captured logs.
 */
export function harness(
  yaml: string,
  options: { clock?: FakeClock; env?: NodeJS.ProcessEnv; exposed?: boolean; storage?: string; maxSize?: string; app?: AppOptions } = {},
): Harness {
  const storage = options.storage ?? mkdtempSync(path.join(tmpdir(), 'pullgate-test-'));
  const clock = options.clock ?? new FakeClock();
  const logs: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => logs.push(line) });
  const dispatcher = new Agent({ keepAliveTimeout: 1000 });
  const deps: Deps = { clock, dispatcher, logger, env: options.env ?? {} };
  const maxSize = options.maxSize === undefined ? '' : `, maxSize: ${options.maxSize}`;
  const config = loadConfigText(`${yaml}\nstorage: { path: ${JSON.stringify(storage)}${maxSize} }\n`, deps.env, 'test', storage);
  const services = buildServices(config, deps, undefined, options.exposed === undefined ? {} : { exposed: options.exposed });
  // Connections left open by a test are closed soon after close() begins, not after the production quiet period.
  const app = buildApp(config, deps, services, { drainQuietMs: 20, ...options.app });
  return {
    app,
    config,
    cache: services.cache,
    clock,
    deps,
    storage,
    logs,
    async listen() {
      return app.listen({ host: '127.0.0.1', port: 0 });
    },
    async close() {
      await app.close();
      await dispatcher.close();
      if (options.storage === undefined) rmSync(storage, { recursive: true, force: true });
    },
  };
}
