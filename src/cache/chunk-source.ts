import { closeSync, read } from 'node:fs';

/**
 * A response body produced chunk by chunk into buffers the sender owns, so one sender can reuse two
 * buffers for a whole blob instead of allocating (and leaving to the garbage collector) one per chunk.
 */
export interface ChunkSource {
  /**
   * The next bytes: written into `scratch` and returned as a view of it, or a read-only shared buffer
   * the sender must not write into. Resolves null at the end; rejects when the content failed (the
   * sender must then abort the response).
   */
  next(scratch: Buffer): Promise<Buffer | null>;
  /** Releases the file and anything the source holds; called once, whether or not it ended. */
  close(): void;
}

export function readAt(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buffer, 0, length, position, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead)));
  });
}

/** Bytes [start, end] of an open file. */
export class FileRange implements ChunkSource {
  private position: number;
  private closed = false;

  constructor(
    private readonly fd: number,
    start: number,
    /** Inclusive. */
    private readonly end: number,
    private readonly onClose: () => void,
  ) {
    this.position = start;
  }

  async next(scratch: Buffer): Promise<Buffer | null> {
    const remaining = this.end + 1 - this.position;
    if (remaining <= 0) return null;
    const bytesRead = await readAt(this.fd, scratch, Math.min(scratch.length, remaining), this.position);
    if (bytesRead === 0) throw new Error(`cached blob file ended ${remaining} bytes early`);
    this.position += bytesRead;
    return scratch.subarray(0, bytesRead);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
    this.onClose();
  }
}
