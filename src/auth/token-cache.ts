import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/deps.js';
import type { PullObserver } from './pull-observer.js';
import type { Credential } from './credential.js';
import { refreshMargin, type IssuedToken } from './token-response.js';

/** What a token is for: one registry, realm, service, scope set and credential. */
export interface TokenRequest {
  registry: string;
  realm: string;
  service: string | undefined;
  scopes: string[];
  credential: Credential;
  /** Told about the exchange (not part of the cache key); when requests share one exchange, the first one's. */
  observe?: PullObserver;
}

/** Performs one token exchange; supplied by upstream/ so this module does no network I/O. */
export type TokenExchange = (request: TokenRequest) => Promise<IssuedToken>;

/** Most tokens kept at once: one per (registry, repository, credential) in use. */
const MAX_TOKENS = 10_000;

/**
 * Caches bearer tokens per (registry, realm, service, scope, credential) until shortly before they
 * expire; concurrent misses for one key share a single exchange (lru-cache `fetchMethod`).
 * A token is never reused for another scope: cgr.dev answers 403 to that.
 */
export class TokenCache {
  private readonly cache: LRUCache<string, IssuedToken, TokenRequest>;
  /** Exchanges performed, for metrics and tests. */
  exchanges = 0;

  constructor(
    exchange: TokenExchange,
    private readonly clock: Clock,
  ) {
    this.cache = new LRUCache<string, IssuedToken, TokenRequest>({
      max: MAX_TOKENS,
      ttl: 60_000,
      ttlResolution: 0,
      ignoreFetchAbort: true,
      perf: { now: () => clock.now() },
      fetchMethod: async (_key, _stale, { options, context }) => {
        this.exchanges++;
        const issued = await exchange(context);
        const now = this.clock.now();
        const lifetime = issued.expiresAt - now;
        options.ttl = Math.max(1, lifetime - refreshMargin(lifetime));
        return issued;
      },
    });
  }

  static key(request: TokenRequest): string {
    return JSON.stringify([
      request.registry,
      request.realm,
      request.service ?? '',
      [...request.scopes].sort().join(' '),
      request.credential.fingerprint,
    ]);
  }

  /** Returns a valid token for the request, exchanging once if none is cached. */
  async get(request: TokenRequest): Promise<string> {
    return (await this.issue(request)).token;
  }

  /** Like get, with the token's expiry. */
  async issue(request: TokenRequest): Promise<IssuedToken> {
    const issued = await this.cache.fetch(TokenCache.key(request), { context: request });
    if (issued === undefined) throw new Error('token exchange returned nothing');
    return issued;
  }

  /** Forgets the token for a request (upstream answered 401 to it). */
  invalidate(request: TokenRequest): void {
    this.cache.delete(TokenCache.key(request));
  }

  get size(): number {
    return this.cache.size;
  }
}
