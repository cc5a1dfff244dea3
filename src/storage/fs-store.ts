import { randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, open, readdir, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { type ByteRange, type ContentInfo, type ContentPage, type ContentStore, DEFAULT_PAGE, type PutOutcome, splitDigest } from './content-store.js';

function code(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Codes of file systems where hard links do not work (then an atomic rename publishes instead). */
const NO_LINKS = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK']);

/**
 * Content as files: `<root>/blobs/<algorithm>/<2 hex>/<hex>`, written under `<root>/tmp/` and published by a
 * hard link (which fails when the digest is already there, so the first writer wins) or, where links are not
 * supported, an atomic rename: a half-written file is never visible at a digest's path.
 */
export class FsContentStore implements ContentStore {
  readonly blobsDir: string;
  readonly tmpDir: string;

  constructor(readonly root: string) {
    this.blobsDir = path.join(root, 'blobs');
    this.tmpDir = path.join(root, 'tmp');
  }

  get location(): string {
    return this.root;
  }

  /** Where a digest's file lives (synchronous, for the local hot path). */
  pathOf(digest: string): string {
    const [algorithm, hex] = splitDigest(digest);
    return path.join(this.blobsDir, algorithm, hex.slice(0, 2), hex);
  }

  /** A fresh path under tmp/ for staging content of `digest`. */
  tempPath(digest: string): string {
    splitDigest(digest);
    return path.join(this.tmpDir, `${digest.replace(':', '-')}.${randomBytes(6).toString('hex')}`);
  }

  async putFile(digest: string, file: string, _size: number, options: { move?: boolean } = {}): Promise<PutOutcome> {
    if (options.move === true) return this.publish(digest, file);
    await mkdir(this.tmpDir, { recursive: true });
    const temp = this.tempPath(digest);
    await copyFile(file, temp);
    return this.publish(digest, temp);
  }

  async putBytes(digest: string, bytes: Buffer): Promise<PutOutcome> {
    await mkdir(this.tmpDir, { recursive: true });
    const temp = this.tempPath(digest);
    const handle = await open(temp, 'wx');
    try {
      await handle.writeFile(bytes);
      await handle.datasync();
    } catch (err) {
      await handle.close();
      await rm(temp, { force: true });
      throw err;
    }
    await handle.close();
    return this.publish(digest, temp);
  }

  /** Makes a complete temp file visible at the digest's path; the temp file is gone afterwards. */
  private async publish(digest: string, temp: string): Promise<PutOutcome> {
    const target = this.pathOf(digest);
    await mkdir(path.dirname(target), { recursive: true });
    try {
      await link(temp, target);
    } catch (err) {
      const why = code(err);
      if (why === 'EEXIST') {
        await rm(temp, { force: true });
        return 'exists';
      }
      if (why === undefined || !NO_LINKS.has(why)) {
        await rm(temp, { force: true });
        throw err;
      }
      await rename(temp, target);
      return 'created';
    }
    await unlink(temp);
    return 'created';
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

  async delete(digest: string): Promise<void> {
    await rm(this.pathOf(digest), { force: true });
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

  /** Deletes staged files left by a crash; returns how many. */
  async removeTemps(): Promise<number> {
    const names = await sortedDir(this.tmpDir);
    await Promise.all(names.map((name) => rm(path.join(this.tmpDir, name), { force: true })));
    return names.length;
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
