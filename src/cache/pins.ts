/** Counts the readers and uploads of each stored blob, which an eviction pass passes over. */
export class Pins {
  private readonly counts = new Map<string, number>();

  pin(digest: string): void {
    this.counts.set(digest, (this.counts.get(digest) ?? 0) + 1);
  }

  unpin(digest: string): void {
    const count = (this.counts.get(digest) ?? 1) - 1;
    if (count <= 0) this.counts.delete(digest);
    else this.counts.set(digest, count);
  }

  isPinned(digest: string): boolean {
    return this.counts.has(digest);
  }
}
