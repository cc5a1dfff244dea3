import type { Clock } from '../../core/deps.js';
import type { HostTokens } from '../../core/host-tokens.js';

/** A token with its expiry (epoch ms). */
export interface Expiring<T> {
  value: T;
  expiresAt: number;
}

/** How long a failed fetch is remembered, so a missing metadata server is not asked on every request. */
export const FAILURE_MEMORY_MS = 60_000;

/** The processes of the host to share the token with, and the key it has there (what it is for, never a secret). */
export interface HostShare {
  tokens: HostTokens;
  key: string;
}

/**
 * Holds one fetched token: reused until half its life has passed, fetched once for concurrent
 * callers, kept when a refresh fails while it is still valid, and a failure is remembered for a
 * minute. Every cloud and identity source (ECR, GCP, ACR, Chainguard) caches through it. With a
 * `share`, a refresh asks the host first, so the workers of `serve --workers` fetch it once between them.
 */
export class CachedToken {
  private current: { token: Expiring<string>; refreshAt: number } | undefined;
  private failure: { at: number; error: Error } | undefined;
  private inflight: Promise<{ token: Expiring<string>; refreshAt: number }> | undefined;

  constructor(
    private readonly fetch: () => Promise<Expiring<string>>,
    private readonly clock: Clock,
    private readonly share?: HostShare,
  ) {}

  async get(): Promise<string> {
    return (await this.read()).value;
  }

  /** The token, and the error of a failed refresh when a still-valid older token is served instead. */
  async read(): Promise<{ value: string; staleAfter: Error | undefined }> {
    const now = this.clock.now();
    if (this.current && now < this.current.refreshAt) return { value: this.current.token.value, staleAfter: undefined };
    if (this.failure && now - this.failure.at < FAILURE_MEMORY_MS) {
      if (this.current && now < this.current.token.expiresAt) return { value: this.current.token.value, staleAfter: this.failure.error };
      throw this.failure.error;
    }
    try {
      this.inflight ??= this.refresh().finally(() => {
        this.inflight = undefined;
      });
      this.current = await this.inflight;
      this.failure = undefined;
      return { value: this.current.token.value, staleAfter: undefined };
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.failure = { at: this.clock.now(), error };
      if (this.current && this.clock.now() < this.current.token.expiresAt) return { value: this.current.token.value, staleAfter: error };
      throw error;
    }
  }

  /** A new token, refreshed once half its life has passed: fetched here, or (with a share) from the host. */
  private async refresh(): Promise<{ token: Expiring<string>; refreshAt: number }> {
    const fetchHere = async (): Promise<{ value: string; expiresAt: number; refreshAt: number }> => {
      const token = await this.fetch();
      const fetchedAt = this.clock.now();
      return { ...token, refreshAt: fetchedAt + (token.expiresAt - fetchedAt) / 2 };
    };
    const shared = this.share === undefined ? await fetchHere() : await this.share.tokens.obtain(this.share.key, fetchHere);
    return { token: { value: shared.value, expiresAt: shared.expiresAt }, refreshAt: shared.refreshAt };
  }

  invalidate(): void {
    // The host forgets the refused token too, so the next refresh anywhere fetches a new one.
    if (this.current !== undefined) this.share?.tokens.forget(this.share.key, this.current.token.value);
    this.current = undefined;
    this.failure = undefined;
  }
}
