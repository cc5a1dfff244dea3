import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { S3ContentStore } from '../../src/storage/s3-store.js';
import { runContentStoreContract } from '../contract/content-store.contract.js';
import { type Rgw, startRgw } from '../../support/rgw.js';

// A real Ceph RGW (scripts/rgw.sh) for the whole file; if it cannot start, beforeAll fails with the reason.
let rgw: Rgw | undefined;
let dir: string | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pullgate-rgw-'));
  rgw = await startRgw(path.join(dir, 'ceph'));
  process.stderr.write(`e2e: Ceph RGW ready at ${rgw.endpoint} in ${rgw.startupMs} ms\n`);
  // The store takes its keys from the AWS SDK's default chain, as in production.
  Object.assign(process.env, rgw.env);
}, 120_000);

afterAll(async () => {
  await rgw?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

function requireRgw(): Rgw {
  if (rgw === undefined) throw new Error('Ceph RGW did not start (see the beforeAll failure above)');
  return rgw;
}

runContentStoreContract(
  's3 (Ceph RGW)',
  () => {
    const s3 = requireRgw();
    const store = new S3ContentStore({ endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, prefix: 'contract/', forcePathStyle: true });
    return Promise.resolve({ store, teardown: () => store.close() });
  },
  { largeSize: 64 * 1024 * 1024, largeTimeoutMs: 120_000 },
);
