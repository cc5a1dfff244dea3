/** A token as the processes of one host share it: the secret, when it expires upstream, and when to fetch a new one (epoch ms). */
export interface SharedToken {
  value: string;
  expiresAt: number;
  refreshAt: number;
}

/**
 * Tokens obtained once for every process of a host (the workers of `serve --workers`). `obtain` answers
 * with the token another process fetched while it is fresh (before its refreshAt); otherwise this process
 * runs `fetch`, alone on the host for that key, and its result is shared. When the process that fetched
 * fails (or dies), every waiting process runs `fetch` itself, as one process alone would.
 * Keys name what the token is for and never contain a secret (a credential enters only as its fingerprint).
 */
export interface HostTokens {
  obtain(key: string, fetch: () => Promise<SharedToken>): Promise<SharedToken>;
  /** The registry refused `value`: the host forgets it (unless another process already holds a newer one). */
  forget(key: string, value: string): void;
}
