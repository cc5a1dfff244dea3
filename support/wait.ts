import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  /** What is awaited, for the error message. */
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
  /** Called on every round; throw from it to stop waiting early (e.g. the process died). */
  abortIf?: () => void;
  /** Extra text for the timeout error (e.g. the tail of a log). */
  describe?: () => string;
}

/** Polls `probe` until it returns a value other than undefined, within a bounded deadline. */
export async function waitFor<T>(probe: () => Promise<T | undefined>, opts: WaitOptions): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let lastError = '';
  for (;;) {
    opts.abortIf?.();
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) {
      const extra = opts.describe?.() ?? '';
      throw new Error(
        `timed out waiting for ${opts.what}` +
          (lastError === '' ? '' : ` (last error: ${lastError})`) +
          (extra === '' ? '' : `\n${extra}`),
      );
    }
    await delay(opts.intervalMs ?? 100);
  }
}

/** Polls a URL until it answers with the expected status; returns that response's body. */
export async function waitForHttp(
  url: string,
  expectStatus: number,
  opts: Omit<WaitOptions, 'what'> & { what?: string },
): Promise<string> {
  return waitFor(
    async () => {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      const body = await res.text();
      return res.status === expectStatus ? body : undefined;
    },
    { ...opts, what: opts.what ?? `${url} to answer ${expectStatus}` },
  );
}
