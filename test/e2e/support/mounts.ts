import { readFile, statfs } from 'node:fs/promises';
import { run } from '../../../support/proc.js';

/** statfs magic of overlayfs: overlay2 cannot stack on it. */
const OVERLAYFS_MAGIC = 0x794c7630;

/** True when `dir` lives on an overlay filesystem (e.g. the root of a container). */
export async function onOverlayfs(dir: string): Promise<boolean> {
  return (await statfs(dir)).type === OVERLAYFS_MAGIC;
}

/** Mount points at or below `dir`, deepest first (from /proc/self/mountinfo; octal escapes decoded). */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter((p) => p === dir || p.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

/**
 * Lazily unmounts whatever a daemon left mounted under `dir` (overlay layers, shm, a tmpfs we mounted),
 * so the workspace can be removed; returns what it unmounted.
 */
export async function unmountUnder(dir: string): Promise<string[]> {
  const mounts = await mountsUnder(dir);
  for (const m of mounts) await run('umount', ['-l', m]);
  return mounts;
}
