import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fdatasyncSync, mkdirSync, openSync, readSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
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

/**
 * Content-addressed files: `blobs/<algorithm>/<2 hex>/<hex>`, written first under `tmp/` and
 * renamed into place only once verified, so a crash never leaves a half blob at a served path.
 */
export class BlobStore {
  readonly blobsDir: string;
  readonly tmpDir: string;

  constructor(readonly root: string) {
    assertStoragePath(root);
    this.blobsDir = path.join(root, 'blobs');
    this.tmpDir = path.join(root, 'tmp');
  }

  /** Creates the storage directory, `blobs/` and `tmp/` where missing; returns what it created. Throws when it cannot. */
  ensureLayout(): string[] {
    const created = makeDirectory(this.root);
    makeDirectory(this.blobsDir, created);
    makeDirectory(this.tmpDir, created);
    return created;
  }

  /** Writes and removes a small file under `tmp/`; throws when storage cannot be written. */
  probeSync(): void {
    const probe = this.probePath();
    const fd = openSync(probe, 'wx');
    try {
      writeSync(fd, 'ok');
    } finally {
      closeSync(fd);
      this.discard(probe);
    }
  }

  /** The same probe without blocking the event loop (for /readyz). */
  async probe(): Promise<void> {
    const probe = this.probePath();
    try {
      await writeFile(probe, 'ok', { flag: 'wx' });
    } finally {
      await unlink(probe).catch(() => undefined);
    }
  }

  private probePath(): string {
    return path.join(this.tmpDir, `.probe-${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /** Where a digest's file lives. */
  pathOf(digest: string): string {
    const [algorithm = 'sha256', hex = ''] = digest.split(':');
    return path.join(this.blobsDir, algorithm, hex.slice(0, 2), hex);
  }

  /** A fresh temp path for a fill of `digest`. */
  tempPath(digest: string): string {
    return path.join(this.tmpDir, `${digest.replace(':', '-')}.${randomBytes(6).toString('hex')}`);
  }

  /** Moves a verified temp file into place (atomic within one filesystem). */
  commit(tempPath: string, digest: string): void {
    const target = this.pathOf(digest);
    makeDirectory(path.dirname(target));
    renameSync(tempPath, target);
  }

  /** Writes small verified content (a manifest) durably: temp file, fdatasync, rename into place. */
  put(digest: string, bytes: Buffer): void {
    const temp = this.tempPath(digest);
    const fd = openSync(temp, 'wx');
    try {
      try {
        writeSync(fd, bytes);
        fdatasyncSync(fd);
      } finally {
        closeSync(fd);
      }
      this.commit(temp, digest);
    } catch (err) {
      this.discard(temp);
      throw err;
    }
  }

  /**
   * Small stored content (a manifest) whose size the index knows: one open, one read of exactly `size` bytes
   * and a close, without readFileSync's stat (a third of the cost of a manifest's first read). Undefined when
   * the file holds fewer bytes than that (cut short); throws the file system's error (ENOENT when it is gone).
   */
  readExactly(digest: string, size: number): Buffer | undefined {
    const fd = openSync(this.pathOf(digest), 'r');
    try {
      // Not from Node's shared pool: the manifest memo keeps these, and a pooled one would keep its whole slab.
      const bytes = Buffer.allocUnsafeSlow(size);
      let filled = 0;
      while (filled < size) {
        const n = readSync(fd, bytes, filled, size - filled, filled);
        if (n === 0) return undefined;
        filled += n;
      }
      return bytes;
    } finally {
      closeSync(fd);
    }
  }

  exists(digest: string): boolean {
    return existsSync(this.pathOf(digest));
  }

  sizeOf(digest: string): number | undefined {
    try {
      return statSync(this.pathOf(digest)).size;
    } catch {
      return undefined;
    }
  }

  remove(digest: string): void {
    rmSync(this.pathOf(digest), { force: true });
  }

  /** Deletes a stored file in libuv's thread pool (an unlink can take a millisecond on a busy disk); a missing file is fine. */
  async removeInBackground(digest: string): Promise<void> {
    try {
      await unlink(this.pathOf(digest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /** Deletes temp files left by a crash; returns how many. */
  removeTemps(): number {
    const names = readdirSync(this.tmpDir);
    for (const name of names) rmSync(path.join(this.tmpDir, name), { force: true });
    return names.length;
  }

  /** Every digest that has a file, for verification. */
  *files(): Generator<{ digest: string; file: string }> {
    if (!existsSync(this.blobsDir)) return;
    for (const algorithm of readdirSync(this.blobsDir)) {
      const algorithmDir = path.join(this.blobsDir, algorithm);
      for (const prefix of readdirSync(algorithmDir)) {
        for (const hex of readdirSync(path.join(algorithmDir, prefix))) {
          yield { digest: `${algorithm}:${hex}`, file: path.join(algorithmDir, prefix, hex) };
        }
      }
    }
  }

  /** Removes a temp file if it still exists. */
  discard(tempPath: string): void {
    try {
      unlinkSync(tempPath);
    } catch {
      // already gone
    }
  }
}
