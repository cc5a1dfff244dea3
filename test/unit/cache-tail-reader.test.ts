import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { BlobFill } from '../../src/cache/blob-fill.js';
import { TailReader } from '../../src/cache/tail-reader.js';

const MiB = 1024 * 1024;
const dirs: string[] = [];
afterEach(() => {
  while (dirs.length > 0) rmSync(dirs.pop() ?? '', { recursive: true, force: true });
});

function tempFill(bytes: Buffer, size: number | undefined = bytes.length): BlobFill {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-fill-'));
  dirs.push(dir);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  return new BlobFill(digest, path.join(dir, 'blob.tmp'), size, 'reg.example', 'team/app');
}

/** Reads a TailReader to its end with one reused scratch buffer, copying each chunk out. */
async function drain(reader: TailReader, scratchSize: number): Promise<Buffer> {
  const scratch = Buffer.alloc(scratchSize);
  const parts: Buffer[] = [];
  for (;;) {
    const chunk = await reader.next(scratch);
    if (chunk === null) break;
    parts.push(Buffer.from(chunk));
  }
  reader.close();
  return Buffer.concat(parts);
}

/** Feeds `bytes` in uneven chunks (1 byte to 700 KiB), yielding to the event loop between them. */
async function feed(body: PassThrough, bytes: Buffer): Promise<void> {
  const sizes = [1, 700 * 1024, 13, 333_333, 64 * 1024, 5 * MiB];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length] ?? 1;
    body.write(bytes.subarray(at, at + size));
    at += size;
    await new Promise((resolve) => setImmediate(resolve));
  }
  body.end();
}

describe('TailReader following a BlobFill', () => {
  it('gives readers at any distance behind the writer the exact bytes, across ring wrap-arounds', async () => {
    const bytes = randomBytes(11 * MiB + 12_345);
    const fill = tempFill(bytes);
    const body = new PassThrough();
    const ended: number[] = [];
    const readers = [
      new TailReader(fill, 0, undefined, (n) => ended.push(n)),
      new TailReader(fill, 3 * MiB + 7, undefined, (n) => ended.push(n)),
      new TailReader(fill, 100, 5 * MiB, (n) => ended.push(n)),
    ];
    const running = fill.run(body);
    const results = Promise.all([drain(readers[0] as TailReader, 256 * 1024), drain(readers[1] as TailReader, MiB), drain(readers[2] as TailReader, 1000)]);
    await feed(body, bytes);
    await running;
    const [whole, fromOffset, range] = await results;
    expect(whole.equals(bytes)).toBe(true);
    expect(fromOffset.equals(bytes.subarray(3 * MiB + 7))).toBe(true);
    expect(range.equals(bytes.subarray(100, 5 * MiB + 1))).toBe(true);
    expect(ended.sort((a, b) => a - b)).toEqual([5 * MiB - 99, bytes.length - 3 * MiB - 7, bytes.length].sort((a, b) => a - b));
    expect(fill.state).toBe('verified');
    expect(fill.readers).toBe(0);
    // A reader joining after the end (ring released) reads the file back.
    const late = await drain(new TailReader(fill, 0, undefined, () => undefined), MiB);
    expect(late.equals(bytes)).toBe(true);
  });

  it('keeps a slow reader on its own bytes when its fill has ended and the next fill reuses the ring', async () => {
    const first = randomBytes(6 * MiB);
    const second = randomBytes(6 * MiB);
    const fillA = tempFill(first);
    const bodyA = new PassThrough();
    const slow = new TailReader(fillA, 0, undefined, () => undefined);
    const runningA = fillA.run(bodyA);
    await feed(bodyA, first);
    await runningA;
    // The slow reader has not read a byte yet; fill B now writes other bytes into the ring A gave back.
    const fillB = tempFill(second);
    const bodyB = new PassThrough();
    const follower = new TailReader(fillB, 0, undefined, () => undefined);
    const runningB = fillB.run(bodyB);
    const followed = drain(follower, 256 * 1024);
    const slowRead = drain(slow, 256 * 1024);
    await feed(bodyB, second);
    await runningB;
    expect((await slowRead).equals(first)).toBe(true);
    expect((await followed).equals(second)).toBe(true);
  });

  it('holds back the last byte until the digest is verified, and fails every reader on a mismatch', async () => {
    const bytes = randomBytes(2 * MiB);
    const fill = tempFill(bytes);
    const body = new PassThrough();
    const reader = new TailReader(fill, 0, undefined, () => undefined);
    const running = fill.run(body);
    const received = drain(reader, 64 * 1024);
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0xff;
    // Both are checked from the start: the reader may fail while the last chunks are still being fed.
    const failed = Promise.all([expect(running).rejects.toThrow(/digest/i), expect(received).rejects.toThrow(/digest/i)]);
    await feed(body, tampered);
    await failed;
  });

  it('hands out no byte of a range that fits in one chunk before the whole fill is verified, and fails it on a mismatch', async () => {
    const bytes = randomBytes(3 * MiB);
    const fill = tempFill(bytes);
    const body = new PassThrough();
    const reader = new TailReader(fill, 0, 17, () => undefined);
    const running = fill.run(body);
    const scratch = Buffer.alloc(64 * 1024);
    let handedOut = false;
    const first = reader.next(scratch).then((chunk) => {
      handedOut = true;
      return chunk;
    });
    const tampered = Buffer.from(bytes);
    tampered.write('EVIL-BLOB-BYTES!!!', 0);
    // Every byte of the range is in, but the rest of the blob is not yet: nothing may go out.
    body.write(tampered.subarray(0, MiB));
    await new Promise((resolve) => setImmediate(resolve));
    expect(handedOut).toBe(false);
    const failed = Promise.all([expect(running).rejects.toThrow(/digest/i), expect(first).rejects.toThrow(/digest/i)]);
    body.end(tampered.subarray(MiB));
    await failed;
    expect(handedOut).toBe(false);
    reader.close();
  });

  it('cuts a range longer than one chunk before its last chunk when the fill fails verification', async () => {
    const bytes = randomBytes(3 * MiB);
    const fill = tempFill(bytes);
    const body = new PassThrough();
    const reader = new TailReader(fill, 10, 10 + 200_000, () => undefined);
    const running = fill.run(body);
    const scratch = Buffer.alloc(64 * 1024);
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0xff;
    const handed: number[] = [];
    const reading = (async (): Promise<void> => {
      for (;;) {
        const chunk = await reader.next(scratch);
        if (chunk === null) return;
        handed.push(chunk.length);
      }
    })();
    const failed = Promise.all([expect(running).rejects.toThrow(/digest/i), expect(reading).rejects.toThrow(/digest/i)]);
    await feed(body, tampered);
    await failed;
    const sent = handed.reduce((sum, n) => sum + n, 0);
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(200_001);
    reader.close();
  });

  it('serves a range of a blob it does not cache (larger than the ring) once verified, without holding up the fill', async () => {
    const bytes = randomBytes(7 * MiB + 3);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const fill = new BlobFill(digest, undefined, bytes.length, 'reg.example', 'team/app');
    const body = new PassThrough();
    let ended = 0;
    const reader = new TailReader(fill, 1000, 1000 + 99_999, (n) => (ended = n));
    const running = fill.run(body);
    const received = drain(reader, 128 * 1024);
    await feed(body, bytes);
    await running;
    expect((await received).equals(bytes.subarray(1000, 101_000))).toBe(true);
    expect(ended).toBe(100_000);
  });
});
