import type { ServerResponse } from 'node:http';
import type { ChunkSource } from '../cache/chunk-source.js';

const LARGE = 256 * 1024;
const SMALL = 128 * 1024;
/** Bodies being sent above which each gets SMALL buffers, to bound memory with many clients. */
const MANY_SENDERS = 4;

/**
 * The send buffers of one server, kept for reuse between responses (at most `limit` free of each size:
 * 1 MiB and 2 MiB), and how many bodies are being sent. Created in buildServices, so two servers in
 * one process never share (or race on) each other's buffers.
 */
export class SendBuffers {
  private readonly pools = new Map<number, { free: Buffer[]; limit: number }>([
    [LARGE, { free: [], limit: 4 }],
    [SMALL, { free: [], limit: 16 }],
  ]);
  private senders = 0;

  /** Two buffers for one more sender: large ones while few bodies are being sent, small ones beyond. */
  takePair(): Buffer[] {
    this.senders++;
    const size = this.senders > MANY_SENDERS ? SMALL : LARGE;
    return [this.take(size), this.take(size)];
  }

  /** Ends a sender; its buffers go back to the pool when they may be reused. */
  release(buffers: readonly Buffer[], reusable: boolean): void {
    this.senders--;
    if (!reusable) return;
    for (const buffer of buffers) {
      const pool = this.pools.get(buffer.length);
      if (pool !== undefined && pool.free.length < pool.limit) pool.free.push(buffer);
    }
  }

  private take(size: number): Buffer {
    return this.pools.get(size)?.free.pop() ?? Buffer.allocUnsafeSlow(size);
  }
}

/**
 * Writes a ChunkSource to a response, alternating between two buffers: a buffer is filled again only
 * after the socket has taken its previous contents (the write callback), so a blob of any size costs
 * two buffers, taken from and returned to the server's SendBuffers. Waiting for those callbacks is also the
 * backpressure: at most two chunks are ever queued.
 *
 * `first()` reads the first chunk before anything is sent, so a source that fails at once (upstream
 * cut, digest mismatch) can still be answered with an OCI error; `sendTo()` then writes the rest and
 * rejects when the source fails or the client goes away (the caller destroys the response, so the
 * client sees a cut, never a complete-looking body).
 */
export class ChunkSender {
  private readonly buffers: Buffer[];
  /** Whether buffer i is still held by a write whose callback has not come. */
  private readonly busy = [false, false];
  /** One write callback per buffer, made once: a chunk costs no closure or promise unless the sender has to wait. */
  private readonly written: ((err?: Error | null) => void)[];
  /** The first write error, or the client going away: the send fails with it. */
  private failure: Error | undefined;
  /** Wakes a sender that waits for a buffer to be written. */
  private wake: (() => void) | undefined;
  /** False once a buffer may still be held by a write that never completed: it must not be reused. */
  private reusable = true;
  private released = false;

  constructor(
    private readonly source: ChunkSource,
    private readonly pool: SendBuffers,
  ) {
    this.buffers = pool.takePair();
    this.written = [0, 1].map((i) => (err?: Error | null) => {
      this.busy[i] = false;
      if (err) this.fail(err);
      else this.notify();
    });
  }

  /** The first chunk (null for an empty body); on failure nothing has been sent and the buffers are released. */
  async first(): Promise<Buffer | null> {
    try {
      return await this.source.next(this.buffer(0));
    } catch (err) {
      this.release();
      throw err;
    }
  }

  async sendTo(res: ServerResponse, first: Buffer | null): Promise<void> {
    // A write callback may never come once the client is gone: its going fails the send instead.
    const onClose = (): void => this.fail(new Error('the client closed the connection'));
    res.once('close', onClose);
    try {
      let chunk = first;
      for (let i = 0; chunk !== null; ) {
        this.write(res, i, chunk);
        i ^= 1;
        if (this.busy[i] || this.failure !== undefined) await this.writtenOut(i);
        chunk = await this.source.next(this.buffer(i));
      }
      for (const i of [0, 1]) if (this.busy[i] || this.failure !== undefined) await this.writtenOut(i);
      await new Promise<void>((resolve, reject) => {
        this.wake = () => {
          if (this.failure !== undefined) reject(this.failure);
        };
        res.end((err?: Error) => (err ? reject(err) : resolve()));
      });
    } catch (err) {
      this.reusable = false;
      throw err;
    } finally {
      this.wake = undefined;
      res.removeListener('close', onClose);
      this.release();
    }
  }

  /** Resolves once buffer `i` is free again; rejects when the send failed. */
  private writtenOut(i: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.failure !== undefined) reject(this.failure);
        else if (!this.busy[i]) resolve();
        else return;
        this.wake = undefined;
      };
      this.wake = check;
      check();
    });
  }

  private notify(): void {
    this.wake?.();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.notify();
  }

  private buffer(i: number): Buffer {
    const buffer = this.buffers[i];
    if (buffer === undefined) throw new Error(`no send buffer ${i}`);
    return buffer;
  }

  private write(res: ServerResponse, i: number, chunk: Buffer): void {
    this.busy[i] = true;
    res.write(chunk, this.written[i]);
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.pool.release(this.buffers, this.reusable);
  }
}
