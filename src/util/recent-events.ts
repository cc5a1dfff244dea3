import type { Clock } from '../core/clock.js';

/** One thing an operator should see on the status page: a refusal or an upstream error. Never a secret. */
export interface RecentEvent {
  /** Epoch ms. */
  time: number;
  kind: 'refused' | 'upstream';
  /** Why, in fixed words (`no_rule`, `limited`, `unreachable` …) or a message free of secrets. */
  reason: string;
  registry?: string | undefined;
  repository?: string | undefined;
  /** The client's user name (never a password); absent for anonymous clients and upstream events. */
  user?: string | undefined;
}

/** The events kept by default. */
export const RECENT_EVENTS = 50;

/** The last `capacity` events of one process, newest first when read: a ring, so memory stays bounded. */
export class RecentEvents {
  private readonly ring: RecentEvent[] = [];
  private next = 0;

  constructor(
    private readonly clock: Clock,
    private readonly capacity = RECENT_EVENTS,
  ) {}

  /** Keeps an event, stamped with the time now. */
  add(fact: Omit<RecentEvent, 'time'>): void {
    const event = { time: this.clock.now(), ...fact };
    if (this.ring.length < this.capacity) this.ring.push(event);
    else this.ring[this.next] = event;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Every event kept, newest first. */
  list(): RecentEvent[] {
    return [...this.ring].sort((a, b) => b.time - a.time);
  }
}
