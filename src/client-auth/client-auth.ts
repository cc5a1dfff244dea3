import { createHmac, randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { LRUCache } from 'lru-cache';
import { BcryptPool } from './bcrypt-pool.js';
import type { Htpasswd } from './htpasswd.js';
import { LoginThrottle, type ThrottleSettings } from './login-throttle.js';
import { systemClock, type Clock } from '../core/deps.js';
import { ClientUnauthorized, LoginThrottled } from '../core/errors.js';

/** A verified Authorization header is trusted this long, so bcrypt runs once per client, not per request. */
const VERIFIED_TTL_MS = 5 * 60_000;
/** A refused Authorization header is refused again without bcrypt for this long (a client retrying a stale password). */
const FAILED_TTL_MS = 5 * 60_000;
/** Headers remembered at most, verified and failed each. */
const MAX_REMEMBERED = 10_000;
/** bcrypt comparisons queued at most across all addresses; beyond it logins are told to retry. */
const MAX_CHECKING = 64;
/** The defaults of `clients.loginThrottle`. */
export const DEFAULT_THROTTLE: ThrottleSettings = { failures: 5, lockoutMs: 1_000, maxLockoutMs: 15 * 60_000 };

function credentialsOf(header: string): { user: string; password: string } | undefined {
  if (header.slice(0, 6).toLowerCase() !== 'basic ') return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * The Authorization header as a login, or undefined when it carries none: absent, blank, or HTTP Basic
 * with an empty user and password (`Basic Og==`, what skopeo and podman send after a challenge when they
 * hold no login). Such a client is anonymous, not a failed login.
 */
export function loginHeader(header: string | undefined): string | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  if (header.slice(0, 6).toLowerCase() !== 'basic ') return header;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  return decoded === '' || decoded === ':' ? undefined : header;
}

export interface ClientAuthOptions {
  clock?: Clock;
  throttle?: ThrottleSettings;
  /** bcrypt worker threads (default: 1, or 2 with more than 2 cores). */
  workers?: number;
}

/**
 * HTTP Basic checks of clients against an htpasswd file: bcrypt runs on worker threads, headers
 * that passed or failed recently are answered from memory (as an HMAC with a per-process key,
 * never the plaintext), and failed logins are throttled per client address.
 */
export class ClientAuth {
  private readonly key = randomBytes(32);
  /** HMAC of a verified header → its user. */
  private readonly verified: LRUCache<string, string>;
  private readonly failed: LRUCache<string, true>;
  private readonly throttle: LoginThrottle;
  private readonly pool: BcryptPool;

  constructor(
    private readonly htpasswd: Htpasswd,
    options: ClientAuthOptions = {},
  ) {
    const clock = options.clock ?? systemClock;
    const perf = { now: () => clock.now() };
    this.verified = new LRUCache({ max: MAX_REMEMBERED, ttl: VERIFIED_TTL_MS, perf });
    this.failed = new LRUCache({ max: MAX_REMEMBERED, ttl: FAILED_TTL_MS, perf });
    this.throttle = new LoginThrottle(options.throttle ?? DEFAULT_THROTTLE, clock);
    this.pool = new BcryptPool(options.workers ?? (availableParallelism() > 2 ? 2 : 1));
  }

  private keyOf(header: string): string {
    return createHmac('sha256', this.key).update(header).digest('base64');
  }

  /** True when this Authorization header passed a check recently: no bcrypt, no await. */
  trusted(header: string | undefined): boolean {
    return this.userOf(header) !== undefined;
  }

  /** The user of an Authorization header that passed a check recently, without bcrypt or await; else undefined. */
  userOf(header: string | undefined): string | undefined {
    return header === undefined ? undefined : this.verified.get(this.keyOf(header));
  }

  /** Checks the header against the htpasswd file (bcrypt) and remembers it when it passes. */
  async verify(header: string | undefined, address = 'unknown'): Promise<boolean> {
    try {
      await this.check(header, address);
      return true;
    } catch (err) {
      if (err instanceof ClientUnauthorized || err instanceof LoginThrottled) return false;
      throw err;
    }
  }

  /**
   * Resolves with the user when the header's credentials are good; otherwise throws ClientUnauthorized (missing,
   * malformed or wrong, each with its own message) or LoginThrottled. Credentials verified in the
   * last five minutes pass even from a locked-out address; a locked-out address gets no bcrypt.
   */
  async check(header: string | undefined, address: string): Promise<string> {
    if (header === undefined || header.trim() === '') {
      throw new ClientUnauthorized('missing', 'pullgate requires client credentials and the request carried none: log in first (docker login <mirror>)');
    }
    const key = this.keyOf(header);
    const known = this.verified.get(key);
    if (known !== undefined) return known;
    const credentials = credentialsOf(header);
    if (credentials === undefined) {
      throw new ClientUnauthorized('malformed', 'pullgate accepts only HTTP Basic client credentials (user:password); the Authorization header was not that');
    }
    const waitMs = this.throttle.waitMs(address);
    if (waitMs > 0) {
      const seconds = Math.ceil(waitMs / 1000);
      throw new LoginThrottled(seconds, `too many failed logins from this address; try again in ${seconds} s`);
    }
    if (this.failed.has(key)) throw wrong();
    if (this.pool.pending >= MAX_CHECKING) throw new LoginThrottled(1, 'too many logins are being checked at once; try again in 1 s');
    this.throttle.begin(address);
    let ok: boolean | undefined;
    try {
      const hash = this.htpasswd.hash(credentials.user);
      // An unknown user costs the same bcrypt as a known one, so timing does not reveal user names.
      ok = (await this.pool.compare(credentials.password, hash ?? this.htpasswd.decoyHash)) && hash !== undefined;
    } finally {
      this.throttle.settle(address, ok);
    }
    if (!ok) {
      this.failed.set(key, true);
      throw wrong();
    }
    this.verified.set(key, credentials.user);
    return credentials.user;
  }

  /** Ends the bcrypt workers. */
  close(): Promise<void> {
    return this.pool.close();
  }
}

function wrong(): ClientUnauthorized {
  return new ClientUnauthorized('wrong', 'the client credentials were not accepted: unknown user or wrong password (clients.htpasswd)');
}
