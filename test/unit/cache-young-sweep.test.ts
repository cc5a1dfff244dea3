import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BlobFill, RingPool } from '../../src/cache/blob-fill.js';
import { SWEEP_EVERY_BYTES, YoungSweep } from '../../src/cache/young-sweep.js';
import { minorCollection } from '../../src/core/runtime-flags.js';

const MiB = 1024 * 1024;

describe('YoungSweep', () => {
  it('collects once per SWEEP_EVERY_BYTES bytes taken in, not per chunk', () => {
    let collections = 0;
    const sweep = new YoungSweep(() => collections++);
    for (let taken = 0; taken < 10 * SWEEP_EVERY_BYTES; taken += 64 * 1024) sweep.took(64 * 1024);
    expect(collections).toBe(10);
  });

  it('counts the upstream bytes of every fill of its cache', async () => {
    let collections = 0;
    const rings = new RingPool(new YoungSweep(() => collections++, MiB));
    const bytes = randomBytes(5 * MiB);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const fills = [0, 1].map(() => new BlobFill(digest, undefined, bytes.length, 'reg.example', 'team/app', undefined, rings));
    const chunks = (): Buffer[] => Array.from({ length: bytes.length / (64 * 1024) }, (_, i) => bytes.subarray(i * 64 * 1024, (i + 1) * 64 * 1024));
    await Promise.all(fills.map((fill) => fill.run(Readable.from(chunks()))));
    // Two fills of 5 MiB each: ten 1 MiB steps.
    expect(collections).toBe(10);
  });

  it('gets a working minor collection from the runtime without a global gc', () => {
    const collect = minorCollection();
    if (collect === undefined) {
      console.log('this runtime refuses --expose-gc at run time: fills run without minor collections');
      return;
    }
    expect(() => collect()).not.toThrow();
    expect('gc' in globalThis).toBe(false);
  });
});
