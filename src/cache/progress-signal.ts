/**
 * "The next progress" of a fill: one promise shared by every reader waiting for it, settled (and replaced by a
 * fresh one on the next wait) when progress happens. Nothing is allocated while nobody waits.
 */
export class ProgressSignal {
  private next: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  /** Resolves at the next notify(). */
  wait(): Promise<void> {
    this.next ??= new Promise((resolve) => {
      this.wake = resolve;
    });
    return this.next;
  }

  /** Wakes every waiter; a no-op when nobody waits. */
  notify(): void {
    const wake = this.wake;
    if (wake === undefined) return;
    this.wake = undefined;
    this.next = undefined;
    wake();
  }
}
