/** `clients.limits` as loaded: each limit is off when undefined. */
export interface LimitSettings {
  /** Requests per second per client, refilled continuously (token bucket). */
  rate: number | undefined;
  /** Requests a client may make at once after being idle (the bucket's size). */
  burst: number;
  /** Requests of one client in flight at once. */
  concurrency: number | undefined;
  /** Clients remembered at most; the least recently seen one starts afresh when forgotten. */
  clients: number;
}

/** The default bucket size for a rate: two seconds' worth (a pull asks for every layer at once), at least 1. */
export function defaultBurst(rate: number): number {
  return Math.max(1, Math.ceil(rate * 2));
}
