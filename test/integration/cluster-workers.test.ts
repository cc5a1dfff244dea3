import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import type { FastifyInstance } from 'fastify';
import { buildApp, buildServices } from '../../src/app/app.js';
import { workerConfig } from '../../src/cli/workers.js';
import { ownerOf } from '../../src/cluster/rendezvous.js';
import { loadConfigText } from '../../src/config/load.js';
import { createLogger, type Deps } from '../../src/core/deps.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeRegistry, makeImage } from '../helpers/fake-registry.js';

// Two apps in one process, configured as `serve --workers 2` configures its workers (workerConfig): members
// on unix sockets, one storage directory and one index. They stand for two workers of one host.

const MiB = 1024 * 1024;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

interface Worker {
  id: string;
  base: string;
  logs: string[];
  app: FastifyInstance;
}

async function twoWorkers(fake: FakeRegistry, clock: FakeClock): Promise<{ workers: Worker[]; storage: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-cluster-workers-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const storage = path.join(dir, 'data');
  const yaml = ['defaultRegistry: reg.example', `registries: { reg.example: { url: ${fake.origin} } }`, `storage: { path: ${JSON.stringify(storage)} }`].join('\n');
  const sockets = [path.join(dir, 'worker-0.sock'), path.join(dir, 'worker-1.sock')];
  const built = sockets.map((socket, index) => {
    const logs: string[] = [];
    const dispatcher = new Agent({ keepAliveTimeout: 1000 });
    const deps: Deps = { clock, dispatcher, logger: createLogger('debug', { write: (line: string) => logs.push(line) }), env: {} };
    const config = workerConfig(loadConfigText(yaml, {}, 'test', dir), { index, sockets, secret: 'workers-secret-0123456789abcdef0123' });
    const services = buildServices(config, deps);
    const app = buildApp(config, deps, services);
    cleanups.push(async () => {
      await app.close();
      await dispatcher.close();
    });
    return { id: `unix:${socket}`, logs, app };
  });
  // Every worker builds its services (clearing tmp/) before any listens, as the primary makes them.
  const workers: Worker[] = [];
  for (const worker of built) workers.push({ ...worker, base: await worker.app.listen({ host: '127.0.0.1', port: 0 }) });
  return { workers, storage };
}

function lines(worker: Worker, text: string): Record<string, unknown>[] {
  return worker.logs
    .join('')
    .split('\n')
    .filter((line) => line.includes(text))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function body(pending: ReturnType<typeof request>): Promise<Buffer> {
  const response = await pending;
  expect(response.statusCode).toBe(200);
  return Buffer.from(await response.body.arrayBuffer());
}

describe('workers of one host share a fill on disk', () => {
  it('serves cold pulls through both workers with one upstream GET per blob, and no blob streamed between them', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => fake.stop());
    const image = fake.add(makeImage('team/app', '1', 6, 3 * MiB + 17));
    const { workers, storage } = await twoWorkers(fake, clock);
    const ids = workers.map((w) => w.id);
    const blobs = [...image.blobs.entries()];
    // Some blobs are owned by each worker (rendezvous hashing over the two sockets).
    const owners = new Set(blobs.map(([digest]) => ownerOf(digest, ids)));
    expect(owners.size).toBe(2);

    // Three cold pulls of every blob through each worker, all at once; ranges too. (Upstream is not held
    // here: with seven blobs held at once one upstream response stalls in this in-process setup, before
    // and after this change alike, so a follower may also find a blob already stored: source "cache".)
    const PULLS = 3;
    const wholes = blobs.flatMap(([digest, bytes]) =>
      workers.flatMap((worker) => Array.from({ length: PULLS }, () => ({ bytes, pending: request(`${worker.base}/v2/team/app/blobs/${digest}`) }))),
    );
    const ranges = blobs.map(([digest, bytes], i) => {
      const worker = workers[i % 2] ?? workers[0];
      const start = Math.floor(bytes.length / 3);
      return { bytes: bytes.subarray(start), pending: request(`${worker?.base ?? ''}/v2/team/app/blobs/${digest}`, { headers: { range: `bytes=${start}-` } }) };
    });
    for (const { bytes, pending } of wholes) expect((await body(pending)).equals(bytes)).toBe(true);
    for (const { bytes, pending } of ranges) {
      const response = await pending;
      expect(response.statusCode).toBe(206);
      expect(Buffer.from(await response.body.arrayBuffer()).equals(bytes)).toBe(true);
    }
    for (const [digest] of blobs) expect(fake.seen.filter((s) => s.method === 'GET' && s.path.endsWith(`/blobs/${digest}`)), digest).toHaveLength(1);

    // The peer blob endpoint (bytes over the socket) was never asked; the fill endpoint was, once per follower's fill.
    const peerRequests = workers.flatMap((w) => lines(w, '"msg":"cluster peer request"'));
    expect(peerRequests.filter((line) => line.endpoint === 'blobs')).toEqual([]);
    expect(peerRequests.filter((line) => line.endpoint === 'fills').length).toBeGreaterThan(0);
    // A worker's first request for a blob it owns went upstream; for one it does not own it read the owner's
    // fill ("worker") or, when the owner had finished, the stored blob ("cache"): never bytes from a peer.
    let followed = 0;
    for (const worker of workers) {
      for (const [digest] of blobs) {
        const sources = lines(worker, '"msg":"request"')
          .filter((line) => typeof line.path === 'string' && line.path.endsWith(digest))
          .map((line) => line.source)
          .filter((source) => source !== 'coalesced');
        expect(sources, `${worker.id} ${digest}`).not.toContain('peer');
        if (ownerOf(digest, ids) === worker.id) expect(sources[0], `${worker.id} ${digest}`).toBe('upstream');
        else expect(['worker', 'cache'], `${worker.id} ${digest}`).toContain(sources[0]);
        expect(sources.filter((source) => source === 'worker' || source === 'upstream').length, `${worker.id} ${digest}`).toBeLessThanOrEqual(1);
        if (sources[0] === 'worker') followed++;
      }
    }
    expect(followed).toBeGreaterThan(0);
    // Every follower link in tmp/ was removed once opened (the owners' temp files are renamed into place).
    await Promise.all(workers.map((w) => w.app.close()));
    expect(readdirSync(path.join(storage, 'tmp'))).toEqual([]);
  }, 60_000);
});
