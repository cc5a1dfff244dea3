import { createHash, type Hash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { closeSync, fdatasync, openSync, writev } from 'node:fs';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestMismatch, UpstreamUnavailable, describeError } from '../errors.js';
import { readAt } from './chunk-source.js';
import { digestAlgorithm } from '../routing/reference.js';

/** Bytes of a fill kept in memory (a ring) for readers close behind the writer. */
const RECENT_WINDOW = 4 * 1024 * 1024;
/** Spare rings a pool keeps. */
const SPARE_RINGS = 2;

/**
 * Full-size rings kept for the next fills, at most SPARE_RINGS. A fresh 4 MiB buffer is fresh pages, and
 * faulting them in cost more CPU than copying the bytes into them (a cold pull is several fills at once).
 * One pool per cache (created in buildServices), so two servers in one process never share rings.
 */
export class RingPool {
  private readonly spare: Buffer[] = [];

  take(size: number): Buffer {
    if (size === RECENT_WINDOW) return this.spare.pop() ?? Buffer.allocUnsafeSlow(size);
    return Buffer.allocUnsafeSlow(size);
  }

  give(ring: Buffer): void {
    if (ring.length === RECENT_WINDOW && this.spare.length < SPARE_RINGS) this.spare.push(ring);
  }
}

export type FillState = 'filling' | 'verified' | 'failed';

/** A reader's place in a fill: the next byte it needs, and where it stops (exclusive). */
export interface FillCursor {
  position: number;
  readonly limit: number;
  /** True when this reader keeps the fill's file descriptor open. */
  readonly holdsFile: boolean;
}

/** The bytes a reader asked for are no longer held by the fill (the caller asks the cache again). */
export class FillNotJoinable extends Error {}

/** Hands the upstream body to its fill, chunk by chunk (several at once when writes queue up). */
class FillWriter extends Writable {
  constructor(private readonly fill: BlobFill) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.fill.accept([chunk], callback);
  }

  /** Chunks that arrived while the previous write was in flight go out in one writev. */
  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.fill.accept(
      chunks.map((entry) => entry.chunk),
      callback,
    );
  }
}

/** Writes every byte of `buffers` at `position`, retrying short writes, so a full disk reports ENOSPC rather than a short count. */
function writeFully(fd: number, buffers: Buffer[], position: number, callback: (err: Error | null) => void): void {
  writev(fd, buffers, position, (err, written) => {
    if (err) {
      callback(err);
      return;
    }
    let skip = written;
    const rest: Buffer[] = [];
    for (const buffer of buffers) {
      if (skip >= buffer.length) skip -= buffer.length;
      else {
        rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
        skip = 0;
      }
    }
    if (rest.length === 0) callback(null);
    else if (written === 0) callback(new Error('the cache file accepted no bytes'));
    else writeFully(fd, rest, position + written, callback);
  });
}

/**
 * One upstream blob being written to a temp file while any number of readers follow the growing
 * file. The final byte is released to readers only after the digest has been verified, so a
 * mismatch or a cut upstream can never look like a complete response.
 *
 * When the temp file cannot be written (disk full, read-only, deleted) — or there is none because
 * storage is failing — the fill stops caching and streams from memory alone: later bytes live only in
 * the ring, and the upstream body is read no faster than the slowest reader frees ring space
 * (bounded memory, backpressure on upstream). Readers that left before then read the file up to
 * where it was good. With no reader left, an uncached fill stops fetching.
 */
export class BlobFill extends EventEmitter {
  readonly hash: Hash;
  written = 0;
  /** Bytes [0, fileBytes) are in the temp file; later ones, once writing it failed, only in the ring. */
  fileBytes = 0;
  state: FillState = 'filling';
  error: Error | undefined;
  /** False once the temp file could not be written, or when there never was one: streamed, not stored. */
  caching: boolean;
  /** Number of clients reading this fill (the first one included). */
  readers = 0;
  private fd: number | undefined;
  /** Holders of the file descriptor: the fill while it runs, and each reader that joined while it was open. */
  private fileHolds = 0;
  private running = true;
  private readonly cursors = new Set<FillCursor>();
  private readonly ringLength: number;
  /** Set while the writer waits for the slowest reader to free ring space (memory-only streaming). */
  private waitingForRoom: (() => void) | undefined;

  constructor(
    readonly digest: string,
    /** The temp file to write, or undefined to stream without caching. */
    readonly tempPath: string | undefined,
    /** Expected size from upstream's Content-Length, if it sent one. */
    readonly size: number | undefined,
    readonly registry: string,
    readonly repository: string,
    /** Called once when writing the temp file fails and the fill goes on from memory. */
    private readonly onStorageError: (err: unknown) => void = () => undefined,
    /** Where the ring comes from and goes back to (the cache's pool; by default one of its own). */
    private readonly rings: RingPool = new RingPool(),
  ) {
    super();
    this.setMaxListeners(0);
    if (tempPath !== undefined) {
      this.fd = openSync(tempPath, 'wx+');
      this.fileHolds = 1;
    }
    this.caching = this.fd !== undefined;
    this.hash = createHash(digestAlgorithm(digest));
    this.ringLength = Math.min(RECENT_WINDOW, Math.max(1, size ?? RECENT_WINDOW));
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

  /** Takes upstream bytes: hashed, written to the temp file while that works, then made readable. */
  accept(buffers: Buffer[], callback: (error?: Error | null) => void): void {
    let length = 0;
    for (const buffer of buffers) {
      this.hash.update(buffer);
      length += buffer.length;
    }
    const fd = this.fd;
    if (!this.caching || fd === undefined) {
      this.fromMemory(buffers, callback);
      return;
    }
    writeFully(fd, buffers, this.written, (err) => {
      if (err === null) {
        this.fileBytes += length;
        this.advance(buffers, length);
        callback();
        return;
      }
      this.stopCaching(err);
      if (this.readers === 0) {
        callback(new Error(`the cache could not be written (${describeError(err)}) and no client is reading the blob`));
        return;
      }
      this.fromMemory(buffers, callback);
    });
  }

  private stopCaching(err: unknown): void {
    if (!this.caching) return;
    this.caching = false;
    this.onStorageError(err);
  }

  /** Makes `buffers` readable through the ring alone, each piece only once every reader can spare the bytes it replaces. */
  private fromMemory(buffers: Buffer[], callback: (error?: Error | null) => void): void {
    const step = Math.max(1, Math.floor(this.ringLength / 2));
    const pieces: Buffer[] = [];
    for (const buffer of buffers) {
      for (let at = 0; at < buffer.length; at += step) pieces.push(buffer.subarray(at, at + step));
    }
    let next = 0;
    const push = (): void => {
      for (let piece = pieces[next]; piece !== undefined; piece = pieces[next]) {
        if (!this.roomFor(piece.length)) {
          this.waitingForRoom = push;
          return;
        }
        next++;
        this.advance([piece], piece.length);
      }
      callback();
    };
    push();
  }

  /** True when `length` more bytes can enter the ring without dropping bytes a reader still needs from it. */
  private roomFor(length: number): boolean {
    const floor = this.written + length - this.ringLength;
    if (floor <= this.fileBytes) return true;
    for (const cursor of this.cursors) {
      const need = Math.max(cursor.position, this.fileBytes);
      if (need < floor && need < cursor.limit) return false;
    }
    return true;
  }

  advance(buffers: Buffer[], length: number): void {
    this.ring ??= this.rings.take(this.ringLength);
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

  /** Reads bytes that are in the temp file (below fileBytes) into `target`; resolves the count. */
  readFile(target: Buffer, length: number, position: number): Promise<number> {
    const fd = this.fd;
    if (fd === undefined || position >= this.fileBytes) return Promise.reject(new Error(`bytes from ${position} of blob ${this.digest} are no longer available`));
    return readAt(fd, target, Math.min(length, this.fileBytes - position), position);
  }

  /** True when a reader from `start` (to `limit`, exclusive) would find every byte it needs, in the file or the ring. */
  joinable(start: number, limit = Number.POSITIVE_INFINITY): boolean {
    const need = Math.max(start, this.fileBytes);
    const ringStart = this.ring === undefined ? this.written : this.written - this.ring.length;
    return need >= ringStart || need >= limit;
  }

  /**
   * Registers a reader of bytes [start, end] (end inclusive, undefined for all). Throws
   * FillNotJoinable when bytes it needs are neither in the file nor still in the ring.
   */
  attach(start: number, end: number | undefined): FillCursor {
    const limit = end === undefined ? Number.POSITIVE_INFINITY : end + 1;
    if (!this.joinable(start, limit)) throw new FillNotJoinable(`blob ${this.digest}: bytes from ${start} are no longer held`);
    let holdsFile = false;
    // A cached fill's reader may fall behind the ring onto the file at any time; an uncached fill's only below fileBytes.
    if (this.tempPath !== undefined && (this.caching || start < this.fileBytes)) {
      if (this.fd === undefined) {
        // The fill has ended and closed its file: read the temp file back, if it is still there.
        try {
          this.fd = openSync(this.tempPath, 'r');
        } catch {
          throw new FillNotJoinable(`blob ${this.digest}: its temp file is gone`);
        }
      }
      this.fileHolds++;
      holdsFile = true;
    }
    const cursor: FillCursor = { position: start, limit, holdsFile };
    this.cursors.add(cursor);
    this.readers++;
    return cursor;
  }

  /** A reader moved on: a writer waiting for ring space may go on. */
  moved(): void {
    const waiting = this.waitingForRoom;
    if (waiting === undefined) return;
    this.waitingForRoom = undefined;
    waiting();
  }

  /** A reader is done; the last one out releases the file and ring, or stops an uncached fetch. */
  detach(cursor: FillCursor): void {
    if (!this.cursors.delete(cursor)) return;
    this.readers--;
    if (cursor.holdsFile) this.releaseFile();
    if (this.readers === 0) {
      if (!this.running) this.dropRing();
      else if (!this.caching) this.writer?.destroy(new Error('every client left and the blob is not being cached'));
    }
    this.moved();
  }

  private writer: FillWriter | undefined;

  private releaseFile(): void {
    this.fileHolds--;
    if (this.fileHolds > 0 || this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }

  private dropRing(): void {
    // Readers copy from the ring synchronously and check for it first, so it can go to the next fill now.
    if (this.ring !== undefined) this.rings.give(this.ring);
    this.ring = undefined;
  }

  /** How far a reader may read: everything once verified, else all but the last byte. */
  readableLimit(): number {
    if (this.state === 'verified') return this.written;
    return this.size === undefined ? this.written : Math.min(this.written, this.size - 1);
  }

  /** Copies `body` into the temp file, verifies it and resolves; rejects (and fails readers) on any error. */
  async run(body: Readable): Promise<void> {
    const writer = new FillWriter(this);
    this.writer = writer;
    const ownsFile = this.fd !== undefined;
    try {
      await pipeline(body, writer);
      const actual = `${digestAlgorithm(this.digest)}:${this.hash.digest('hex')}`;
      if (actual !== this.digest) throw new DigestMismatch(this.digest, actual);
      if (this.size !== undefined && this.written !== this.size) {
        throw new Error(`upstream sent ${this.written} bytes, announced ${this.size}`);
      }
      // Readers get the last byte now; durability (fdatasync before the rename) is the store's
      // business and need not delay the clients.
      this.state = 'verified';
      this.emit('progress');
      const fd = this.fd;
      if (this.caching && fd !== undefined) {
        await new Promise<void>((resolve) => {
          fdatasync(fd, (err) => {
            if (err) this.stopCaching(err);
            resolve();
          });
        });
      }
    } catch (err) {
      const failure =
        err instanceof DigestMismatch
          ? err
          : new UpstreamUnavailable(this.registry, `fetching blob ${this.digest} from ${this.registry} failed after ${this.written} bytes: ${describeError(err)}`, true);
      this.fail(failure);
      throw failure;
    } finally {
      this.running = false;
      this.writer = undefined;
      // Readers of a cached fill read the file from here on; an uncached fill's readers still need the ring.
      if (this.caching || this.readers === 0) this.dropRing();
      if (ownsFile) this.releaseFile();
    }
  }

  private fail(err: Error): void {
    if (this.state !== 'filling') return;
    this.state = 'failed';
    this.error = err;
    this.emit('progress');
  }
}
