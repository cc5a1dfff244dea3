import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fdatasyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * Content-addressed files: `blobs/<algorithm>/<2 hex>/<hex>`, written first under `tmp/` and
 * renamed into place only once verified, so a crash never leaves a half blob at a served path.
 */
export class BlobStore {
  readonly blobsDir: string;
  readonly tmpDir: string;

  constructor(readonly root: string) {
    this.blobsDir = path.join(root, 'blobs');
    this.tmpDir = path.join(root, 'tmp');
    mkdirSync(this.blobsDir, { recursive: true });
    mkdirSync(this.tmpDir, { recursive: true });
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
    mkdirSync(path.dirname(target), { recursive: true });
    renameSync(tempPath, target);
  }

  /** Writes small verified content (a manifest) durably: temp file, fdatasync, rename into place. */
  put(digest: string, bytes: Buffer): void {
    const temp = this.tempPath(digest);
    const fd = openSync(temp, 'wx');
    try {
      writeSync(fd, bytes);
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.commit(temp, digest);
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
