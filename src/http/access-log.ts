import type { FastifyInstance } from 'fastify';
import type { RequestFacts } from './services.js';

/** The fields of the one log line written per request. */
export interface AccessRecord {
  method: string;
  path: string;
  endpoint: string | undefined;
  /** The authenticated user, or `anonymous`; never a password. */
  user: string;
  registry: string | undefined;
  repository: string | undefined;
  source: string | undefined;
  status: number;
  /** Set on a refused request: the reason (rule, no_rule, registry_policy, unauthenticated, throttled) and what decided it. */
  denied?: string;
  rule?: string;
  bytes: number;
  aborted: boolean;
  durationMs: number;
}

/** Builds the access-log fields; `length` is the Content-Length sent, used when the facts hold no byte count. */
export function accessRecord(
  method: string,
  path: string,
  facts: RequestFacts | null | undefined,
  status: number,
  length: unknown,
  finished: boolean,
  elapsedMs: number,
): AccessRecord {
  return {
    method,
    path,
    endpoint: facts?.endpoint,
    user: facts?.user ?? 'anonymous',
    registry: facts?.registry,
    repository: facts?.repository,
    source: facts?.source,
    status,
    ...(facts?.denied !== undefined ? { denied: facts.denied, rule: facts.rule } : {}),
    bytes: facts?.bytes ?? (method === 'HEAD' ? 0 : Number(length ?? 0)),
    aborted: !finished,
    durationMs: Math.round(elapsedMs * 10) / 10,
  };
}

/** One log line per request: method, path, endpoint, user, upstream registry, status, why it was denied, bytes, duration. */
export function registerAccessLog(app: FastifyInstance): void {
  app.decorateRequest('facts', null);
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      accessRecord(
        request.method,
        request.url,
        request.facts,
        reply.statusCode,
        reply.getHeader('content-length'),
        reply.raw.writableFinished,
        reply.elapsedTime,
      ),
      'request',
    );
  });
}
