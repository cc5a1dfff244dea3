import { Memo } from './memo.js';

/**
 * Lets something be done for a key at most once per `intervalMs` (renewing a read time, writing an access
 * time): the time it was last done is kept in a bounded memo, so a key forgotten there is done early, never late.
 */
export class PerKeyInterval<K> {
  private readonly last: Memo<K, number>;

  constructor(
    max: number,
    private readonly intervalMs: number,
  ) {
    this.last = new Memo(max);
  }

  /** True, with `now` kept as the key's time, when it was not done within the interval before `now`. */
  due(key: K, now: number): boolean {
    const last = this.last.get(key);
    if (last !== undefined && now - last < this.intervalMs) return false;
    this.last.set(key, now);
    return true;
  }

  /** Notes that it was done for `key` at `now` by other means (an upload is as good as a refresh). */
  done(key: K, now: number): void {
    this.last.set(key, now);
  }

  forget(key: K): void {
    this.last.delete(key);
  }
}
