import type { FastifyInstance } from 'fastify';
import type { RequestFacts } from './services.js';
import type { AccessSampling } from './access-sampling.js';

/** Characters of a User-Agent kept in the log: enough for docker's and containerd's, not a client's whole payload. */
export const USER_AGENT_MAX = 256;

/** The fields of the one log line written per request. */
export interface AccessRecord {
  method: string;
  path: string;
  endpoint: string | undefined;
  /** The authenticated user, or `anonymous`; never a password. */
  user: string;
  /** The client's User-Agent (which client made the request), cut to USER_AGENT_MAX characters; absent when none was sent. */
  userAgent?: string;
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

/** The User-Agent as logged: the first header only, cut to USER_AGENT_MAX characters; undefined when absent or empty. */
export function loggedUserAgent(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value === '') return undefined;
  return value.length > USER_AGENT_MAX ? `${value.slice(0, USER_AGENT_MAX)}…` : value;
}

/**
 * Builds the access-log fields; `length` is the Content-Length sent, used when the facts hold no byte count;
 * `userAgent` is the request's User-Agent header.
 */
export function accessRecord(
  method: string,
  path: string,
  facts: RequestFacts | null | undefined,
  status: number,
  length: unknown,
  finished: boolean,
  elapsedMs: number,
  userAgent: string | string[] | undefined,
): AccessRecord {
  const agent = loggedUserAgent(userAgent);
  return {
    method,
    path,
    endpoint: facts?.endpoint,
    user: facts?.user ?? 'anonymous',
    ...(agent === undefined ? {} : { userAgent: agent }),
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

/**
 * One log line per request (or, per `log.access`, per miss, refusal or error and a sample of hits): method, path,
 * endpoint, user, user agent, upstream registry, status, why it was denied, bytes, duration.
 */
export function registerAccessLog(app: FastifyInstance, sampling: AccessSampling): void {
  app.decorateRequest('facts', null);
  app.addHook('onResponse', async (request, reply) => {
    const weight = sampling.weight(reply.statusCode, request.facts?.source, reply.raw.writableFinished);
    if (weight === 0) return;
    request.log.info(
      withWeight(weight, accessRecord(
        request.method,
        request.url,
        request.facts,
        reply.statusCode,
        reply.getHeader('content-length'),
        reply.raw.writableFinished,
        reply.elapsedTime,
        request.headers['user-agent'],
      )),
      'request',
    );
  });
}

/** The record with `sampled: N` when it stands for N routine hits (`log.access: sampled`). */
export function withWeight(weight: number, record: AccessRecord): AccessRecord & { sampled?: number } {
  return weight === 1 ? record : { ...record, sampled: weight };
}
