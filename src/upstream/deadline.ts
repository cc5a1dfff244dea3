import { formatDuration } from '../config/units.js';
import { UpstreamUnavailable } from '../core/errors.js';

/**
 * Runs one upstream exchange whose answer is read whole (a manifest, tag list, referrers index or
 * token) under a total time limit, `upstream.deadline`: the idle timeout alone lets a body that
 * trickles one byte at a time run for ever. At the limit the exchange's signal aborts (undici drops
 * the connection) and the caller gets UpstreamUnavailable naming the registry at once (clients see
 * 502 UPSTREAM_ERROR), even while the exchange waits for something shared such as a token. `ms` 0
 * sets no limit. A client that goes away (`signal`) aborts it too, and that error is passed on as is.
 */
export async function withinDeadline<T>(
  registry: string,
  what: string,
  ms: number,
  signal: AbortSignal | undefined,
  run: (signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  if (ms <= 0) return run(signal);
  const deadline = new AbortController();
  const exceeded = (): UpstreamUnavailable =>
    new UpstreamUnavailable(registry, `${registry} did not finish answering ${what} within ${formatDuration(ms)} (upstream.deadline); the request was aborted`, true);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const err = exceeded();
      deadline.abort(err);
      reject(err);
    }, ms);
  });
  const running = run(signal === undefined ? deadline.signal : AbortSignal.any([signal, deadline.signal]));
  // Whichever loses the race settles unobserved.
  running.catch(() => undefined);
  expired.catch(() => undefined);
  try {
    return await Promise.race([running, expired]);
  } catch (err) {
    if (!deadline.signal.aborted || signal?.aborted === true) throw err;
    throw exceeded();
  } finally {
    clearTimeout(timer);
  }
}
