import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Upstream bytes taken in by a cache's fills between two minor collections. */
export const SWEEP_EVERY_BYTES = 4 * 1024 * 1024;

/** V8's collector as the gc extension exposes it (`type: 'minor'` is a scavenge of the young generation only). */
type Collect = (options: { type: 'minor' | 'major' }) => void;

function isCollect(value: unknown): value is Collect {
  return typeof value === 'function';
}

/**
 * V8's minor collection, taken from a fresh context with the gc extension switched on for that moment
 * only (the main context never gets a global `gc`); undefined where the runtime refuses.
 */
export function minorCollection(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return isCollect(gc) ? () => gc({ type: 'minor' }) : undefined;
  } catch {
    return undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/**
 * Asks V8 for a minor collection after every SWEEP_EVERY_BYTES bytes a cache's fills take in.
 *
 * Each socket read of an upstream body is a fresh 64 KiB ArrayBuffer that dies young, but a pull
 * allocates almost nothing else on the JS heap, so no scavenge comes to free them: the buffers pile
 * up as external memory until V8 runs a full mark-compact of the whole heap (two or three per 50 MiB
 * pull over a slow link, about a fifth of the pull's CPU). A scavenge frees them for well under a
 * millisecond. One per cache (its RingPool holds it), so two servers in one process count apart.
 */
export class YoungSweep {
  private bytes = 0;

  constructor(
    private readonly collect: (() => void) | undefined = minorCollection(),
    private readonly everyBytes = SWEEP_EVERY_BYTES,
  ) {}

  /** Counts `bytes` taken in from upstream; collects once enough have passed. */
  took(bytes: number): void {
    this.bytes += bytes;
    if (this.bytes < this.everyBytes) return;
    this.bytes = 0;
    this.collect?.();
  }
}
