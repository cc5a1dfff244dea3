import { LRUCache } from 'lru-cache';
import { throttleKey } from '../client-auth/login-throttle.js';
import type { Clock } from '../core/deps.js';
import { type LimitSettings, defaultBurst } from '../config/limits.js';

export { type LimitSettings, defaultBurst };


/** The outcome of one admission: a release to call when the response ends, or how long to wait. */
export type Admission = { ok: true; release: () => void } | { ok: false; retryAfterSeconds: number; limit: 'rate' | 'concurrency' };

interface ClientState {
  tokens: number;
  at: number;
  inFlight: number;
}


/** The key a client is counted under: its user name when logged in, else its address (IPv6 by /64). */
export function limitKey(user: string | undefined, address: string): string {
  return user !== undefined ? `user ${user}` : `address ${throttleKey(address)}`;
}

/**
 * Per-client request-rate (token bucket) and concurrency limits, keyed by the logged-in user, else
 * by the client address; time from the injected clock; memory bounded by an LRU of client states.
 */
export class ClientLimits {
  private readonly states: LRUCache<string, ClientState>;

  constructor(
    private readonly settings: LimitSettings,
    private readonly clock: Clock,
  ) {
    this.states = new LRUCache({ max: settings.clients });
  }

  /** Clients currently remembered (for tests: the memory bound). */
  get size(): number {
    return this.states.size;
  }

  /** Admits one request of `user` (undefined: anonymous) from `address`, or says how long to wait. */
  admit(user: string | undefined, address: string): Admission {
    const { rate, burst, concurrency } = this.settings;
    const key = limitKey(user, address);
    const now = this.clock.now();
    let state = this.states.get(key);
    if (state === undefined) {
      state = { tokens: burst, at: now, inFlight: 0 };
      this.states.set(key, state);
    }
    if (concurrency !== undefined && state.inFlight >= concurrency) return { ok: false, retryAfterSeconds: 1, limit: 'concurrency' };
    if (rate !== undefined) {
      state.tokens = Math.min(burst, state.tokens + (Math.max(0, now - state.at) * rate) / 1000);
      state.at = now;
      if (state.tokens < 1) return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - state.tokens) / rate)), limit: 'rate' };
      state.tokens -= 1;
    }
    state.inFlight += 1;
    const held = state;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        held.inFlight -= 1;
      },
    };
  }
}

/**
 * Open connections per client address (IPv4, or the IPv6 /64, as `clients.loginThrottle` keys them),
 * so one host holding idle connections cannot take every slot of `clients.connections.max`. Memory is
 * bounded by the open connections: an address with none left is forgotten.
 */
export class AddressConnections {
  private readonly open = new Map<string, number>();

  constructor(private readonly perAddress: number) {}

  /** Addresses with a connection open now (for tests: nothing is kept for closed ones). */
  get addresses(): number {
    return this.open.size;
  }

  /**
   * Counts a new connection from `address`: the release to call once when it closes, or, when the address
   * already holds `perAddress` connections, the key it is counted under (refuse the connection).
   */
  admit(address: string): { ok: true; release: () => void } | { ok: false; key: string } {
    const key = throttleKey(address);
    const count = this.open.get(key) ?? 0;
    if (count >= this.perAddress) return { ok: false, key };
    this.open.set(key, count + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        const left = (this.open.get(key) ?? 1) - 1;
        if (left <= 0) this.open.delete(key);
        else this.open.set(key, left);
      },
    };
  }
}
