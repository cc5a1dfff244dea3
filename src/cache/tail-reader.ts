import type { FillCursor } from './blob-fill.js';
import type { ChunkSource } from './chunk-source.js';
import type { FillSource } from './fill-source.js';

/**
 * Bytes [start, end] of a blob that is still being filled, waiting for the writer as needed. Ends
 * once the fill is verified; rejects (so the client's response is aborted) if the fill fails. Bytes
 * still in the fill's ring are copied from memory, older ones read from the temp file through the
 * fill's own descriptor, which stays open while a reader holds it (a later rename or unlink is harmless).
 * The fill is any FillSource: this process's own BlobFill, or a RemoteFill that another worker writes.
 * The constructor throws FillNotJoinable when the bytes from `start` are no longer held.
 *
 * A range's last chunk is handed out only once the whole fill is verified, as a whole blob's last
 * byte is: a ranged client cannot check its bytes itself, so a range that fits in one chunk is
 * answered only with verified bytes (or an error before anything is sent), and a longer one is cut
 * before its last byte when the digest does not match.
 */
export class TailReader implements ChunkSource {
  private readonly cursor: FillCursor;
  private position: number;
  private readonly startedAt: number;
  private closed = false;

  constructor(
    private readonly fill: FillSource,
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
      if (stop !== undefined && this.fill.state !== 'verified' && stop - this.position <= scratch.length) return this.lastChunk(scratch, stop);
      available = Math.min(this.fill.readableLimit(), stop ?? Number.POSITIVE_INFINITY);
      if (this.position < available) break;
      await this.fill.progressed();
    }
    return scratch.subarray(0, await this.readInto(scratch, available));
  }

  /**
   * The rest of a range, up to `stop`, gathered into `scratch` and returned only once the whole fill is
   * verified. The cursor moves past the bytes as they are copied, so an uncached fill's ring is not held.
   */
  private async lastChunk(scratch: Buffer, stop: number): Promise<Buffer> {
    let gathered = 0;
    for (;;) {
      if (this.fill.state === 'failed') throw this.fill.error ?? new Error('upstream fetch failed');
      if (this.position >= stop && this.fill.state === 'verified') return scratch.subarray(0, gathered);
      const available = Math.min(this.fill.readableLimit(), stop);
      if (this.position < available) gathered += await this.readInto(scratch.subarray(gathered), available);
      else await this.fill.progressed();
    }
  }

  /** Copies bytes from `position` (below `available`) into `target`, from the ring or the temp file; resolves the count. */
  private async readInto(target: Buffer, available: number): Promise<number> {
    const copied = this.fill.copyRecent(this.position, available, target);
    if (copied > 0) return this.took(copied);
    const bytesRead = await this.fill.readFile(target, Math.min(target.length, available - this.position), this.position);
    if (bytesRead === 0) throw new Error('blob temp file ended early');
    return this.took(bytesRead);
  }

  /** Moves past `count` bytes just copied out, letting a writer that waits for ring space go on. */
  private took(count: number): number {
    this.position += count;
    this.cursor.position = this.position;
    this.fill.moved();
    return count;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fill.detach(this.cursor);
  }
}
