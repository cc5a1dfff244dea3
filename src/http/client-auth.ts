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

function keyOf(header: string): string {
  return createHash('sha256').update(header).digest('hex');
}

/** HTTP Basic checks of clients against an htpasswd file, remembering headers that passed. */
export class ClientAuth {
  private readonly verified = new LRUCache<string, true>({ max: 10_000, ttl: VERIFIED_TTL_MS });

  constructor(private readonly htpasswd: Htpasswd) {}

  /** True when this Authorization header passed a check recently: no bcrypt, no await. */
  trusted(header: string | undefined): boolean {
    return header !== undefined && this.verified.has(keyOf(header));
  }

  /** Checks the header against the htpasswd file (bcrypt) and remembers it when it passes. */
  async verify(header: string | undefined): Promise<boolean> {
    if (this.trusted(header)) return true;
    const credentials = credentialsOf(header);
    if (header === undefined || credentials === undefined) return false;
    if (!(await this.htpasswd.verify(credentials.user, credentials.password))) return false;
    this.verified.set(keyOf(header), true);
    return true;
  }
}

/**
 * Requires HTTP Basic credentials from an htpasswd file on every request but the probes, when
 * `clients.anonymous` is false. This challenge is pullgate's own; upstream challenges are never
 * forwarded.
 */
export function registerClientAuth(app: FastifyInstance, auth: ClientAuth): void {
  app.addHook('onRequest', async (request, reply) => {
    if (OPEN_PATHS.has(request.url.split('?')[0] ?? '')) return;
    if (await auth.verify(request.headers.authorization)) return;
    await reply
      .code(401)
      .header('www-authenticate', 'Basic realm="pullgate"')
      .header('content-type', 'application/json; charset=utf-8')
      .send(errorBody({ code: 'UNAUTHORIZED', message: 'pullgate requires client credentials (clients.anonymous is false)', detail: undefined }));
  });
}
