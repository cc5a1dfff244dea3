import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/deps.js';
import type { PullObserver } from './pull-observer.js';
import type { Credential } from './credential.js';
import type { HostTokens } from '../core/host-tokens.js';
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
 * A token is never reused for another scope: cgr.dev answers 403 to that. With `host` (the workers of
 * `serve --workers`), a miss asks the host first, so each token is exchanged once for all its processes.
 */
export class TokenCache {
  private readonly cache: LRUCache<string, IssuedToken, TokenRequest>;
  /** Exchanges performed, for metrics and tests. */
  exchanges = 0;

  constructor(
    exchange: TokenExchange,
    private readonly clock: Clock,
    private readonly host?: HostTokens,
  ) {
    this.cache = new LRUCache<string, IssuedToken, TokenRequest>({
      max: MAX_TOKENS,
      ttl: 60_000,
      ttlResolution: 0,
      ignoreFetchAbort: true,
      perf: { now: () => clock.now() },
      fetchMethod: async (key, _stale, { options, context }) => {
        const fetch = async (): Promise<IssuedToken> => {
          this.exchanges++;
          return exchange(context);
        };
        if (this.host === undefined) {
          const issued = await fetch();
          options.ttl = this.ttlOf(issued.expiresAt);
          return issued;
        }
        const shared = await this.host.obtain(`bearer ${key}`, async () => {
          const issued = await fetch();
          return { value: issued.token, expiresAt: issued.expiresAt, refreshAt: this.clock.now() + this.ttlOf(issued.expiresAt) };
        });
        options.ttl = Math.max(1, shared.refreshAt - this.clock.now());
        return { token: shared.value, expiresAt: shared.expiresAt, refreshToken: undefined };
      },
    });
  }

  /** How long a token that expires at `expiresAt` is used from now: its lifetime less the refresh margin. */
  private ttlOf(expiresAt: number): number {
    const lifetime = expiresAt - this.clock.now();
    return Math.max(1, lifetime - refreshMargin(lifetime));
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
    const key = TokenCache.key(request);
    const refused = this.cache.peek(key);
    this.cache.delete(key);
    if (refused !== undefined) this.host?.forget(`bearer ${key}`, refused.token);
  }

  get size(): number {
    return this.cache.size;
  }
}
