import type { Clock } from '../../core/deps.js';

/** A token with its expiry (epoch ms). */
export interface Expiring<T> {
  value: T;
  expiresAt: number;
}

/** How long a failed fetch is remembered, so a missing metadata server is not asked on every request. */
export const FAILURE_MEMORY_MS = 60_000;

/**
 * Holds one fetched token: reused until half its life has passed, fetched once for concurrent
 * callers, kept when a refresh fails while it is still valid, and a failure is remembered for a
 * minute. Every cloud and identity source (ECR, GCP, ACR, Chainguard) caches through it.
 */
export class CachedToken<T> {
  private current: { token: Expiring<T>; refreshAt: number } | undefined;
  private failure: { at: number; error: Error } | undefined;
  private inflight: Promise<Expiring<T>> | undefined;

  constructor(
    private readonly fetch: () => Promise<Expiring<T>>,
    private readonly clock: Clock,
  ) {}

  async get(): Promise<T> {
    return (await this.read()).value;
  }

  /** The token, and the error of a failed refresh when a still-valid older token is served instead. */
  async read(): Promise<{ value: T; staleAfter: Error | undefined }> {
    const now = this.clock.now();
    if (this.current && now < this.current.refreshAt) return { value: this.current.token.value, staleAfter: undefined };
    if (this.failure && now - this.failure.at < FAILURE_MEMORY_MS) {
      if (this.current && now < this.current.token.expiresAt) return { value: this.current.token.value, staleAfter: this.failure.error };
      throw this.failure.error;
    }
    try {
      this.inflight ??= this.fetch().finally(() => {
        this.inflight = undefined;
      });
      const token = await this.inflight;
      const fetchedAt = this.clock.now();
      const life = token.expiresAt - fetchedAt;
      this.current = { token, refreshAt: fetchedAt + life / 2 };
      this.failure = undefined;
      return { value: token.value, staleAfter: undefined };
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.failure = { at: this.clock.now(), error };
      if (this.current && this.clock.now() < this.current.token.expiresAt) return { value: this.current.token.value, staleAfter: error };
      throw error;
    }
  }

  invalidate(): void {
    this.current = undefined;
    this.failure = undefined;
  }
}
