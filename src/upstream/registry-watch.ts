import type { CredentialOrigin } from '../auth/credential.js';
import type { Clock } from '../core/clock.js';
import type { RecentEvents } from '../util/recent-events.js';
import type { Headers } from './http.js';
import { rateLimitOf, retryAfterMs, type RateLimit } from './rate-limit.js';

/** How long a 429 that names neither Retry-After nor a window holds the registry. */
const LIMITED_DEFAULT_MS = 60_000;

/** What one process last saw of one registry. Times are epoch ms. */
export interface RegistrySeen {
  lastSuccess: number | undefined;
  lastError: { time: number; reason: string } | undefined;
  /** The last rate limit an answer stated, and when. */
  rateLimit: (RateLimit & { seenAt: number }) | undefined;
  /** The kind of place the last credential came from (`config`, `file`, `ecr` …), never the account or secret. */
  credential: string | undefined;
}

/** Removes what a reason might carry beyond words: user info in URLs and query strings (presigned signatures). */
export function safeReason(text: string): string {
  return text
    .replace(/(https?:\/\/)[^/\s@]*@/gi, '$1')
    .replace(/\?[^\s)]*/g, '')
    .slice(0, 300);
}

/** The credential origin as a kind of source: the provider for minted ones, else the kind of place. */
function sourceKind(origin: CredentialOrigin): string {
  return origin.kind === 'provider' ? origin.provider : origin.kind;
}

/**
 * Per registry, what its upstream answers said: the last success, the last failure (network, 5xx,
 * 429, refused credentials) with a reason free of secrets, the rate limit of the last answer that
 * stated one, and the kind of credential used. Fed by the registry clients; read by the status page
 * and the rate-limit gauges. Failures also go to `recent` for the page's list of recent errors.
 */
export class RegistryWatch {
  private readonly seen = new Map<string, RegistrySeen>();
  /** Registry → until when (epoch ms) its last 429 holds it: the Retry-After, else the rate-limit window, else a minute. */
  private readonly limited = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly recent: RecentEvents | undefined,
  ) {}

  private entry(registry: string): RegistrySeen {
    let entry = this.seen.get(registry);
    if (entry === undefined) {
      entry = { lastSuccess: undefined, lastError: undefined, rateLimit: undefined, credential: undefined };
      this.seen.set(registry, entry);
    }
    return entry;
  }

  /** An answer from the registry itself (not a redirect target): 5xx and 429 count as failures. */
  recordAnswer(registry: string, status: number, headers: Headers): void {
    const entry = this.entry(registry);
    const now = this.clock.now();
    const limit = rateLimitOf(headers);
    if (limit !== undefined) entry.rateLimit = { ...limit, seenAt: now };
    if (status === 429) {
      const windowMs = entry.rateLimit?.windowSeconds === undefined ? undefined : entry.rateLimit.windowSeconds * 1000;
      this.limited.set(registry, now + (retryAfterMs(headers['retry-after'], now) ?? windowMs ?? LIMITED_DEFAULT_MS));
    }
    if (status >= 500 || status === 429) this.recordFailure(registry, status === 429 ? 'rate limited (429)' : `answered ${status}`);
    else entry.lastSuccess = now;
  }

  /** A request that failed without a usable answer (unreachable, refused credentials, a token server down). */
  recordFailure(registry: string, reason: string): void {
    const time = this.clock.now();
    const safe = safeReason(reason);
    this.entry(registry).lastError = { time, reason: safe };
    this.recent?.add({ kind: 'upstream', registry, reason: safe });
  }

  recordCredential(registry: string, origin: CredentialOrigin): void {
    this.entry(registry).credential = sourceKind(origin);
  }

  /** What was seen of a registry; undefined before its first request. */
  get(registry: string): RegistrySeen | undefined {
    return this.seen.get(registry);
  }

  /** Until when the registry's last 429 holds it (epoch ms); undefined when none did. */
  limitedUntil(registry: string): number | undefined {
    return this.limited.get(registry);
  }

  /** Registries with a known rate limit, for the gauges. */
  rateLimits(): [string, RateLimit][] {
    const out: [string, RateLimit][] = [];
    for (const [registry, entry] of this.seen) if (entry.rateLimit !== undefined) out.push([registry, entry.rateLimit]);
    return out;
  }
}
