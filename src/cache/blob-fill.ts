import { createHash, type Hash } from 'node:crypto';
import { closeSync, fdatasync, openSync, writev } from 'node:fs';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { DigestMismatch, UpstreamUnavailable, describeError } from '../core/errors.js';
import { readAt } from './chunk-source.js';
import type { FillCursor, FillSource, FillState } from './fill-source.js';
import { ProgressSignal } from './progress-signal.js';

export type { FillCursor, FillState };
import { digestAlgorithm } from '../routing/reference.js';
import { YoungSweep } from './young-sweep.js';

/**
 * Bytes of a fill kept in memory (a ring) for readers close behind the writer and for the file writes
 * behind them. 2 MiB: cold pulls cost less CPU than with 4 MiB (fewer fresh pages per fill, the ring
 * stays in cache) on loopback and over a slow link alike.
 */
export const RECENT_WINDOW = 2 * 1024 * 1024;
/** Spare rings a pool keeps. */
const SPARE_RINGS = 2;

/**
 * Full-size rings kept for the next fills, at most SPARE_RINGS. A fresh ring is fresh pages, and
 * faulting them in cost more CPU than copying the bytes into them (a cold pull is several fills at once).
 * The pool also holds the fills' YoungSweep, which frees their upstream chunks with cheap minor collections.
 * One pool per cache (created in buildServices), so two servers in one process never share rings.
 */
export class RingPool {
  private readonly spare: Buffer[] = [];

  constructor(readonly sweep: YoungSweep = new YoungSweep()) {}

  take(size: number): Buffer {
    if (size === RECENT_WINDOW) return this.spare.pop() ?? Buffer.allocUnsafeSlow(size);
    return Buffer.allocUnsafeSlow(size);
  }

  give(ring: Buffer): void {
    if (ring.length === RECENT_WINDOW && this.spare.length < SPARE_RINGS) this.spare.push(ring);
  }
}

/** The bytes a reader asked for are no longer held by the fill (the caller asks the cache again). */
export class FillNotJoinable extends Error {}

/** Writes every byte of `buffers` at `position` of `fd`, then calls back once (with the error, if any): a fill's only way to its disk. */
export type WriteAt = (fd: number, buffers: Buffer[], position: number, callback: (err: Error | null) => void) => void;

/** Writes every byte of `buffers` at `position`, retrying short writes, so a full disk reports ENOSPC rather than a short count. */
export function writeFully(fd: number, buffers: Buffer[], position: number, callback: (err: Error | null) => void): void {
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
 * Upstream's bytes are hashed and copied into the ring, and readable from there at once; the temp
 * file is written from the ring behind them, a quarter of the ring at a time, and bytes not yet in
 * the file are never overwritten in the ring (upstream waits for the write instead). Readers that
 * fall behind the ring read the file, which by then holds every byte the ring let go.
 *
 * When the temp file cannot be written (disk full, read-only, deleted) — or there is none because
 * storage is failing — the fill stops caching and streams from memory alone: later bytes live only in
 * the ring, and the upstream body is read no faster than the slowest reader frees ring space
 * (bounded memory, backpressure on upstream). Readers that left before then read the file up to
 * where it was good. With no reader left, an uncached fill stops fetching.
 */
export class BlobFill implements FillSource {
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
  /** Set while upstream's bytes wait for ring space: for a file write (cached) or the slowest reader (memory-only streaming). */
  private waitingForRoom: (() => void) | undefined;
  /** True while a write of ring bytes to the temp file is in flight (the thread pool reads the ring meanwhile). */
  private writing = false;
  /** True once upstream's body has ended: whatever remains in the ring goes to the file, however little. */
  private flushing = false;
  /** Resolves `writesSettled()` when the write in flight, and any it chains, are done. */
  private writesDone: (() => void)[] = [];
  /**
   * Bytes that gather in the ring before one write takes them to the temp file: a quarter of the ring
   * (512 KiB for a full one). Over a slow link upstream's chunks arrive one at a time; writing each on
   * its own cost a thread-pool round trip and an extra wake-up of the event loop per 64 KiB.
   */
  private readonly writeBatch: number;

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
    /** How ring bytes reach the temp file (tests slow it down or fail it). */
    private readonly writeAt: WriteAt = writeFully,
  ) {
    if (tempPath !== undefined) {
      this.fd = openSync(tempPath, 'wx+');
      this.fileHolds = 1;
    }
    this.caching = this.fd !== undefined;
    this.hash = createHash(digestAlgorithm(digest));
    this.ringLength = Math.min(RECENT_WINDOW, Math.max(1, size ?? RECENT_WINDOW));
    this.writeBatch = Math.max(1, Math.floor(this.ringLength / 4));
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

  /**
   * Takes one chunk of upstream's body: hashed, copied into the ring and readable at once (the temp
   * file is written from the ring in batches). False when it has to wait for ring space; `done` is
   * called once it is all in, and upstream must not be read meanwhile.
   */
  accept(chunk: Buffer, done: () => void): boolean {
    this.hash.update(chunk);
    this.rings.sweep.took(chunk.length);
    const step = this.step();
    if (chunk.length <= step && this.roomFor(chunk.length)) {
      this.advance([chunk], chunk.length);
      this.writeToFile(false);
      return true;
    }
    return this.intoRing(chunk, step, done);
  }

  /** The largest piece that enters the ring at once: half of it, so a writer never needs the whole ring free. */
  private step(): number {
    return Math.max(1, Math.floor(this.ringLength / 2));
  }

  /**
   * Makes `chunk` readable through the ring, each piece only once the ring can spare the bytes it
   * replaces. True when it all went in at once; otherwise `callback` is called when it has.
   */
  private intoRing(chunk: Buffer, step: number, callback: () => void): boolean {
    const pieces: Buffer[] = [];
    for (let at = 0; at < chunk.length; at += step) pieces.push(chunk.subarray(at, at + step));
    let next = 0;
    let sync = true;
    const push = (): boolean => {
      for (let piece = pieces[next]; piece !== undefined; piece = pieces[next]) {
        // A failed fill takes no more bytes (its upstream body is being destroyed).
        if (this.state === 'failed') return false;
        if (!this.roomFor(piece.length)) {
          this.waitingForRoom = push;
          // Cached: the ring is full of bytes the file does not have yet, so write them now.
          this.writeToFile(true);
          return false;
        }
        next++;
        this.advance([piece], piece.length);
      }
      this.writeToFile(false);
      if (!sync) callback();
      return true;
    };
    const all = push();
    sync = false;
    return all;
  }

  /**
   * Writes the ring's bytes the file lacks, once they fill a batch (or at once when `force`); one
   * write at a time, each chaining the next. A failed write stops caching: the fill goes on from memory.
   * True when a write is in flight afterwards.
   */
  private writeToFile(force: boolean): boolean {
    const fd = this.fd;
    const ring = this.ring;
    if (this.writing) return true;
    if (!this.caching || fd === undefined || ring === undefined || this.state === 'failed') return false;
    const start = this.fileBytes;
    const end = this.written;
    if (end === start || (!force && end - start < this.writeBatch)) return false;
    const from = start % ring.length;
    const to = from + (end - start);
    const views = to <= ring.length ? [ring.subarray(from, to)] : [ring.subarray(from), ring.subarray(0, to - ring.length)];
    this.writing = true;
    this.writeAt(fd, views, start, (err) => {
      this.writing = false;
      if (err === null) this.fileBytes = end;
      else this.stopCaching(err);
      // Followers on other workers read the temp file only: its growth (or a failure to write it) is progress to them.
      this.progress.notify();
      // Ring space freed by the write (or, uncached now, held only for readers): a waiting upstream may go on.
      this.moved();
      if (!this.writeToFile(this.flushing || this.waitingForRoom !== undefined)) for (const done of this.writesDone.splice(0)) done();
    });
    return true;
  }

  /**
   * Writes the bytes the temp file lacks now rather than at the next full batch: a follower on another
   * worker reads only the file, and its client gets no response headers before its first bytes are there.
   */
  flushToFile(): void {
    this.writeToFile(true);
  }

  /** Resolves once no write of the temp file is in flight. */
  private writesSettled(): Promise<void> {
    if (!this.writing) return Promise.resolve();
    return new Promise((resolve) => this.writesDone.push(resolve));
  }

  private stopCaching(err: unknown): void {
    if (!this.caching) return;
    this.caching = false;
    this.onStorageError(err);
    // Streaming from memory only makes sense for someone: with no reader, stop fetching.
    if (this.readers === 0) this.stopFetching(`the cache could not be written (${describeError(err)}) and no client is reading the blob`);
  }

  /** Fails the upstream body while it is still being read (once it has ended there is nothing left to stop). */
  private stopFetching(reason: string): void {
    if (this.running && !this.flushing && this.state === 'filling') this.body?.destroy(new Error(reason));
  }

  /** True when `length` more bytes can enter the ring without dropping bytes the file or a reader still needs from it. */
  private roomFor(length: number): boolean {
    const floor = this.written + length - this.ringLength;
    if (floor <= this.fileBytes) return true;
    // Cached: bytes not yet written stay in the ring (the file write takes them from there).
    if (this.caching) return false;
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
    this.progress.notify();
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
      else if (!this.caching) this.stopFetching('every client left and the blob is not being cached');
    }
    this.moved();
  }

  /** Upstream's body while it is being read. */
  private body: Readable | undefined;

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

  /** Copies `body` into the ring and the temp file, verifies it and resolves; rejects (and fails readers) on any error. */
  async run(body: Readable): Promise<void> {
    this.body = body;
    const ownsFile = this.fd !== undefined;
    try {
      await this.consume(body);
      const actual = `${digestAlgorithm(this.digest)}:${this.hash.digest('hex')}`;
      if (actual !== this.digest) throw new DigestMismatch(this.digest, actual);
      if (this.size !== undefined && this.written !== this.size) {
        throw new Error(`upstream sent ${this.written} bytes, announced ${this.size}`);
      }
      // Readers get the last byte now (from the ring); the rest of the file write and durability
      // (fdatasync before the rename) are the store's business and need not delay the clients.
      this.state = 'verified';
      this.progress.notify();
      this.flushing = true;
      this.writeToFile(true);
      await this.writesSettled();
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
      // The thread pool may still be writing from the ring through the file descriptor: neither goes before it is done.
      await this.writesSettled();
      this.running = false;
      this.body = undefined;
      // Readers of a cached fill read the file from here on; an uncached fill's readers still need the ring.
      if (this.caching || this.readers === 0) this.dropRing();
      if (ownsFile) this.releaseFile();
    }
  }

  /**
   * Reads `body` to its end through `accept`, from its 'data' events (no stream pipeline: each chunk
   * costs one call), pausing it while a chunk waits for ring space.
   */
  private async consume(body: Readable): Promise<void> {
    let waiting: { resolve: () => void; done: Promise<void> } | undefined;
    const accepted = (): void => {
      waiting?.resolve();
      waiting = undefined;
      body.resume();
    };
    body.on('data', (chunk: Buffer) => {
      if (this.accept(chunk, accepted)) return;
      body.pause();
      let resolve = (): void => undefined;
      const done = new Promise<void>((settle) => {
        resolve = settle;
      });
      waiting = { resolve, done };
    });
    await finished(body);
    // 'end' comes after the last chunk's event, but that chunk may still be waiting for ring space.
    if (waiting !== undefined) await waiting.done;
  }

  /** Resolves at the fill's next progress (bytes readable, verified or failed): one promise shared by every waiting reader. */
  progressed(): Promise<void> {
    return this.progress.wait();
  }

  private readonly progress = new ProgressSignal();

  private fail(err: Error): void {
    if (this.state !== 'filling') return;
    this.state = 'failed';
    this.error = err;
    this.progress.notify();
  }
}
