import { closeSync, openSync } from 'node:fs';
import type { BlobFill } from './blob-fill.js';
import { type ChunkSource, readAt } from './chunk-source.js';

/**
 * Bytes [start, end] of a blob that is still being filled, waiting for the writer as needed. Ends
 * once the fill is verified; rejects (so the client's response is aborted) if the fill fails. Bytes
 * still in the fill's ring are copied from memory, older ones read from the file. The file descriptor is opened
 * at once, so a later rename or unlink is harmless.
 */
export class TailReader implements ChunkSource {
  private readonly fd: number;
  private position: number;
  private readonly startedAt: number;
  private closed = false;

  constructor(
    private readonly fill: BlobFill,
    start: number,
    /** Inclusive end, or undefined for "to the end of the blob". */
    private readonly end: number | undefined,
    /** Called once with the bytes handed out, when the end is reached. */
    private readonly onEnd: (bytes: number) => void,
  ) {
    this.fd = openSync(fill.tempPath, 'r');
    this.position = start;
    this.startedAt = start;
    fill.readers++;
  }

  private stopAt(): number | undefined {
    if (this.end !== undefined) return this.end + 1;
    return this.fill.state === 'verified' ? this.fill.written : undefined;
  }

  async next(scratch: Buffer): Promise<Buffer | null> {
    let available: number;
    for (;;) {
      const stop = this.stopAt();
      if (stop !== undefined && this.position >= stop) {
        this.onEnd(this.position - this.startedAt);
        return null;
      }
      if (this.fill.state === 'failed') throw this.fill.error ?? new Error('upstream fetch failed');
      available = Math.min(this.fill.readableLimit(), stop ?? Number.POSITIVE_INFINITY);
      if (this.position < available) break;
      await new Promise<void>((resolve) => this.fill.once('progress', () => resolve()));
    }
    const copied = this.fill.copyRecent(this.position, available, scratch);
    if (copied > 0) {
      this.position += copied;
      return scratch.subarray(0, copied);
    }
    const bytesRead = await readAt(this.fd, scratch, Math.min(scratch.length, available - this.position), this.position);
    if (bytesRead === 0) throw new Error('blob temp file ended early');
    this.position += bytesRead;
    return scratch.subarray(0, bytesRead);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fill.readers--;
    closeSync(this.fd);
  }
}
