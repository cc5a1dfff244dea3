import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { digestAlgorithm } from '../routing/reference.js';

/** A blob of the bundle that was written to the staging area and matched its digest. */
export interface StagedBlob {
  file: string;
  size: number;
  /** Moved into the cache by an image that was published. */
  adopted: boolean;
}

/**
 * Where `pullgate import` writes a bundle's blobs before any of them is visible: a directory of its own under
 * the storage path (the same filesystem, so publishing renames instead of copying), removed afterwards.
 * Each blob is hashed as it is written; one that does not match its digest is deleted and remembered as bad.
 */
export class StagingArea {
  readonly staged = new Map<string, StagedBlob>();
  /** Digest → the digest its content really has. */
  readonly bad = new Map<string, string>();
  private constructor(readonly dir: string) {}

  static async create(storageRoot: string): Promise<StagingArea> {
    const dir = path.join(storageRoot, 'import-staging', `${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(dir, { recursive: true });
    return new StagingArea(dir);
  }

  /** Writes a blob's bytes while hashing them; true when they match `digest`. */
  async stage(digest: string, body: AsyncIterable<Buffer>): Promise<boolean> {
    const file = path.join(this.dir, digest.replace(':', '-'));
    const hash = createHash(digestAlgorithm(digest));
    const out = createWriteStream(file);
    let size = 0;
    try {
      for await (const chunk of body) {
        hash.update(chunk);
        size += chunk.length;
        if (!out.write(chunk)) await once(out, 'drain');
      }
      out.end();
      await once(out, 'close');
    } catch (err) {
      out.destroy();
      await rm(file, { force: true });
      throw err;
    }
    const actual = `${digestAlgorithm(digest)}:${hash.digest('hex')}`;
    if (actual !== digest) {
      this.bad.set(digest, actual);
      await rm(file, { force: true });
      return false;
    }
    this.staged.set(digest, { file, size, adopted: false });
    return true;
  }

  /**
   * Hashes a blob the cache already holds without writing it (nothing is copied); false, and remembered as
   * bad, when the bundle's bytes do not match: a damaged bundle is reported even where it did no harm.
   */
  async verify(digest: string, body: AsyncIterable<Buffer>): Promise<boolean> {
    const hash = createHash(digestAlgorithm(digest));
    for await (const chunk of body) hash.update(chunk);
    const actual = `${digestAlgorithm(digest)}:${hash.digest('hex')}`;
    if (actual === digest) return true;
    this.bad.set(digest, actual);
    return false;
  }

  /** A staged blob's bytes (a manifest: small). */
  read(digest: string): Promise<Buffer> | undefined {
    const blob = this.staged.get(digest);
    return blob === undefined ? undefined : readFile(blob.file);
  }

  /** Removes the staging directory and what was not published. */
  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
