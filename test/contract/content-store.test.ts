import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../helpers/fake-clock.js';
import { MemoryContentStore } from '../helpers/memory-store.js';
import { FsContentStore } from '../../src/storage/fs-store.js';
import { runContentStoreContract } from './content-store.contract.js';

// The S3 store runs the same contract against a real Ceph RGW in test/e2e/s3-store.e2e.test.ts.
// 8 MiB is large for a local store (multipart is an S3 matter, tested at 64 MiB there) and keeps the unit run quick.
const LOCAL = { largeSize: 8 * 1024 * 1024 };
const clock = new FakeClock();
// The test double the shared-tier tests use in place of S3: it must keep the same contract.
runContentStoreContract('memory (test double of the shared store)', () => Promise.resolve({ store: new MemoryContentStore(clock) }), { ...LOCAL, advance: (ms) => clock.advance(ms) });

// The local tier's store, as the cache opens it.
runContentStoreContract(
  'filesystem',
  async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'pullgate-fs-store-'));
    const store = new FsContentStore(root);
    store.ensureLayout();
    return { store, teardown: () => rm(root, { recursive: true, force: true }) };
  },
  { ...LOCAL, replaces: true },
);

describe('FsContentStore publish rule', () => {
  it('replaces a damaged file at a digest path with the verified content of a new put (sync and async alike)', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'pullgate-fs-store-'));
    try {
      const store = new FsContentStore(root);
      store.ensureLayout();
      const bytes = randomBytes(1024);
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      store.putBytesSync(digest, bytes);
      writeFileSync(store.pathOf(digest), 'cut');
      expect(store.readExactly(digest, bytes.length)).toBeUndefined();
      store.putBytesSync(digest, bytes);
      expect(store.readExactly(digest, bytes.length)).toEqual(bytes);
      writeFileSync(store.pathOf(digest), 'cut');
      expect(await store.putBytes(digest, bytes)).toBe('exists');
      expect(await readFile(store.pathOf(digest))).toEqual(bytes);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
