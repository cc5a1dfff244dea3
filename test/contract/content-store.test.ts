import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FakeClock } from '../helpers/fake-clock.js';
import { FsContentStore } from '../../src/storage/fs-store.js';
import { MemoryContentStore } from '../../src/storage/memory-store.js';
import { runContentStoreContract } from './content-store.contract.js';

// The S3 store runs the same contract against a real Ceph RGW in test/e2e/s3-store.e2e.test.ts.
// 8 MiB is large for a local store (multipart is an S3 matter, tested at 64 MiB there) and keeps the unit run quick.
const LOCAL = { largeSize: 8 * 1024 * 1024 };
const clock = new FakeClock();
runContentStoreContract('memory', () => Promise.resolve({ store: new MemoryContentStore(clock) }), { ...LOCAL, advance: (ms) => clock.advance(ms) });

runContentStoreContract('filesystem', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'pullgate-fs-store-'));
  return { store: new FsContentStore(root), teardown: () => rm(root, { recursive: true, force: true }) };
}, LOCAL);
