/** Work the cache runs in the background (fills settling, uploads, eviction passes), which drain() and close() wait for. */
export class BackgroundWork {
  private readonly settling = new Set<Promise<void>>();

  /** Runs `work` in the background; its failure is the work's own business (each logs its own). */
  track(work: Promise<unknown>): void {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.settling.add(settled);
    void settled.finally(() => this.settling.delete(settled));
  }

  /** Resolves once every tracked piece of work has settled, including work started meanwhile. */
  async drain(): Promise<void> {
    while (this.settling.size > 0) await Promise.allSettled([...this.settling]);
  }
}
