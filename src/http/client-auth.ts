import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { LRUCache } from 'lru-cache';
import type { Htpasswd } from '../auth/htpasswd.js';
import { errorBody } from './error-map.js';

/** Paths open to anyone even when clients must authenticate (probes). */
const OPEN_PATHS = new Set(['/healthz', '/readyz']);
/** A verified Authorization header is trusted this long, so bcrypt runs once per client, not per request. */
const VERIFIED_TTL_MS = 5 * 60_000;

function credentialsOf(header: string | undefined): { user: string; password: string } | undefined {
  if (header?.slice(0, 6).toLowerCase() !== 'basic ') return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Requires HTTP Basic credentials from an htpasswd file on every request but the probes, when
 * `clients.anonymous` is false. This challenge is pullgate's own; upstream challenges are never
 * forwarded.
 */
export function registerClientAuth(app: FastifyInstance, htpasswd: Htpasswd): void {
  const verified = new LRUCache<string, true>({ max: 10_000, ttl: VERIFIED_TTL_MS });
  app.addHook('onRequest', async (request, reply) => {
    if (OPEN_PATHS.has(request.url.split('?')[0] ?? '')) return;
    const header = request.headers.authorization;
    const key = header === undefined ? '' : createHash('sha256').update(header).digest('hex');
    if (header !== undefined && verified.has(key)) return;
    const credentials = credentialsOf(header);
    if (credentials && (await htpasswd.verify(credentials.user, credentials.password))) {
      verified.set(key, true);
      return;
    }
    await reply
      .code(401)
      .header('www-authenticate', 'Basic realm="pullgate"')
      .header('content-type', 'application/json; charset=utf-8')
      .send(errorBody({ code: 'UNAUTHORIZED', message: 'pullgate requires client credentials (clients.anonymous is false)', detail: undefined }));
  });
}
