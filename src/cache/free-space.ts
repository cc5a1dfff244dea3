import { type StatsFs, statfsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';

/** Bytes an unprivileged writer may still use on a filesystem (`bavail`), and its size. */
export interface Space {
  free: number;
  total: number;
}

/** Free space a full filesystem must regain (at least; up to an eighth of its size) before caching resumes. */
const FULL_MARGIN_BYTES = 64 * 1024 * 1024;

function spaceOf(s: StatsFs): Space {
  return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
}

/** The filesystem holding `dir`, or undefined when it cannot be asked. */
export function spaceSync(dir: string): Space | undefined {
  try {
    return spaceOf(statfsSync(dir));
  } catch {
    return undefined;
  }
}

/** The same, without blocking the event loop (for /readyz). */
export function space(dir: string): Promise<Space | undefined> {
  return statfs(dir).then(spaceOf, () => undefined);
}

/**
 * After a fill of `failedSize` bytes ran out of space: the free space needed before writes are tried again,
 * so a disk that stays nearly full is reported as full, not as writable until the next fill fails.
 */
export function spaceNeeded(failedSize: number, total: number): number {
  return Math.max(failedSize, Math.min(FULL_MARGIN_BYTES, Math.floor(total / 8)));
}

/** Throws ENOSPC (the failure StorageHealth keeps and /readyz reports) when `space` has less than `needed` free. */
export function requireSpace(found: Space | undefined, needed: number | undefined): void {
  if (found === undefined || needed === undefined || found.free >= needed) return;
  throw Object.assign(new Error(`no space left on device: ${found.free} bytes free, ${needed} needed`), { code: 'ENOSPC' });
}
