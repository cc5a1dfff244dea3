import { minorCollection } from '../core/runtime-flags.js';

/** Upstream bytes taken in by a cache's fills between two minor collections. */
export const SWEEP_EVERY_BYTES = 4 * 1024 * 1024;


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
