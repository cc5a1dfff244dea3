import { isIPv6 } from 'node:net';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/deps.js';

/** `clients.loginThrottle`: failures allowed per address, the first lockout (doubling) and its cap. */
export interface ThrottleSettings {
  failures: number;
  lockoutMs: number;
  maxLockoutMs: number;
}

interface Entry {
  failures: number;
  lastFailure: number;
  lockedUntil: number;
  /** Logins from this address being checked right now. */
  checking: number;
}

/** Addresses remembered at most; the least recently seen is forgotten first. */
const MAX_ADDRESSES = 50_000;

/** IPv4-mapped IPv6 as IPv4, other IPv6 by its /64 (one host usually holds a whole /64), IPv4 as is. */
export function throttleKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] !== undefined) return mapped[1];
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('%')[0]?.split('::') ?? [];
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}

/**
 * Throttles failed client logins per address: after `failures` failed logins the address is
 * locked out for `lockoutMs`, doubling with each further failure up to `maxLockoutMs`; a
 * successful login, or `maxLockoutMs` with neither a failure nor a lockout, forgets the count. At most `failures`
 * logins from one address are checked at once. Time comes from the injected clock.
 */
export class LoginThrottle {
  private readonly entries = new LRUCache<string, Entry>({ max: MAX_ADDRESSES });

  constructor(
    private readonly settings: ThrottleSettings,
    private readonly clock: Clock,
  ) {}

  /** Milliseconds until this address may try a login; 0 when it may now. */
  waitMs(address: string): number {
    const entry = this.entry(throttleKey(address));
    if (entry === undefined) return 0;
    const now = this.clock.now();
    if (entry.lockedUntil > now) return entry.lockedUntil - now;
    return entry.checking >= this.settings.failures ? 1_000 : 0;
  }

  /** Marks a login from this address as being checked; call settle() when the check ends. */
  begin(address: string): void {
    const key = throttleKey(address);
    const entry = this.entry(key) ?? { failures: 0, lastFailure: 0, lockedUntil: 0, checking: 0 };
    entry.checking += 1;
    this.entries.set(key, entry);
  }

  /** Records the outcome of a check begun with begin(); undefined when the check itself failed. */
  settle(address: string, ok: boolean | undefined): void {
    const key = throttleKey(address);
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    entry.checking = Math.max(0, entry.checking - 1);
    if (ok === true) {
      entry.failures = 0;
      entry.lockedUntil = 0;
    } else if (ok === false) {
      this.failed(entry);
    }
    if (entry.failures === 0 && entry.checking === 0) this.entries.delete(key);
  }

  private failed(entry: Entry): void {
    const now = this.clock.now();
    entry.failures += 1;
    entry.lastFailure = now;
    const over = entry.failures - this.settings.failures;
    if (over < 0) return;
    const lockout = Math.min(this.settings.maxLockoutMs, this.settings.lockoutMs * 2 ** Math.min(over, 40));
    entry.lockedUntil = Math.max(entry.lockedUntil, now + lockout);
  }

  /** The address's entry, its failures forgotten after maxLockout with neither a failure nor a lockout. */
  private entry(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const now = this.clock.now();
    if (entry.failures > 0 && now - Math.max(entry.lastFailure, entry.lockedUntil) >= this.settings.maxLockoutMs) {
      entry.failures = 0;
      entry.lockedUntil = 0;
    }
    return entry;
  }
}
