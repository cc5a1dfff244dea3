import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { StorageUnavailable } from '../core/errors.js';

/** Virtual file systems that cannot hold a cache (and where Node's recursive mkdir spins forever under /proc). */
const VIRTUAL_ROOTS = ['/proc', '/sys'];

/** Refuses a storage path on /proc or /sys with an error that says so. */
export function assertStoragePath(root: string): void {
  const resolved = path.resolve(root);
  const virtual = VIRTUAL_ROOTS.find((dir) => resolved === dir || resolved.startsWith(`${dir}/`));
  if (virtual !== undefined) {
    throw new StorageUnavailable(`storage.path ${resolved} is on ${virtual}, a virtual file system that cannot hold a cache; choose a directory on a disk`);
  }
}

/**
 * Creates `dir` and its missing parents one level at a time and returns the directories it created.
 * Unlike mkdir's `recursive`, each failure carries its real code (EROFS, EACCES) instead of ENOENT.
 */
export function makeDirectory(dir: string, created: string[] = []): string[] {
  try {
    if (statSync(dir).isDirectory()) return created;
  } catch {
    // missing: create it below
  }
  const parent = path.dirname(dir);
  if (parent !== dir) makeDirectory(parent, created);
  try {
    mkdirSync(dir);
    created.push(dir);
  } catch (err) {
    if (!(err instanceof Error && 'code' in err && err.code === 'EEXIST')) throw err;
  }
  return created;
}
