import { createHash, type Hash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { closeSync, fdatasync, openSync, writev } from 'node:fs';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestMismatch, UpstreamUnavailable, describeError } from '../errors.js';
import { digestAlgorithm } from '../routing/reference.js';

/** Bytes of a fill kept in memory for readers close behind the writer. */
const RECENT_WINDOW = 8 * 1024 * 1024;

export type FillState = 'filling' | 'verified' | 'failed';

/** Writes each chunk to the temp file at the running offset and announces progress. */
class FillWriter extends Writable {
  constructor(private readonly fill: BlobFill) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll([chunk], callback);
  }

  /** Chunks that arrived while the previous write was in flight go out in one writev. */
  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.writeAll(
      chunks.map((entry) => entry.chunk),
      callback,
    );
  }

  private writeAll(buffers: Buffer[], callback: (error?: Error | null) => void): void {
    let length = 0;
    for (const buffer of buffers) {
      this.fill.hash.update(buffer);
      length += buffer.length;
    }
    writev(this.fill.fd, buffers, this.fill.written, (err, written) => {
      if (err) {
        callback(err);
        return;
      }
      if (written !== length) {
        callback(new Error(`short write to the cache: ${written} of ${length} bytes`));
        return;
      }
      this.fill.advance(buffers, length);
      callback();
    });
  }
}

/**
 * One upstream blob being written to a temp file while any number of readers follow the growing
 * file. The final byte is released to readers only after the digest has been verified, so a
 * mismatch or a cut upstream can never look like a complete response.
 */
export class BlobFill extends EventEmitter {
  readonly fd: number;
  readonly hash: Hash;
  written = 0;
  state: FillState = 'filling';
  error: Error | undefined;
  /** Number of clients reading this fill (the first one included). */
  readers = 0;

  constructor(
    readonly digest: string,
    readonly tempPath: string,
    /** Expected size from upstream's Content-Length, if it sent one. */
    readonly size: number | undefined,
    readonly registry: string,
    readonly repository: string,
  ) {
    super();
    this.setMaxListeners(0);
    this.fd = openSync(tempPath, 'wx+');
    this.hash = createHash(digestAlgorithm(digest));
  }

  /** Further (registry, repository) pairs upstream confirmed may see this blob; linked when it is stored. */
  readonly links: { registry: string; repository: string }[] = [];

  alsoLink(registry: string, repository: string): void {
    this.links.push({ registry, repository });
  }

  /**
   * The last RECENT_WINDOW bytes written, kept in memory (the upstream's own buffers, no copy) so
   * readers near the writer share them instead of each reading the file back into new buffers.
   */
  recent: { offset: number; data: Buffer }[] = [];
  private recentBytes = 0;

  advance(buffers: Buffer[], length: number): void {
    let offset = this.written;
    for (const data of buffers) {
      this.recent.push({ offset, data });
      this.recentBytes += data.length;
      offset += data.length;
    }
    while (this.recentBytes > RECENT_WINDOW && this.recent.length > 1) {
      this.recentBytes -= this.recent.shift()?.data.length ?? 0;
    }
    this.written += length;
    this.emit('progress');
  }

  /** The in-memory piece of the last batch that holds `position`, if any (no copy). */
  recentAt(position: number): { offset: number; data: Buffer } | undefined {
    return this.recent.find((piece) => position >= piece.offset && position < piece.offset + piece.data.length);
  }

  /** How far a reader may read: everything once verified, else all but the last byte. */
  readableLimit(): number {
    if (this.state === 'verified') return this.written;
    return this.size === undefined ? this.written : Math.min(this.written, this.size - 1);
  }

  /** Copies `body` into the temp file, verifies it and resolves; rejects (and fails readers) on any error. */
  async run(body: Readable): Promise<void> {
    try {
      await pipeline(body, new FillWriter(this));
      const actual = `${digestAlgorithm(this.digest)}:${this.hash.digest('hex')}`;
      if (actual !== this.digest) throw new DigestMismatch(this.digest, actual);
      if (this.size !== undefined && this.written !== this.size) {
        throw new Error(`upstream sent ${this.written} bytes, announced ${this.size}`);
      }
      // Readers get the last byte now; durability (fdatasync before the rename) is the store's
      // business and need not delay the clients.
      this.state = 'verified';
      this.emit('progress');
      await new Promise<void>((resolve, reject) => fdatasync(this.fd, (err) => (err ? reject(err) : resolve())));
    } catch (err) {
      const failure =
        err instanceof DigestMismatch
          ? err
          : new UpstreamUnavailable(this.registry, `fetching blob ${this.digest} from ${this.registry} failed after ${this.written} bytes: ${describeError(err)}`, true);
      this.fail(failure);
      throw failure;
    } finally {
      this.recent = [];
      this.recentBytes = 0;
      closeSync(this.fd);
    }
  }

  private fail(err: Error): void {
    if (this.state !== 'filling') return;
    this.state = 'failed';
    this.error = err;
    this.emit('progress');
  }
}
