import { closeSync, openSync, unlinkSync } from 'node:fs';
import { type FillCursor, type FillState, FillNotJoinable } from './blob-fill.js';
import { readAt } from './chunk-source.js';
import type { FillSource } from './fill-source.js';
import { ProgressSignal } from './progress-signal.js';

/**
 * A blob another worker of this host is filling, read from that worker's temp file as its progress is
 * reported (`fileHas`, `verify`, `fail`): this process neither hashes nor writes the bytes. The file is
 * opened once, by the path the owner gave (a hard link the owner made for this follower, removed here
 * once open), so the owner's later rename or unlink of its temp file does not matter. As with a local
 * fill, the last byte is readable only once the owner reports the blob verified, and a report of
 * failure — or the end of the reports without one — fails every reader before its last byte.
 */
export class RemoteFill implements FillSource {
  state: FillState = 'filling';
  error: Error | undefined;
  /** Bytes [0, written) are in the file (the owner said so). */
  written = 0;
  private fd: number | undefined;
  /** Holders of the descriptor: the progress reports until they end, and each reader. */
  private holds = 1;
  private readonly cursors = new Set<FillCursor>();
  private readonly progress = new ProgressSignal();
  private ended: () => void = () => undefined;
  /** Resolves once the fill is verified or failed. */
  readonly settled = new Promise<void>((resolve) => {
    this.ended = resolve;
  });

  /**
   * Opens the owner's file at `file`; with `handedOver` (a link made for this follower alone) the name is
   * removed once open. Throws the file system's error when it cannot be opened.
   */
  constructor(
    readonly digest: string,
    file: string,
    handedOver: boolean,
    /** The blob's size, when the owner knows it. */
    public size: number | undefined,
    readonly registry: string,
    readonly repository: string,
  ) {
    this.fd = openSync(file, 'r');
    if (handedOver) {
      try {
        unlinkSync(file);
      } catch {
        // the owner's start-up sweep of tmp/ removes it
      }
    }
  }

  /** The owner's file now holds bytes [0, count). */
  fileHas(count: number): void {
    if (this.state !== 'filling' || count <= this.written) return;
    this.written = this.size === undefined ? count : Math.min(count, this.size);
    this.progress.notify();
  }

  /** The owner verified the blob: `size` bytes, all of them in the file. */
  verify(size: number): void {
    if (this.state !== 'filling') return;
    if (this.size !== undefined && size !== this.size) {
      this.fail(new Error(`the owner verified ${size} bytes of ${this.digest}, announced ${this.size}`));
      return;
    }
    this.size = size;
    this.written = size;
    this.state = 'verified';
    this.progress.notify();
    this.releaseReports();
    this.ended();
  }

  /** The owner's fill failed, or its reports ended before the blob was verified. */
  fail(err: Error): void {
    if (this.state !== 'filling') return;
    this.state = 'failed';
    this.error = err;
    this.progress.notify();
    this.releaseReports();
    this.ended();
  }

  attach(start: number, end: number | undefined): FillCursor {
    if (this.fd === undefined) throw new FillNotJoinable(`blob ${this.digest}: the owner's file is closed here`);
    const cursor: FillCursor = { position: start, limit: end === undefined ? Number.POSITIVE_INFINITY : end + 1, holdsFile: true };
    this.cursors.add(cursor);
    this.holds++;
    return cursor;
  }

  detach(cursor: FillCursor): void {
    if (!this.cursors.delete(cursor)) return;
    this.release();
  }

  /** Readers in this process. */
  get readers(): number {
    return this.cursors.size;
  }

  /** True when a new reader can still join (the file is open here and the fill has not failed). */
  joinable(): boolean {
    return this.fd !== undefined && this.state === 'filling';
  }

  readableLimit(): number {
    if (this.state === 'verified' || this.size === undefined) return this.written;
    return Math.min(this.written, this.size - 1);
  }

  copyRecent(): number {
    return 0;
  }

  readFile(target: Buffer, length: number, position: number): Promise<number> {
    const fd = this.fd;
    if (fd === undefined || position >= this.written) return Promise.reject(new Error(`bytes from ${position} of blob ${this.digest} are not in the owner's file`));
    return readAt(fd, target, Math.min(length, this.written - position), position);
  }

  moved(): void {
    // Nothing waits for a reader here: the owner's fill runs at its own pace.
  }

  progressed(): Promise<void> {
    return this.progress.wait();
  }

  /**
   * The reports have ended: their hold on the file goes. With no reader yet it goes a turn later, since the
   * request that asked for this fill attaches its reader just after getting it, and the reports can end
   * (a small blob) in the same chunk that named the file.
   */
  private releaseReports(): void {
    if (this.cursors.size > 0) this.release();
    else setImmediate(() => this.release());
  }

  private release(): void {
    this.holds--;
    if (this.holds > 0 || this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}
