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
  private readonly written: (Promise<void> | undefined)[] = [undefined, undefined];
  /** False once a buffer may still be held by a write that never completed: it must not be reused. */
  private reusable = true;
  private released = false;

  constructor(
    private readonly source: ChunkSource,
    private readonly pool: SendBuffers,
  ) {
    this.buffers = pool.takePair();
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
    let onClose: (() => void) | undefined;
    const gone = new Promise<never>((_resolve, reject) => {
      onClose = () => reject(new Error('the client closed the connection'));
      res.once('close', onClose);
    });
    gone.catch(() => undefined);
    /** Waits for `step`, or fails as soon as the client is gone (a write callback may then never come). */
    const until = <T>(step: Promise<T>): Promise<T> => Promise.race([step, gone]);
    try {
      let chunk = first;
      for (let i = 0; chunk !== null; ) {
        this.write(res, i, chunk);
        i ^= 1;
        const pending = this.written[i];
        if (pending !== undefined) await until(pending);
        chunk = await this.source.next(this.buffer(i));
      }
      await until(Promise.all(this.written.filter((write) => write !== undefined)));
      await until(new Promise<void>((resolve, reject) => res.end((err?: Error) => (err ? reject(err) : resolve()))));
    } catch (err) {
      this.reusable = false;
      throw err;
    } finally {
      if (onClose !== undefined) res.removeListener('close', onClose);
      this.release();
    }
  }

  private buffer(i: number): Buffer {
    const buffer = this.buffers[i];
    if (buffer === undefined) throw new Error(`no send buffer ${i}`);
    return buffer;
  }

  private write(res: ServerResponse, i: number, chunk: Buffer): void {
    const write = new Promise<void>((resolve, reject) => {
      res.write(chunk, (err) => (err ? reject(err) : resolve()));
    });
    write.catch(() => undefined);
    this.written[i] = write;
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.pool.release(this.buffers, this.reusable);
  }
}
