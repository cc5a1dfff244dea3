import { randomBytes } from 'node:crypto';
import { type Server, type ServerResponse, createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChunkSource } from '../../src/cache/chunk-source.js';
import { ChunkSender, SendBuffers } from '../../src/http/send-chunks.js';

const KiB = 1024;
const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

/** A body handed out in 64 KiB pieces; after `stallAt` bytes it waits until `resume()` is called. */
class PacedSource implements ChunkSource {
  private position = 0;
  private stalled: (() => void) | undefined;
  closed = 0;

  constructor(
    private readonly bytes: Buffer,
    private stallAt = Number.POSITIVE_INFINITY,
  ) {}

  async next(scratch: Buffer): Promise<Buffer | null> {
    if (this.position >= this.bytes.length) return null;
    if (this.position >= this.stallAt) {
      await new Promise<void>((resolve) => (this.stalled = resolve));
      this.stallAt = Number.POSITIVE_INFINITY;
    }
    const length = this.bytes.copy(scratch, 0, this.position, Math.min(this.bytes.length, this.position + 64 * KiB, this.position + scratch.length));
    this.position += length;
    return scratch.subarray(0, length);
  }

  resume(): void {
    this.stalled?.();
  }

  close(): void {
    this.closed++;
  }
}

/** Serves one request with `send`; resolves the server's URL. */
async function serve(send: (res: ServerResponse) => void): Promise<string> {
  const server = createServer((_req, res) => send(res));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

describe('ChunkSender', () => {
  it('sends a body of many chunks whole, and gives its two buffers back to the pool', async () => {
    const bytes = randomBytes(3 * 1024 * KiB + 123);
    const pool = new SendBuffers();
    const known = pool.takePair();
    pool.release(known, true);
    const sent: Promise<void>[] = [];
    const url = await serve((res) => {
      const sender = new ChunkSender(new PacedSource(bytes), pool);
      res.writeHead(200, { 'content-length': String(bytes.length) });
      sent.push(sender.first().then((first) => sender.sendTo(res, first)));
    });
    const received = await new Promise<Buffer>((resolve, reject) => {
      get(url, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => resolve(Buffer.concat(parts)));
        res.on('error', reject);
      }).on('error', reject);
    });
    await Promise.all(sent);
    expect(received.equals(bytes)).toBe(true);
    // The pool hands the same two buffers to the next sender.
    const next = pool.takePair();
    expect(known.every((buffer) => next.includes(buffer))).toBe(true);
  });

  it('fails the send when the client goes away while it waits, and keeps its buffers out of the pool', async () => {
    const bytes = randomBytes(1024 * KiB);
    const source = new PacedSource(bytes, 256 * KiB);
    const pool = new SendBuffers();
    const known = pool.takePair();
    pool.release(known, true);
    let outcome: Promise<void> | undefined;
    const url = await serve((res) => {
      const sender = new ChunkSender(source, pool);
      res.writeHead(200, { 'content-length': String(bytes.length) });
      outcome = sender.first().then((first) => sender.sendTo(res, first));
      outcome.catch(() => undefined);
    });
    await new Promise<void>((resolve, reject) => {
      const req = get(url, (res) => {
        let got = 0;
        res.on('data', (part: Buffer) => {
          got += part.length;
          // The source has stalled at 256 KiB: the client gives up there.
          if (got >= 256 * KiB) req.destroy();
        });
        res.on('close', resolve);
      });
      req.on('error', () => undefined);
      req.on('close', resolve);
      req.setTimeout(5_000, () => reject(new Error('no response')));
    });
    while (outcome === undefined) await new Promise((resolve) => setImmediate(resolve));
    source.resume();
    await expect(outcome).rejects.toThrow();
    // Its buffers may still be referenced by a write that never completed: the pool makes new ones.
    const next = pool.takePair();
    expect(known.some((buffer) => next.includes(buffer))).toBe(false);
  });
});
