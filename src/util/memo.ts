/**
 * A bounded memo for hot-path lookups (tags, links, routes): two generations of Maps. Entries go into the
 * young one; when it holds half the bound it becomes the old one and the previous old one is dropped, and a
 * hit in the old one moves the entry back to the young one. So recently used entries survive, at most `max`
 * are held, and memory grows with use: unlike lru-cache, which allocates its slots for `max` entries up front
 * (about 2 MiB of an idle process for each memo of 100,000).
 */
export class Memo<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  private readonly half: number;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 2) throw new RangeError(`a memo holds at least 2 entries, not ${max}`);
    this.half = Math.floor(max / 2);
  }

  get(key: K): V | undefined {
    const value = this.young.get(key);
    if (value !== undefined) return value;
    const aged = this.old.get(key);
    if (aged !== undefined) {
      this.old.delete(key);
      this.put(key, aged);
    }
    return aged;
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  set(key: K, value: V): void {
    this.old.delete(key);
    this.put(key, value);
  }

  delete(key: K): void {
    this.young.delete(key);
    this.old.delete(key);
  }

  clear(): void {
    this.young = new Map();
    this.old = new Map();
  }

  /** Entries held now (at most the bound). */
  get size(): number {
    return this.young.size + this.old.size;
  }

  private put(key: K, value: V): void {
    const fresh = !this.young.has(key);
    this.young.set(key, value);
    if (fresh && this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
  }
}
