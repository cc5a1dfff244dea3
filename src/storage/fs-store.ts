import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fdatasyncSync, lstatSync, openSync, readSync, readdirSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { copyFile, open, readdir, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { type ByteRange, type ContentInfo, type ContentPage, DEFAULT_PAGE, type LocalContentStore, type PutOutcome, splitDigest } from './content-store.js';
import { assertStoragePath, makeDirectory } from './directories.js';

function code(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/**
 * The local tier's content as files: `<root>/blobs/<algorithm>/<2 hex>/<hex>`, written first under `<root>/tmp/`
 * and renamed into place only once verified and complete, so a crash never leaves a half blob at a served path.
 */
export class FsContentStore implements LocalContentStore {
  readonly blobsDir: string;
  readonly tmpDir: string;

  constructor(readonly root: string) {
    assertStoragePath(root);
    this.blobsDir = path.join(root, 'blobs');
    this.tmpDir = path.join(root, 'tmp');
  }

  get location(): string {
    return this.root;
  }

  ensureLayout(): string[] {
    const created = makeDirectory(this.root);
    makeDirectory(this.blobsDir, created);
    makeDirectory(this.tmpDir, created);
    return created;
  }

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

  /** Where a digest's file lives; throws on a digest that could escape `blobs/`. */
  pathOf(digest: string): string {
    const [algorithm, hex] = splitDigest(digest);
    return path.join(this.blobsDir, algorithm, hex.slice(0, 2), hex);
  }

  tempPath(digest: string): string {
    splitDigest(digest);
    return path.join(this.tmpDir, `${digest.replace(':', '-')}.${randomBytes(6).toString('hex')}`);
  }

  commit(tempPath: string, digest: string): void {
    const target = this.pathOf(digest);
    makeDirectory(path.dirname(target));
    renameSync(tempPath, target);
  }

  putBytesSync(digest: string, bytes: Buffer): void {
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

  deleteSync(digest: string): void {
    rmSync(this.pathOf(digest), { force: true });
  }

  removeTemps(): number {
    const names = readdirSync(this.tmpDir);
    for (const name of names) rmSync(path.join(this.tmpDir, name), { force: true });
    return names.length;
  }

  discard(tempPath: string): void {
    try {
      unlinkSync(tempPath);
    } catch {
      // already gone
    }
  }

  /** Stores a staged file by the publish rule of commit(): taken with `move` (copied when on another filesystem), else copied. */
  async putFile(digest: string, file: string, _size: number, options: { move?: boolean } = {}): Promise<PutOutcome> {
    const temp = this.tempPath(digest);
    makeDirectory(this.tmpDir);
    try {
      if (options.move !== true) await copyFile(file, temp);
      else {
        try {
          await rename(file, temp);
        } catch (err) {
          if (code(err) !== 'EXDEV') throw err;
          await copyFile(file, temp);
          await unlink(file);
        }
      }
      await datasync(temp);
      return this.publish(temp, digest);
    } catch (err) {
      this.discard(temp);
      throw err;
    }
  }

  async putBytes(digest: string, bytes: Buffer): Promise<PutOutcome> {
    const temp = this.tempPath(digest);
    makeDirectory(this.tmpDir);
    try {
      await writeFile(temp, bytes, { flag: 'wx' });
      await datasync(temp);
      return this.publish(temp, digest);
    } catch (err) {
      this.discard(temp);
      throw err;
    }
  }

  /** commit(), saying whether the digest was stored before. */
  private publish(temp: string, digest: string): PutOutcome {
    let before = true;
    try {
      lstatSync(this.pathOf(digest));
    } catch {
      before = false;
    }
    this.commit(temp, digest);
    return before ? 'exists' : 'created';
  }

  async openRead(digest: string, range?: ByteRange): Promise<Readable | undefined> {
    let handle;
    try {
      handle = await open(this.pathOf(digest), 'r');
    } catch (err) {
      if (code(err) === 'ENOENT') return undefined;
      throw err;
    }
    return handle.createReadStream(range === undefined ? {} : { start: range.start, end: range.end });
  }

  async stat(digest: string): Promise<ContentInfo | undefined> {
    try {
      const info = await stat(this.pathOf(digest));
      return { digest, size: info.size, modifiedAt: info.mtimeMs };
    } catch (err) {
      if (code(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  async refresh(digest: string): Promise<boolean> {
    const now = new Date();
    try {
      await utimes(this.pathOf(digest), now, now);
      return true;
    } catch (err) {
      if (code(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /** Unlinks in libuv's thread pool (an unlink can take a millisecond on a busy disk); a missing file is fine. */
  async delete(digest: string): Promise<void> {
    try {
      await unlink(this.pathOf(digest));
    } catch (err) {
      if (code(err) !== 'ENOENT') throw err;
    }
  }

  async list(options: { after?: string; limit?: number } = {}): Promise<ContentPage> {
    const limit = Math.max(1, options.limit ?? DEFAULT_PAGE);
    const after = options.after ?? '';
    const items: ContentInfo[] = [];
    for (const algorithm of await sortedDir(this.blobsDir)) {
      if (after !== '' && `${algorithm}:` < after.slice(0, after.indexOf(':') + 1)) continue;
      const algorithmDir = path.join(this.blobsDir, algorithm);
      for (const prefix of await sortedDir(algorithmDir)) {
        if (`${algorithm}:${prefix}\u{10ffff}` < after) continue;
        for (const hex of await sortedDir(path.join(algorithmDir, prefix))) {
          const digest = `${algorithm}:${hex}`;
          if (digest <= after || !isDigest(digest)) continue;
          const info = await this.stat(digest);
          if (info === undefined) continue;
          if (items.length === limit) return { items, next: items[items.length - 1]?.digest };
          items.push(info);
        }
      }
    }
    return { items, next: undefined };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Flushes a staged file's data to disk, so what a publish makes visible survives a crash. */
async function datasync(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** True for a well-formed digest (a stray file in blobs/ is not content). */
function isDigest(digest: string): boolean {
  try {
    splitDigest(digest);
    return true;
  } catch {
    return false;
  }
}

/** A directory's entries in byte order; none when it does not exist. */
async function sortedDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return [];
    throw err;
  }
}
