import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, buildServices } from '../../src/app/app.js';
import { loadConfigText } from '../../src/config/load.js';
import { createLogger, type Deps, systemClock } from '../../src/core/deps.js';
import { S3ContentStore } from '../../src/storage/s3-store.js';
import { verifyStore } from '../../src/storage/store-maintenance.js';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';
import { runContentStoreContract } from '../contract/content-store.contract.js';
import { type Rgw, startRgw } from '../../support/rgw.js';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

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

/** One pullgate in this process over the RGW bucket, with its own local disk. */
async function startReplica(upstream: string, storage: string, options: { redirect?: boolean } = {}): Promise<{ base: string; configFile: string; services: ReturnType<typeof buildServices>; close: () => Promise<void> }> {
  const s3 = requireRgw();
  const yaml = [
    'registries:',
    `  reg.example: { url: ${upstream} }`,
    'defaultRegistry: reg.example',
    'storage:',
    `  path: ${JSON.stringify(storage)}`,
    '  s3:',
    `    endpoint: ${s3.endpoint}`,
    `    region: ${s3.region}`,
    `    bucket: ${s3.bucket}`,
    '    prefix: replicas/',
    '    forcePathStyle: true',
    `    redirect: ${options.redirect === true}`,
    '',
  ].join('\n');
  await mkdir(storage, { recursive: true });
  const configFile = path.join(storage, 'pullgate.yaml');
  await writeFile(configFile, yaml);
  const config = loadConfigText(yaml, process.env, configFile, storage);
  const dispatcher = new Agent({ keepAliveTimeout: 1000 });
  const deps: Deps = { clock: systemClock, dispatcher, logger: createLogger('warn', { write: (line: string) => process.stderr.write(line) }), env: process.env };
  const services = buildServices(config, deps);
  const app = buildApp(config, deps, services);
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    base,
    configFile,
    services,
    close: async () => {
      await app.close();
      await dispatcher.close();
    },
  };
}

/** Runs the pullgate CLI from source with the RGW keys in its environment (the AWS SDK's default chain). */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { env: { ...process.env, ...requireRgw().env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function getBytes(url: string): Promise<{ status: number; body: Buffer }> {
  const res = await request(url, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) };
}

describe('pullgate replicas over one RGW bucket', () => {
  it('a replica with an empty local disk serves an image another replica pulled, with 0 upstream requests; verify over S3 is clean', async () => {
    const upstream = await new FakeRegistry({ kind: 'none' }, systemClock).start();
    const work = await mkdtemp(path.join(tmpdir(), 'pullgate-replicas-'));
    const replicas: { close: () => Promise<void> }[] = [];
    try {
      const image = upstream.add(makeImage('team/app', '1', 3, 2 * 1024 * 1024));
      const a = await startReplica(upstream.origin, path.join(work, 'a'));
      replicas.push(a);
      const byTag = await getBytes(`${a.base}/v2/team/app/manifests/1`);
      expect(byTag.status).toBe(200);
      expect(byTag.body.equals(image.manifest)).toBe(true);
      for (const [digest, bytes] of image.blobs) {
        const blob = await getBytes(`${a.base}/v2/team/app/blobs/${digest}`);
        expect(blob.status).toBe(200);
        expect(blob.body.equals(bytes)).toBe(true);
      }
      await a.services.cache.drain();

      const before = upstream.seen.length;
      const b = await startReplica(upstream.origin, path.join(work, 'b'));
      replicas.push(b);
      const byDigest = await getBytes(`${b.base}/v2/team/app/manifests/${image.digest}`);
      expect(byDigest.status).toBe(200);
      expect(byDigest.body.equals(image.manifest)).toBe(true);
      for (const [digest, bytes] of image.blobs) {
        const blob = await getBytes(`${b.base}/v2/team/app/blobs/${digest}`);
        expect(blob.status).toBe(200);
        expect(blob.body.equals(bytes)).toBe(true);
      }
      expect(upstream.seen.slice(before).map((seen) => `${seen.method} ${seen.path}`)).toEqual([]);
      // B kept local copies: a second read is a local hit.
      await b.services.cache.drain();
      expect(b.services.cache.lookup(image.digest)).toBeDefined();

      const s3 = requireRgw();
      const store = new S3ContentStore({ endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, prefix: 'replicas/', forcePathStyle: true });
      const report = await verifyStore(store);
      await store.close();
      expect(report.problems).toEqual([]);
      expect(report.checked).toBe(image.blobs.size + 1);

      // The command an operator runs, on B's config: its local copies and the bucket are clean.
      const verify = await cli(['cache', 'verify', '-c', b.configFile]);
      expect(verify.stdout).toContain(`and ${image.blobs.size + 1} shared objects: 0 problems, 0 not repaired`);
      expect(verify.code).toBe(0);
      const stats = await cli(['cache', 'stats', '-c', b.configFile]);
      expect(stats.stdout).toContain(`shared:    s3://${s3.bucket}/replicas/`);
      expect(stats.stdout).toMatch(new RegExp(`objects: ${image.blobs.size + 1}\\b`));

      // redirect: true sends a blob GET to a presigned URL that RGW itself accepts without credentials.
      const c = await startReplica(upstream.origin, path.join(work, 'c'), { redirect: true });
      replicas.push(c);
      const beforeRedirect = upstream.seen.length;
      const [layer, layerBytes] = [...image.blobs][1] ?? ['', Buffer.alloc(0)];
      const redirected = await request(`${c.base}/v2/team/app/blobs/${layer}`);
      await redirected.body.dump();
      expect(redirected.statusCode).toBe(307);
      const location = String(redirected.headers.location);
      expect(location.startsWith(`${s3.endpoint}/${s3.bucket}/replicas/blobs/sha256/`)).toBe(true);
      const followed = await request(location);
      expect(followed.statusCode).toBe(200);
      expect(Buffer.from(await followed.body.arrayBuffer()).equals(layerBytes)).toBe(true);
      expect(upstream.seen.slice(beforeRedirect)).toEqual([]);
      // A repository nobody confirmed is asked upstream first (which does not know it): no redirect, 404.
      const refused = await request(`${c.base}/v2/team/unknown/blobs/${layer}`);
      await refused.body.dump();
      expect(refused.statusCode).toBe(404);
      expect(upstream.seen.slice(beforeRedirect).map((seen) => `${seen.method} ${seen.path}`)).toEqual([`HEAD /v2/team/unknown/blobs/${layer}`]);
    } finally {
      for (const replica of replicas.reverse()) await replica.close();
      await upstream.stop();
      await rm(work, { recursive: true, force: true });
    }
  });
});
