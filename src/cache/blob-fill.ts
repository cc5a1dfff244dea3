import { createHash, type Hash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { closeSync, fdatasync, openSync, writev } from 'node:fs';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestMismatch, UpstreamUnavailable, describeError } from '../errors.js';
import { digestAlgorithm } from '../routing/reference.js';

/** Bytes of a fill kept in memory (a ring) for readers close behind the writer. */
const RECENT_WINDOW = 4 * 1024 * 1024;
/**
 * Full-size rings kept for the next fills. A fresh 4 MiB buffer is fresh pages, and faulting them in
 * cost more CPU than copying the bytes into them (a cold pull is several fills at once).
 */
const SPARE_RINGS = 2;
const spareRings: Buffer[] = [];

function takeRing(size: number): Buffer {
  if (size === RECENT_WINDOW) return spareRings.pop() ?? Buffer.allocUnsafeSlow(size);
  return Buffer.allocUnsafeSlow(size);
}

function giveRing(ring: Buffer): void {
  if (ring.length === RECENT_WINDOW && spareRings.length < SPARE_RINGS) spareRings.push(ring);
}

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
   * The last bytes written, copied into one ring buffer allocated per fill, so readers near the
   * writer copy from memory instead of reading the file back, and upstream's chunks die young
   * instead of being kept alive (and promoted to the old generation) by a window of references.
   */
  private ring: Buffer | undefined;

  advance(buffers: Buffer[], length: number): void {
    this.ring ??= takeRing(Math.min(RECENT_WINDOW, Math.max(1, this.size ?? RECENT_WINDOW)));
    const ring = this.ring;
    let offset = this.written;
    for (const data of buffers) {
      // Only the last ring.length bytes of a batch can stay in the ring.
      const skip = Math.max(0, data.length - ring.length);
      let from = skip;
      let at = (offset + skip) % ring.length;
      while (from < data.length) {
        const copied = data.copy(ring, at, from, Math.min(data.length, from + ring.length - at));
        from += copied;
        at = (at + copied) % ring.length;
      }
      offset += data.length;
    }
    this.written += length;
    this.emit('progress');
  }

  /**
   * Copies bytes from `position` (up to `limit`, exclusive, and `target.length`) into `target` when
   * they are still in the ring; returns the number copied, 0 when they are not.
   */
  copyRecent(position: number, limit: number, target: Buffer): number {
    const ring = this.ring;
    if (ring === undefined || position < this.written - ring.length || position >= Math.min(limit, this.written)) return 0;
    const end = Math.min(limit, this.written, position + target.length);
    let copied = 0;
    while (position + copied < end) {
      const at = (position + copied) % ring.length;
      copied += ring.copy(target, copied, at, Math.min(ring.length, at + end - position - copied));
    }
    return copied;
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
      // Readers copy from the ring synchronously and check for it first, so it can go to the next fill now.
      if (this.ring !== undefined) giveRing(this.ring);
      this.ring = undefined;
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
