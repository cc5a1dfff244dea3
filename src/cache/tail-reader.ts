import type { BlobFill, FillCursor } from './blob-fill.js';
import type { ChunkSource } from './chunk-source.js';

/**
 * Bytes [start, end] of a blob that is still being filled, waiting for the writer as needed. Ends
 * once the fill is verified; rejects (so the client's response is aborted) if the fill fails. Bytes
 * still in the fill's ring are copied from memory, older ones read from the temp file through the
 * fill's own descriptor, which stays open while a reader holds it (a later rename or unlink is harmless).
 * The constructor throws FillNotJoinable when the bytes from `start` are no longer held.
 */
export class TailReader implements ChunkSource {
  private readonly cursor: FillCursor;
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
    this.cursor = fill.attach(start, end);
    this.position = start;
    this.startedAt = start;
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
      await this.fill.progressed();
    }
    const copied = this.fill.copyRecent(this.position, available, scratch);
    if (copied > 0) return this.took(scratch, copied);
    const bytesRead = await this.fill.readFile(scratch, Math.min(scratch.length, available - this.position), this.position);
    if (bytesRead === 0) throw new Error('blob temp file ended early');
    return this.took(scratch, bytesRead);
  }

  /** Moves past bytes copied into `scratch`, letting a writer that waits for ring space go on. */
  private took(scratch: Buffer, count: number): Buffer {
    this.position += count;
    this.cursor.position = this.position;
    this.fill.moved();
    return scratch.subarray(0, count);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fill.detach(this.cursor);
  }
}
