/** A source of wall-clock time in milliseconds; faked in tests so expiry and TTLs need no sleeping. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
