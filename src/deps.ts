import { Agent, type Dispatcher } from 'undici';
import pino, { type Logger } from 'pino';

/** A source of wall-clock time in milliseconds; faked in tests so expiry and TTLs need no sleeping. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** What every module receives instead of reaching for globals: time, network and logging. */
export interface Deps {
  clock: Clock;
  /** undici dispatcher used for every upstream request (a MockAgent or a loopback Agent in tests). */
  dispatcher: Dispatcher;
  logger: Logger;
  /** Process environment, injected so credential lookups are testable. */
  env: NodeJS.ProcessEnv;
}

/**
 * Paths whose values pino replaces with "[redacted]". Explicit paths, not `*.x` wildcards: a
 * wildcard makes every log line cost ~17 µs more. pullgate never logs credential objects; these
 * catch the places a secret could still appear (headers, auth blocks, token answers).
 */
export const REDACT_PATHS = [
  'authorization',
  'password',
  'token',
  'secret',
  'identityToken',
  'access_token',
  'refresh_token',
  'auth.password',
  'auth.token',
  'auth.identityToken',
  'credential.secret',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'err.headers.authorization',
  'res.headers["set-cookie"]',
];

/** A pino JSON logger with pullgate's redaction rules, to stdout or the given destination. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  // Buffered, asynchronous writes to stdout: a synchronous write per access-log line costs a
  // quarter of the manifest hot path. server.ts flushes on shutdown.
  return pino(options, destination ?? pino.destination({ sync: false, minLength: 4096 }));
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
