import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BlobFill, RECENT_WINDOW, RingPool, type WriteAt, writeFully } from '../../src/cache/blob-fill.js';
import { TailReader } from '../../src/cache/tail-reader.js';
import { pulledBody } from '../helpers/pulled-body.js';

const MiB = 1024 * 1024;
const dirs: string[] = [];
afterEach(() => {
  while (dirs.length > 0) rmSync(dirs.pop() ?? '', { recursive: true, force: true });
});

function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A disk that takes writes only when the test lets it: each write waits in `held` until released. */
class SlowDisk {
  readonly held: (() => void)[] = [];
  started = 0;
  completed = 0;
  /** Bytes of every write, in order. */
  readonly sizes: number[] = [];

  readonly writeAt: WriteAt = (fd, buffers, position, callback) => {
    this.started++;
    this.sizes.push(buffers.reduce((n, b) => n + b.length, 0));
    this.held.push(() =>
      writeFully(fd, buffers, position, (err) => {
        this.completed++;
        callback(err);
      }),
    );
  };

  /** Lets the writes waiting now go to the file. */
  releaseAll(): void {
    for (const write of this.held.splice(0)) write();
  }
}

function slowFill(digest: string, size: number, disk: SlowDisk): { fill: BlobFill; file: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-fill-writes-'));
  dirs.push(dir);
  const file = path.join(dir, 'blob.tmp');
  return { fill: new BlobFill(digest, file, size, 'reg.example', 'team/app', undefined, new RingPool(), disk.writeAt), file };
}


/** Turns of the event loop, so streams and the fill can make every step they can make without the disk. */
async function settle(turns = 50): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Reads `reader` to its end in the background, keeping what it got so far in `got`. */
function follow(reader: TailReader): { got: Buffer[]; total: () => number; done: Promise<Buffer> } {
  const got: Buffer[] = [];
  const done = (async () => {
    const scratch = Buffer.alloc(256 * 1024);
    try {
      for (;;) {
        const chunk = await reader.next(scratch);
        if (chunk === null) return Buffer.concat(got);
        got.push(Buffer.from(chunk));
      }
    } finally {
      reader.close();
    }
  })();
  done.catch(() => undefined);
  return { got, total: () => got.reduce((n, b) => n + b.length, 0), done };
}

describe('a fill writes its temp file behind its readers', () => {
  it('hands upstream bytes to a follower before any write of the file has completed, and never lets the ring drop unwritten bytes', async () => {
    const bytes = randomBytes(6 * MiB);
    const disk = new SlowDisk();
    const { fill, file } = slowFill(digestOf(bytes), bytes.length, disk);
    const reader = new TailReader(fill, 0, undefined, () => undefined);
    const pulled = { bytes: 0 };
    const ran = { settled: false };
    const running = fill.run(pulledBody(bytes, pulled)).finally(() => {
      ran.settled = true;
    });

    const follower = follow(reader);
    await settle(200);
    // The follower has its bytes while the disk has not finished a single write.
    expect(disk.completed).toBe(0);
    expect(fill.fileBytes).toBe(0);
    expect(follower.total()).toBeGreaterThanOrEqual(RECENT_WINDOW - 64 * 1024);
    // With nothing written, upstream is read no further than the ring can hold (plus what the streams buffer).
    expect(fill.written).toBeLessThanOrEqual(RECENT_WINDOW);
    expect(pulled.bytes).toBeLessThan(bytes.length);
    expect(disk.started).toBeGreaterThan(0);

    // The disk catches up: every write lets more of upstream in.
    while (!ran.settled) {
      disk.releaseAll();
      await settle(5);
    }
    await running;
    expect((await follower.done).equals(bytes)).toBe(true);
    expect(readFileSync(file).equals(bytes)).toBe(true);
    // Writes are batched (a quarter of the ring or more), not one per 64 KiB chunk.
    expect(disk.started).toBeLessThanOrEqual(bytes.length / (RECENT_WINDOW / 4));
    expect(Math.max(...disk.sizes)).toBeLessThanOrEqual(RECENT_WINDOW);
  });

  it('fails a mismatching blob before its last byte, and closes nothing under a write still in flight', async () => {
    const bytes = randomBytes(2 * MiB);
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0xff;
    const disk = new SlowDisk();
    const { fill } = slowFill(digestOf(bytes), bytes.length, disk);
    const reader = new TailReader(fill, 0, undefined, () => undefined);
    let settled = false;
    const running = fill.run(pulledBody(tampered, { bytes: 0 })).finally(() => {
      settled = true;
    });
    running.catch(() => undefined);

    const scratch = Buffer.alloc(256 * 1024);
    let received = 0;
    let failure: unknown;
    try {
      for (;;) {
        const chunk = await reader.next(scratch);
        if (chunk === null) break;
        received += chunk.length;
      }
    } catch (err) {
      failure = err;
    }
    reader.close();
    // Everything but the last byte was readable before verification, never the whole blob.
    expect(failure).toBeInstanceOf(Error);
    expect(String(failure)).toMatch(/digest/i);
    expect(received).toBeLessThan(bytes.length);
    // A batch is still being written from the ring: the fill waits for it before releasing its file and ring.
    expect(disk.started).toBeGreaterThan(disk.completed);
    await settle();
    expect(settled).toBe(false);
    disk.releaseAll();
    await expect(running).rejects.toThrow(/digest/i);
    expect(fill.state).toBe('failed');
    // No write starts once the fill has failed.
    const started = disk.started;
    await settle();
    expect(disk.started).toBe(started);
  });
});
