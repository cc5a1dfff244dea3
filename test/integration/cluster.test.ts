import { mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '../../support/ports.js';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import type { FastifyInstance } from 'fastify';
import { buildApp, buildServices } from '../../src/app/app.js';
import { PEER_HEADER, signPeerRequest } from '../../src/cluster/peer-auth.js';
import { peerBlobPath } from '../../src/cluster/peer-listener.js';
import { ownerOf } from '../../src/cluster/rendezvous.js';
import { FetchRefused } from '../../src/core/errors.js';
import { loadConfigText } from '../../src/config/load.js';
import { createLogger, type Deps } from '../../src/core/deps.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeRegistry, makeImage, type FakeImage } from '../helpers/fake-registry.js';

const MiB = 1024 * 1024;
const SECRET = 'cluster-secret-for-the-tests-0123456789';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

interface Replica {
  id: string;
  app: FastifyInstance;
  base: string;
  logs: string[];
  services: ReturnType<typeof buildServices>;
  /** Stops this replica's peer listener and client at once, as a crash would for its peers. */
  kill(): Promise<void>;
}

/**
 * Three (or `count`) replicas that name each other's peer ports. The ports are probed before any
 * replica listens, so another test file running in parallel can take one in between: then the
 * replicas built so far are closed and the ports probed again.
 */
async function cluster(fake: FakeRegistry, clock: FakeClock, count = 3, registryYaml = ''): Promise<Replica[]> {
  const before = cleanups.length;
  for (let attempt = 1; ; attempt++) {
    try {
      return await clusterOnce(fake, clock, count, registryYaml);
    } catch (err) {
      if (attempt >= 5 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      while (cleanups.length > before) await cleanups.pop()?.();
    }
  }
}

async function clusterOnce(fake: FakeRegistry, clock: FakeClock, count: number, registryYaml: string): Promise<Replica[]> {
  const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
  const peers = ports.map((port) => `127.0.0.1:${port}`);
  const replicas: Replica[] = [];
  for (const port of ports) {
    const storage = mkdtempSync(path.join(tmpdir(), 'pullgate-cluster-'));
    const logs: string[] = [];
    const dispatcher = new Agent({ keepAliveTimeout: 1000 });
    const deps: Deps = { clock, dispatcher, logger: createLogger('debug', { write: (line: string) => logs.push(line) }), env: {} };
    const yaml = [
      'defaultRegistry: reg.example',
      `registries: { reg.example: { url: ${fake.origin}${registryYaml} } }`,
      `cluster: { listen: 127.0.0.1:${port}, peers: [${peers.join(', ')}], secret: ${SECRET} }`,
      `storage: { path: ${JSON.stringify(storage)} }`,
    ].join('\n');
    const config = loadConfigText(yaml, {}, 'test', storage);
    const services = buildServices(config, deps);
    const app = buildApp(config, deps, services);
    let closed = false;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      await app.close();
      await dispatcher.close();
      rmSync(storage, { recursive: true, force: true });
    };
    cleanups.push(close);
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    replicas.push({ id: `127.0.0.1:${port}`, app, base, logs, services, kill: close });
  }
  return replicas;
}

function layer(image: FakeImage, size: number): [string, Buffer] {
  const found = [...image.blobs.entries()].find(([, bytes]) => bytes.length === size);
  if (!found) throw new Error(`no ${size}-byte layer`);
  return found;
}

function blobGets(fake: FakeRegistry, digest: string): number {
  return fake.seen.filter((s) => s.method === 'GET' && s.path.endsWith(`/blobs/${digest}`)).length;
}

/** Reads a body to its end: the bytes, or the error that cut it. */
async function outcome(pending: Promise<Awaited<ReturnType<typeof request>>>): Promise<Buffer | Error> {
  try {
    const response = await pending;
    if (response.statusCode !== 200) return new Error(`status ${response.statusCode}: ${await response.body.text()}`);
    return Buffer.from(await response.body.arrayBuffer());
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; !condition(); i++) {
    if (i > 20_000) throw new Error('condition not met');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('cluster: one upstream fetch per layer per cluster', () => {
  it('serves 20 clients spread over three replicas with one upstream GET, every body whole', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => fake.stop());
    const [digest, bytes] = layer(fake.add(makeImage('team/app', '1', 1, 8 * MiB)), 8 * MiB);
    const replicas = await cluster(fake, clock);
    let release = (): void => undefined;
    fake.faults.holdBlobs = new Promise<void>((resolve) => (release = resolve));
    const clients = Array.from({ length: 20 }, (_, i) => request(`${replicas[i % 3]?.base ?? ''}/v2/team/app/blobs/${digest}`));
    // Every client has its headers (so it is reading a fill) before upstream sends more than 64 KiB.
    await Promise.all(clients);
    release();
    const bodies = await Promise.all(clients.map((c) => outcome(c)));
    for (const body of bodies) expect(body instanceof Buffer && body.equals(bytes)).toBe(true);
    expect(blobGets(fake, digest)).toBe(1);
    // The access log tells the registry's traffic from the cluster's: the owner fetched upstream, each other
    // replica's one fill came from the owner (source "peer"), and every other client joined a fill.
    const owner = ownerOf(digest, replicas.map((r) => r.id));
    for (const replica of replicas) {
      const sources = replica.logs
        .join('')
        .split('\n')
        .filter((line) => line.includes('"msg":"request"') && line.includes(digest))
        .map((line) => (JSON.parse(line) as { source?: string }).source);
      const expected = replica.id === owner ? 'upstream' : 'peer';
      expect(sources.filter((s) => s !== 'coalesced'), replica.id).toEqual([expected]);
    }
    // Each replica now has it: a hit everywhere, still one upstream GET.
    for (const replica of replicas) {
      const again = await outcome(request(`${replica.base}/v2/team/app/blobs/${digest}`));
      expect(again instanceof Buffer && again.equals(bytes)).toBe(true);
    }
    expect(blobGets(fake, digest)).toBe(1);
    for (const replica of replicas) expect(replica.logs.join('')).not.toContain(SECRET);
  });

  it('keeps access checks through the owner: a blob cached for one repository is not served for another that upstream refuses', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => fake.stop());
    const [digest, bytes] = layer(fake.add(makeImage('team/app', '1', 1, 256 * 1024)), 256 * 1024);
    const replicas = await cluster(fake, clock);
    const ownerId = ownerOf(digest, replicas.map((r) => r.id));
    const owner = replicas.find((r) => r.id === ownerId);
    const follower = replicas.find((r) => r.id !== ownerId);
    if (owner === undefined || follower === undefined) throw new Error('no owner');
    const first = await outcome(request(`${owner.base}/v2/team/app/blobs/${digest}`));
    expect(first instanceof Buffer && first.equals(bytes)).toBe(true);
    const denied = await request(`${follower.base}/v2/other/app/blobs/${digest}`);
    expect(denied.statusCode).toBe(404);
    expect(await denied.body.text()).not.toContain(bytes.subarray(0, 32).toString('latin1'));
    // The owner checked other/app with a HEAD upstream; the follower then asked upstream itself.
    expect(fake.seen.filter((s) => s.method === 'HEAD' && s.path === `/v2/other/app/blobs/${digest}`)).toHaveLength(1);
    expect(blobGets(fake, digest)).toBe(2);
    expect(follower.logs.join('')).not.toMatch(/cluster peer marked down/);
  });

  it('lets a replica fetch upstream itself when the owner is down before the request, and marks the owner down', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => fake.stop());
    const [digest, bytes] = layer(fake.add(makeImage('team/app', '1', 1, 2 * MiB)), 2 * MiB);
    const replicas = await cluster(fake, clock);
    const ownerId = ownerOf(digest, replicas.map((r) => r.id));
    const owner = replicas.find((r) => r.id === ownerId);
    const follower = replicas.find((r) => r.id !== ownerId);
    if (owner === undefined || follower === undefined) throw new Error('no owner');
    await owner.kill();
    const body = await outcome(request(`${follower.base}/v2/team/app/blobs/${digest}`));
    expect(body instanceof Buffer && body.equals(bytes)).toBe(true);
    expect(blobGets(fake, digest)).toBe(1);
    expect(follower.logs.join('')).toMatch(/cluster peer marked down/);
  });

  it('cuts the followers\' clients before their last byte when the owner dies mid-fill, and the next pull is whole', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => fake.stop());
    const [digest, bytes] = layer(fake.add(makeImage('team/app', '1', 1, 4 * MiB)), 4 * MiB);
    const replicas = await cluster(fake, clock);
    const ownerId = ownerOf(digest, replicas.map((r) => r.id));
    const owner = replicas.find((r) => r.id === ownerId);
    const followers = replicas.filter((r) => r.id !== ownerId);
    if (owner === undefined) throw new Error('no owner');
    let release = (): void => undefined;
    fake.faults.holdBlobs = new Promise<void>((resolve) => (release = resolve));
    const clients = Array.from({ length: 12 }, (_, i) => request(`${followers[i % 2]?.base ?? ''}/v2/team/app/blobs/${digest}`));
    await Promise.all(clients);
    const results = Promise.all(clients.map((c) => outcome(c)));
    // The owner goes away while its upstream fetch is still held: its peers' transfers are cut mid-body.
    const killed = owner.kill();
    await until(() => followers.every((f) => f.logs.join('').includes('blob fetch failed')));
    release();
    await killed;
    for (const result of await results) {
      // Whole and correct, or an error: never a complete-looking wrong body.
      if (result instanceof Buffer) expect(result.equals(bytes)).toBe(true);
    }
    // Here every client was on a follower whose source was cut: each got an error, none a body.
    expect((await results).filter((r) => r instanceof Buffer)).toHaveLength(0);
    for (const follower of followers) {
      const next = await outcome(request(`${follower.base}/v2/team/app/blobs/${digest}`));
      expect(next instanceof Buffer && next.equals(bytes)).toBe(true);
    }
    // One fetch by the owner that died, then the followers each fetched for themselves (the owner is down).
    expect(blobGets(fake, digest)).toBe(3);
  });
});

describe('cluster: the fetch policy holds for peers (issue 20 §2)', () => {
  it('answers a signed peer request for a repository registries.<host>.repositories denies with 403 DENIED, fetching and storing nothing', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => fake.stop());
    const [digest] = layer(fake.add(makeImage('org/secret', '1', 1, 64 * 1024)), 64 * 1024);
    const replicas = await cluster(fake, clock, 2, ', repositories: { deny: [org/secret] }');
    const [replica] = replicas;
    if (replica === undefined) throw new Error('no replica');
    const client = await request(`${replica.base}/v2/org/secret/blobs/${digest}`);
    expect(client.statusCode).toBe(403);
    await client.body.dump();
    const peerPath = peerBlobPath('reg.example', 'org/secret', digest);
    const peer = await request(`http://${replica.id}${peerPath}`, { headers: { [PEER_HEADER]: signPeerRequest(SECRET, 'GET', peerPath, clock.now()) } });
    expect(peer.statusCode).toBe(403);
    const body = (await peer.body.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]?.code).toBe('DENIED');
    expect(body.errors[0]?.message).toContain('registries.reg.example.repositories.deny');
    expect(fake.seen.filter((s) => s.path.startsWith('/v2/org/secret/'))).toEqual([]);
    await replica.services.cache.drain();
    expect(replica.services.cache.lookup(digest)).toBeUndefined();
  });

  it('refuses the same repository below every entry point: the blob service itself makes no upstream request for it', async () => {
    const clock = new FakeClock();
    const fake = await new FakeRegistry({ kind: 'none' }, clock).start();
    cleanups.push(() => fake.stop());
    const [digest] = layer(fake.add(makeImage('org/secret', '1', 1, 64 * 1024)), 64 * 1024);
    const [replica] = await cluster(fake, clock, 1, ', repositories: { deny: [org/secret] }');
    if (replica === undefined) throw new Error('no replica');
    const route = { registry: 'reg.example', repository: 'org/secret' };
    const signal = new AbortController().signal;
    await expect(replica.services.blobs.get({ route, digest, method: 'GET', range: undefined, signal, fromPeer: true })).rejects.toBeInstanceOf(FetchRefused);
    await expect(replica.services.manifests.get({ route, reference: { kind: 'tag', value: '1' }, method: 'GET', accept: undefined, signal })).rejects.toBeInstanceOf(FetchRefused);
    expect(fake.seen.filter((s) => s.path.startsWith('/v2/org/secret/'))).toEqual([]);
  });
});

