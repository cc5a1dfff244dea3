import { Agent, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { createLogger } from './logging.js';
import { type Clock, systemClock } from './clock.js';
import type { HostTokens } from './host-tokens.js';

export { createLogger } from './logging.js';
// In a module of its own so that commands without network (the `cache` ones) can have the clock without undici.
export { type Clock, systemClock } from './clock.js';

/** What every module receives instead of reaching for globals: time, network and logging. */
export interface Deps {
  clock: Clock;
  /** undici dispatcher used for every upstream request (a MockAgent or a loopback Agent in tests). */
  dispatcher: Dispatcher;
  logger: Logger;
  /** Process environment, injected so credential lookups are testable. */
  env: NodeJS.ProcessEnv;
  /** Tokens shared by the processes of the host (a worker of `serve --workers`); each process fetches its own when absent. */
  hostTokens?: HostTokens;
}

/** Builds the production dependencies: system clock, a keep-alive undici Agent and a pino JSON logger. */
export function defaultDeps(level = 'info'): Deps {
  return {
    clock: systemClock,
    dispatcher: new Agent({ connections: 64, keepAliveTimeout: 30_000, connectTimeout: 10_000 }),
    logger: createLogger(level),
    env: process.env,
  };
}
