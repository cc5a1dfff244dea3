import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { signPeerRequest, PEER_HEADER, MAX_SKEW_MS } from '../../src/cluster/peer-auth.js';
import { PeerClient } from '../../src/cluster/peer-client.js';
import { PeerListener, peerBlobPath } from '../../src/cluster/peer-listener.js';
import { createLogger } from '../../src/core/deps.js';
import { NotFound, OwnerUnavailable } from '../../src/core/errors.js';
import { SendBuffers } from '../../src/http/send-chunks.js';
import type { BlobAnswer } from '../../src/proxy/types.js';
import type { Route } from '../../src/routing/route.js';
import { FakeClock } from '../helpers/fake-clock.js';

const secret = 'a-cluster-secret-of-32-characters';
const digest = `sha256:${'ab'.repeat(32)}`;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

interface Served {
  asked: { route: Route; digest: string }[];
  address: string;
  clock: FakeClock;
  client: PeerClient;
}

async function listener(answer: (route: Route) => BlobAnswer | Promise<BlobAnswer>): Promise<Served> {
  const clock = new FakeClock();
  const asked: Served['asked'] = [];
  const peer = new PeerListener({
    secret,
    clock,
    logger: createLogger('silent'),
    knownRegistry: (registry) => registry === 'ghcr.io' || registry === 'registry.internal:5000',
    // As `registries.ghcr.io.repositories: { deny: [org/secret/**] }` would say.
    fetchVerdict: (route) => (route.registry === 'ghcr.io' && route.repository.startsWith('org/secret') ? 'registries.ghcr.io.repositories.deny has "org/secret/**"' : undefined),
    blobs: async (route, d) => {
      asked.push({ route, digest: d });
      return answer(route);
    },
    fills: () => Promise.resolve({ kind: 'uncached' }),
    stored: () => false,
    sendBuffers: new SendBuffers(),
  });
  const address = await peer.listen({ host: '127.0.0.1', port: 0 });
  const client = new PeerClient({ secret, clock, headersTimeoutMs: 5_000, bodyTimeoutMs: 5_000 });
  closers.push(async () => {
    await client.close();
    await peer.close();
  });
  return { asked, address, clock, client };
}

function stream(bytes: Buffer): BlobAnswer {
  const body = new PassThrough();
  body.end(bytes);
  return { status: 200, length: bytes.length, contentRange: undefined, body, source: 'cache' };
}

describe('cluster peer listener', () => {
  it('serves a blob to a peer signed with the secret, through the owner pipeline for that repository', async () => {
    const bytes = Buffer.from('layer bytes');
    const served = await listener(() => stream(bytes));
    const blob = await served.client.fetchBlob(served.address, 'registry.internal:5000', 'team/app', digest);
    expect(blob.size).toBe(bytes.length);
    const parts: Buffer[] = [];
    for await (const chunk of blob.body) parts.push(chunk as Buffer);
    expect(Buffer.concat(parts)).toEqual(bytes);
    expect(served.asked).toEqual([{ route: { registry: 'registry.internal:5000', repository: 'team/app' }, digest }]);
  });

  it('answers 401 without a signature, 403 with a wrong one or a replay outside the skew, and runs nothing', async () => {
    const served = await listener(() => stream(Buffer.from('x')));
    const path = peerBlobPath('ghcr.io', 'org/app', digest);
    const url = `http://${served.address}${path}`;
    const missing = await request(url);
    expect(missing.statusCode).toBe(401);
    expect(await missing.body.text()).not.toContain(secret);
    const wrong = await request(url, { headers: { [PEER_HEADER]: signPeerRequest('another-secret-of-enough-length', 'GET', path, served.clock.now()) } });
    expect(wrong.statusCode).toBe(403);
    await wrong.body.dump();
    const old = signPeerRequest(secret, 'GET', path, served.clock.now());
    served.clock.advance(MAX_SKEW_MS + 1);
    const replay = await request(url, { headers: { [PEER_HEADER]: old } });
    expect(replay.statusCode).toBe(403);
    await replay.body.dump();
    const bearer = await request(url, { headers: { [PEER_HEADER]: secret } });
    expect(bearer.statusCode).toBe(403);
    await bearer.body.dump();
    expect(served.asked).toHaveLength(0);
  });

  it('refuses registries that are not configured and malformed names, as OCI errors', async () => {
    const served = await listener(() => stream(Buffer.from('x')));
    await expect(served.client.fetchBlob(served.address, 'evil.example', 'org/app', digest)).rejects.toThrow(/answered 404.*NAME_UNKNOWN/);
    await expect(served.client.fetchBlob(served.address, 'ghcr.io', 'Org/App', digest)).rejects.toThrow(/answered 400.*NAME_INVALID/);
    expect(served.asked).toHaveLength(0);
  });

  it('answers 403 DENIED to a signed request for a repository the registry\'s fetch policy refuses, and runs nothing', async () => {
    const served = await listener(() => stream(Buffer.from('x')));
    const path = peerBlobPath('ghcr.io', 'org/secret', digest);
    const res = await request(`http://${served.address}${path}`, { headers: { [PEER_HEADER]: signPeerRequest(secret, 'GET', path, served.clock.now()) } });
    expect(res.statusCode).toBe(403);
    const body = (await res.body.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]?.code).toBe('DENIED');
    expect(body.errors[0]?.message).toContain('registries.ghcr.io.repositories.deny');
    expect(served.asked).toHaveLength(0);
  });

  it('passes the owner pipeline\'s error on as an error status, which the peer client reports as owner unavailable', async () => {
    const served = await listener(() => {
      throw new NotFound('blob', 'blob unknown to registry');
    });
    const err: unknown = await served.client.fetchBlob(served.address, 'ghcr.io', 'org/app', digest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OwnerUnavailable);
    expect(String(err)).toMatch(/answered 404/);
  });

  it('cuts the connection when the owner\'s body fails mid-way, so the follower sees an error, not a short blob', async () => {
    const served = await listener(() => {
      const body = new PassThrough();
      body.write(Buffer.alloc(1000, 1));
      setImmediate(() => body.destroy(new Error('upstream cut')));
      return { status: 200, length: 5000, contentRange: undefined, body, source: 'upstream' };
    });
    const blob = await served.client.fetchBlob(served.address, 'ghcr.io', 'org/app', digest);
    expect(blob.size).toBe(5000);
    let received = 0;
    const read = (async () => {
      for await (const chunk of blob.body) received += (chunk as Buffer).length;
    })();
    await expect(read).rejects.toThrow();
    expect(received).toBeLessThan(5000);
  });

  it('serves and fetches over a unix socket (the workers of serve --workers)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-peer-'));
    const clock = new FakeClock();
    const peer = new PeerListener({
      secret,
      clock,
      logger: createLogger('silent'),
      knownRegistry: () => true,
      fetchVerdict: () => undefined,
      blobs: () => Promise.resolve(stream(Buffer.from('over a socket'))),
      fills: () => Promise.resolve({ kind: 'uncached' }),
      stored: () => false,
      sendBuffers: new SendBuffers(),
    });
    const address = await peer.listen({ path: path.join(dir, 'worker-0.sock') });
    expect(address).toBe(`unix:${path.join(dir, 'worker-0.sock')}`);
    const client = new PeerClient({ secret, clock, headersTimeoutMs: 5_000, bodyTimeoutMs: 5_000 });
    closers.push(async () => {
      await client.close();
      await peer.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const blob = await client.fetchBlob(address, 'ghcr.io', 'org/app', digest);
    const parts: Buffer[] = [];
    for await (const chunk of blob.body) parts.push(chunk as Buffer);
    expect(Buffer.concat(parts).toString()).toBe('over a socket');
  });

  it('reports a peer that refuses connections as owner unavailable', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer();
      probe.listen(0, '127.0.0.1', () => {
        const address = probe.address();
        probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
      });
    });
    const client = new PeerClient({ secret, clock: new FakeClock(), headersTimeoutMs: 1_000, bodyTimeoutMs: 1_000 });
    closers.push(() => client.close());
    await expect(client.fetchBlob(`127.0.0.1:${port}`, 'ghcr.io', 'org/app', digest)).rejects.toBeInstanceOf(OwnerUnavailable);
  });
});
