import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BlobFill, RECENT_WINDOW } from '../../src/cache/blob-fill.js';
import { TailReader } from '../../src/cache/tail-reader.js';
import { pulledBody } from '../helpers/pulled-body.js';

const MiB = 1024 * 1024;
const RING = RECENT_WINDOW;

function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}


async function readAll(reader: TailReader, pause: number, onChunk: (total: number) => void = () => undefined): Promise<Buffer> {
  const scratch = Buffer.alloc(256 * 1024);
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for (;;) {
      const chunk = await reader.next(scratch);
      if (chunk === null) return Buffer.concat(parts);
      parts.push(Buffer.from(chunk));
      total += chunk.length;
      onChunk(total);
      for (let i = 0; i < pause; i++) await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    reader.close();
  }
}

describe('a fill without a file (storage failing)', () => {
  it('streams from memory to fast and slow readers alike, reading upstream no faster than the slowest reader frees the ring', async () => {
    const bytes = randomBytes(11 * MiB + 4321);
    const fill = new BlobFill(digestOf(bytes), undefined, bytes.length, 'reg.example', 'team/app');
    const fast = new TailReader(fill, 0, undefined, () => undefined);
    const slow = new TailReader(fill, 0, undefined, () => undefined);
    const pulled = { bytes: 0 };
    let widestLead = 0;
    const running = fill.run(pulledBody(bytes, pulled));
    const [a, b] = await Promise.all([
      readAll(fast, 0),
      readAll(slow, 20, (total) => {
        widestLead = Math.max(widestLead, fill.written - total);
      }),
      running,
    ]);
    expect(a.equals(bytes)).toBe(true);
    expect(b.equals(bytes)).toBe(true);
    expect(fill.caching).toBe(false);
    expect(fill.fileBytes).toBe(0);
    // Memory stays bounded by the ring: the writer never ran more than a ring ahead of the slow reader.
    expect(widestLead).toBeLessThanOrEqual(RING);
    expect(pulled.bytes).toBe(bytes.length);
  });

  it('stops fetching when its last reader leaves, since nothing would be kept', async () => {
    const bytes = randomBytes(9 * MiB);
    const fill = new BlobFill(digestOf(bytes), undefined, bytes.length, 'reg.example', 'team/app');
    const reader = new TailReader(fill, 0, undefined, () => undefined);
    const pulled = { bytes: 0 };
    const running = fill.run(pulledBody(bytes, pulled));
    await reader.next(Buffer.alloc(64 * 1024));
    reader.close();
    await expect(running).rejects.toThrow(/every client left/);
    expect(pulled.bytes).toBeLessThan(bytes.length);
  });

  it('lets a new reader join only while the bytes it needs are still in memory', async () => {
    const bytes = randomBytes(6 * MiB);
    const fill = new BlobFill(digestOf(bytes), undefined, bytes.length, 'reg.example', 'team/app');
    const first = new TailReader(fill, 0, undefined, () => undefined);
    expect(fill.joinable(0)).toBe(true);
    const running = fill.run(pulledBody(bytes, { bytes: 0 }));
    const whole = await readAll(first, 0);
    await running;
    expect(whole.equals(bytes)).toBe(true);
    expect(fill.joinable(0)).toBe(false);
    expect(() => new TailReader(fill, 0, undefined, () => undefined)).toThrow(/no longer held/);
  });
});
