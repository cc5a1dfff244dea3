import { closeSync, openSync, read } from 'node:fs';
import { Readable } from 'node:stream';
import type { BlobFill } from './blob-fill.js';

const CHUNK = 256 * 1024;

/**
 * Reads bytes [start, end] of a blob that is still being filled, waiting for the writer as
 * needed. Ends once the fill is verified; errors (so the client's response is aborted) if the
 * fill fails. The file descriptor is opened at once, so a later rename or unlink is harmless.
 */
export class TailReader extends Readable {
  private readonly fd: number;
  private position: number;
  private waiting = false;

  constructor(
    private readonly fill: BlobFill,
    start: number,
    /** Inclusive end, or undefined for "to the end of the blob". */
    private readonly end: number | undefined,
  ) {
    super({ highWaterMark: CHUNK });
    this.fd = openSync(fill.tempPath, 'r');
    this.position = start;
    fill.readers++;
  }

  private stopAt(): number | undefined {
    if (this.end !== undefined) return this.end + 1;
    return this.fill.state === 'verified' ? this.fill.written : undefined;
  }

  override _read(): void {
    const stop = this.stopAt();
    if (stop !== undefined && this.position >= stop) {
      this.push(null);
      return;
    }
    if (this.fill.state === 'failed') {
      this.destroy(this.fill.error ?? new Error('upstream fetch failed'));
      return;
    }
    const available = Math.min(this.fill.readableLimit(), stop ?? Number.POSITIVE_INFINITY);
    if (this.position >= available) {
      if (!this.waiting) {
        this.waiting = true;
        this.fill.once('progress', () => {
          this.waiting = false;
          if (!this.destroyed) this._read();
        });
      }
      return;
    }
    const recent = this.fill.recentAt(this.position);
    if (recent !== undefined) {
      const end = Math.min(available, recent.offset + recent.data.length);
      const slice = recent.data.subarray(this.position - recent.offset, end - recent.offset);
      this.position = end;
      this.push(slice);
      return;
    }
    const length = Math.min(CHUNK, available - this.position);
    const buffer = Buffer.allocUnsafe(length);
    read(this.fd, buffer, 0, length, this.position, (err, bytesRead) => {
      if (err) {
        this.destroy(err);
        return;
      }
      this.position += bytesRead;
      this.push(buffer.subarray(0, bytesRead));
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.fill.readers--;
    closeSync(this.fd);
    callback(error);
  }
}
