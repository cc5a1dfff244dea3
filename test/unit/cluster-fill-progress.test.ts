import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { BlobFill } from '../../src/cache/blob-fill.js';
import { RemoteFill } from '../../src/cache/remote-fill.js';
import { TailReader } from '../../src/cache/tail-reader.js';
import { ClusterNode } from '../../src/cluster/cluster-node.js';
import { followReports } from '../../src/cluster/fill-follower.js';
import { encodeProgress, ProgressLines } from '../../src/cluster/fill-progress.js';
import { PeerClient } from '../../src/cluster/peer-client.js';
import { PEER_FILL_PREFIX, PeerListener, peerBlobPath } from '../../src/cluster/peer-listener.js';
import { ownerOf } from '../../src/cluster/rendezvous.js';
import { createLogger } from '../../src/core/deps.js';
import { OwnerUnavailable } from '../../src/core/errors.js';
import { SendBuffers } from '../../src/http/send-chunks.js';
import type { OwnedFill } from '../../src/proxy/types.js';
import { FakeClock } from '../helpers/fake-clock.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const secret = 'a-cluster-secret-of-32-characters';
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-fill-progress-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Reads a TailReader to its end, counting what it handed out so far in `seen` (for checks while it waits). */
async function drain(reader: TailReader, scratchSize: number, seen: { bytes: number } = { bytes: 0 }): Promise<Buffer> {
  const scratch = Buffer.alloc(scratchSize);
  const parts: Buffer[] = [];
  try {
    for (;;) {
      const chunk = await reader.next(scratch);
      if (chunk === null) break;
      seen.bytes += chunk.length;
      parts.push(Buffer.from(chunk));
    }
  } finally {
    reader.close();
  }
  return Buffer.concat(parts);
}

/** The value, or the error a promise rejected with (observed at once, so no rejection goes unhandled). */
function outcome<T>(pending: Promise<T>): Promise<T | Error> {
  return pending.catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
}

async function ticks(count = 20): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Waits (bounded, no sleeps) until `condition` holds: file reads finish in the thread pool meanwhile. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; !condition(); i++) {
    if (i > 100_000) throw new Error(`never: ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Feeds `bytes` to a fill's upstream body in 64 KiB chunks, yielding between them. */
async function feed(body: PassThrough, bytes: Buffer): Promise<void> {
  for (let at = 0; at < bytes.length; at += 64 * KiB) {
    body.write(bytes.subarray(at, at + 64 * KiB));
    await new Promise((resolve) => setImmediate(resolve));
  }
  body.end();
}

describe('fill progress lines', () => {
  it('round-trips every event across chunk boundaries and refuses malformed ones', () => {
    const lines = new ProgressLines();
    const text = [
      encodeProgress({ kind: 'file', path: '/tmp/x', size: 10 }),
      encodeProgress({ kind: 'bytes', count: 4 }),
      encodeProgress({ kind: 'verified', size: 10 }),
      encodeProgress({ kind: 'failed', reason: 'cut' }),
    ].join('');
    const events = [...lines.push(text.slice(0, 7)), ...lines.push(text.slice(7, 40)), ...lines.push(text.slice(40))];
    expect(events).toEqual([
      { kind: 'file', path: '/tmp/x', size: 10 },
      { kind: 'bytes', count: 4 },
      { kind: 'verified', size: 10 },
      { kind: 'failed', reason: 'cut' },
    ]);
    expect(() => new ProgressLines().push('{"kind":"bytes","count":-1}\n')).toThrow(/malformed/);
    expect(() => new ProgressLines().push('{"kind":"file"}\n')).toThrow(/malformed/);
    expect(() => new ProgressLines().push('not json\n')).toThrow();
  });
});

describe('RemoteFill followed by a TailReader (fake progress)', () => {
  it('hands out bytes as the owner reports them in its file, and the last byte of a body or a range only once verified', async () => {
    const dir = tempDir();
    const bytes = randomBytes(3 * MiB + 77);
    const file = path.join(dir, 'temp');
    writeFileSync(file, bytes.subarray(0, MiB));
    const fill = new RemoteFill(sha256(bytes), file, false, bytes.length, 'reg.example', 'team/app');
    const whole = { bytes: 0 };
    const ranged = { bytes: 0 };
    const wholeRead = drain(new TailReader(fill, 0, undefined, () => undefined), 256 * KiB, whole);
    // A range at the very end, smaller than one scratch buffer: nothing of it goes out before verification.
    const rangeRead = drain(new TailReader(fill, bytes.length - 1000, bytes.length - 1, () => undefined), 64 * KiB, ranged);
    fill.fileHas(MiB);
    await until(() => whole.bytes === MiB, 'the first MiB read');
    await ticks();
    expect(whole.bytes).toBe(MiB);
    appendFileSync(file, bytes.subarray(MiB));
    fill.fileHas(bytes.length);
    await until(() => whole.bytes === bytes.length - 1, 'all but the last byte read');
    await ticks();
    // Every byte is in the file, but the owner has not verified the digest yet.
    expect(whole.bytes).toBe(bytes.length - 1);
    expect(ranged.bytes).toBe(0);
    fill.verify(bytes.length);
    expect((await wholeRead).equals(bytes)).toBe(true);
    expect((await rangeRead).equals(bytes.subarray(bytes.length - 1000))).toBe(true);
    expect(fill.readers).toBe(0);
  });

  it('fails its readers before their last byte when the owner dies mid-fill (its reports end without verified)', async () => {
    const dir = tempDir();
    const bytes = randomBytes(2 * MiB);
    mkdirSync(path.join(dir, 'tmp'));
    const file = path.join(dir, 'tmp', 'sha256-abc.0123456789ab.follower-0123456789ab');
    writeFileSync(file, bytes);
    const reports = new PassThrough();
    const answer = followReports(reports, 'unix:/owner.sock', sha256(bytes), 'reg.example', 'team/app');
    reports.write(encodeProgress({ kind: 'file', path: file, size: bytes.length }));
    const followed = await answer;
    if (followed.kind !== 'fill') throw new Error(`expected a fill, got ${followed.kind}`);
    // The follower's link is removed once open; the descriptor keeps the file.
    expect(readdirSync(path.join(dir, 'tmp'))).toEqual([]);
    const seen = { bytes: 0 };
    const ranged = { bytes: 0 };
    const wholeRead = outcome(drain(new TailReader(followed.fill, 0, undefined, () => undefined), 128 * KiB, seen));
    const rangeRead = outcome(drain(new TailReader(followed.fill, 10, 1000, () => undefined), 64 * KiB, ranged));
    reports.write(encodeProgress({ kind: 'bytes', count: bytes.length }));
    await until(() => seen.bytes === bytes.length - 1, 'all but the last byte read');
    await ticks();
    expect(seen.bytes).toBe(bytes.length - 1);
    reports.destroy(new Error('socket closed'));
    expect(String(await wholeRead)).toMatch(/worker filling it/);
    expect(String(await rangeRead)).toMatch(/worker filling it/);
    expect(seen.bytes).toBe(bytes.length - 1);
    expect(ranged.bytes).toBe(0);
    expect(followed.fill.state).toBe('failed');
  });

  it('rejects with OwnerUnavailable (not down) when the file it is told of does not open, and (down) when the reports end before a word', async () => {
    const missing = new PassThrough();
    const answer = followReports(missing, 'unix:/owner.sock', `sha256:${'a'.repeat(64)}`, 'reg.example', 'team/app');
    missing.end(encodeProgress({ kind: 'file', path: '/nonexistent/pullgate/tmp/x.follower-0123456789ab', size: 5 }));
    const err = await answer.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OwnerUnavailable);
    expect((err as OwnerUnavailable).down).toBe(false);
    // A name that is not a follower's link is neither opened nor removed, whatever the peer says.
    const dir = tempDir();
    const precious = path.join(dir, 'precious');
    writeFileSync(precious, 'keep me');
    const odd = new PassThrough();
    const refused = followReports(odd, 'unix:/owner.sock', `sha256:${'a'.repeat(64)}`, 'reg.example', 'team/app');
    odd.end(encodeProgress({ kind: 'file', path: precious, size: 7 }));
    expect(await refused.catch((e: unknown) => e)).toBeInstanceOf(OwnerUnavailable);
    expect(readdirSync(dir)).toEqual(['precious']);
    const silent = new PassThrough();
    const cut = followReports(silent, 'unix:/owner.sock', `sha256:${'a'.repeat(64)}`, 'reg.example', 'team/app');
    silent.end();
    const down = await cut.catch((e: unknown) => e);
    expect(down).toBeInstanceOf(OwnerUnavailable);
    expect((down as OwnerUnavailable).down).toBe(true);
  });
});

interface Owner {
  address: string;
  client: PeerClient;
  tmp: string;
  asked: string[];
}

/** A PeerListener on a unix socket whose fill endpoint answers `owned` (a worker that owns digests). */
async function owner(owned: () => OwnedFill, stored = false): Promise<Owner> {
  const dir = tempDir();
  const tmp = path.join(dir, 'tmp');
  rmSync(tmp, { recursive: true, force: true });
  const clock = new FakeClock();
  const asked: string[] = [];
  const peer = new PeerListener({
    secret,
    clock,
    logger: createLogger('silent'),
    knownRegistry: () => true,
    fetchVerdict: (route) => (route.repository.startsWith('org/secret') ? 'registries.reg.example.repositories.deny has "org/secret/**"' : undefined),
    blobs: () => Promise.reject(new Error('the blob endpoint is not for workers of one host')),
    fills: (route) => {
      asked.push(route.repository);
      return Promise.resolve(owned());
    },
    stored: () => stored,
    sendBuffers: new SendBuffers(),
  });
  const address = await peer.listen({ path: path.join(dir, 'worker-0.sock') });
  const client = new PeerClient({ secret, clock, headersTimeoutMs: 5_000, bodyTimeoutMs: 5_000 });
  cleanups.push(async () => {
    await client.close();
    await peer.close();
  });
  return { address, client, tmp: dir, asked };
}

function ownerFill(dir: string, bytes: Buffer, digest = sha256(bytes)): { fill: BlobFill; body: PassThrough; run: Promise<void> } {
  mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const fill = new BlobFill(digest, path.join(dir, 'tmp', 'owner.tmp'), bytes.length, 'reg.example', 'team/app');
  const body = new PassThrough();
  return { fill, body, run: fill.run(body) };
}

describe('the fill endpoint between two workers', () => {
  it('lets a follower read the owner\'s fill from its temp file, whole, with the owner\'s verification', async () => {
    const bytes = randomBytes(5 * MiB + 3);
    const dir = tempDir();
    const { fill, body, run } = ownerFill(dir, bytes);
    const served = await owner(() => ({ kind: 'fill', fill }));
    const reports = await served.client.followFill(served.address, 'reg.example', 'team/app', sha256(bytes));
    const answer = await followReports(reports, served.address, sha256(bytes), 'reg.example', 'team/app');
    if (answer.kind !== 'fill') throw new Error(`expected a fill, got ${answer.kind}`);
    const readers = [drain(new TailReader(answer.fill, 0, undefined, () => undefined), 256 * KiB), drain(new TailReader(answer.fill, 4 * MiB, 5 * MiB, () => undefined), 64 * KiB)];
    await feed(body, bytes);
    await run;
    const [whole, range] = await Promise.all(readers);
    expect(whole?.equals(bytes)).toBe(true);
    expect(range?.equals(bytes.subarray(4 * MiB, 5 * MiB + 1))).toBe(true);
    expect(answer.fill.state).toBe('verified');
    // Only the owner's own temp file is left: the follower removed its link once it had it open.
    expect(readdirSync(path.join(dir, 'tmp'))).toEqual(['owner.tmp']);
    expect(served.asked).toEqual(['team/app']);
  });

  it('cuts the follower before its last byte when the owner\'s digest does not match', async () => {
    const bytes = randomBytes(3 * MiB);
    const dir = tempDir();
    const { fill, body, run } = ownerFill(dir, bytes, `sha256:${'0'.repeat(64)}`);
    const ran = outcome(run);
    const served = await owner(() => ({ kind: 'fill', fill }));
    const reports = await served.client.followFill(served.address, 'reg.example', 'team/app', `sha256:${'0'.repeat(64)}`);
    const answer = await followReports(reports, served.address, `sha256:${'0'.repeat(64)}`, 'reg.example', 'team/app');
    if (answer.kind !== 'fill') throw new Error(`expected a fill, got ${answer.kind}`);
    const seen = { bytes: 0 };
    const read = drain(new TailReader(answer.fill, 0, undefined, () => undefined), 256 * KiB, seen);
    const readFailure = outcome(read);
    await feed(body, bytes);
    expect(await ran).toBeInstanceOf(Error);
    expect(String(await readFailure)).toMatch(/failed/);
    expect(seen.bytes).toBeLessThan(bytes.length);
  });

  it('answers uncached for a fill that is not written to disk, cached for a stored blob, and refuses unsigned or denied requests', async () => {
    const bytes = randomBytes(100 * KiB);
    const memoryOnly = new BlobFill(sha256(bytes), undefined, bytes.length, 'reg.example', 'team/app');
    const served = await owner(() => ({ kind: 'fill', fill: memoryOnly }));
    const uncached = await served.client.followFill(served.address, 'reg.example', 'team/app', sha256(bytes));
    expect(await followReports(uncached, served.address, sha256(bytes), 'reg.example', 'team/app')).toEqual({ kind: 'uncached' });
    const storedOwner = await owner(() => ({ kind: 'cached' }), true);
    const cached = await storedOwner.client.followFill(storedOwner.address, 'reg.example', 'team/app', sha256(bytes));
    expect(await followReports(cached, storedOwner.address, sha256(bytes), 'reg.example', 'team/app')).toEqual({ kind: 'cached' });
    // Same signature and fetch policy as the blob endpoint.
    const socketPath = served.address.slice('unix:'.length);
    const dispatcher = new Agent({ connect: { socketPath } });
    cleanups.push(() => dispatcher.close());
    const unsigned = await request(`http://localhost${peerBlobPath('reg.example', 'team/app', sha256(bytes), PEER_FILL_PREFIX)}`, { dispatcher });
    expect(unsigned.statusCode).toBe(401);
    await unsigned.body.dump();
    const denied = await served.client.followFill(served.address, 'reg.example', 'org/secret/app', sha256(bytes)).catch((err: unknown) => err);
    expect(denied).toBeInstanceOf(OwnerUnavailable);
    expect((denied as Error).message).toMatch(/403/);
    expect(served.asked).toEqual(['team/app']);
  });
});

describe('a worker whose owner on this host cannot share its fill on disk', () => {
  async function pair(fills: () => OwnedFill): Promise<{ follower: ClusterNode; digest: string; bytes: Buffer; blobAsks: () => number }> {
    const dir = tempDir();
    const sockets = [path.join(dir, 'worker-0.sock'), path.join(dir, 'worker-1.sock')].map((socket) => `unix:${socket}`);
    const bytes = randomBytes(300 * KiB);
    // A digest-shaped key owned by worker 0 (rendezvous hashing over the two sockets).
    let digest = '';
    for (let i = 0; digest === '' || ownerOf(digest, sockets) !== sockets[0]; i++) digest = `sha256:${createHash('sha256').update(`key-${i}`).digest('hex')}`;
    let asks = 0;
    const nodes = sockets.map((self) => new ClusterNode({ listen: { host: '127.0.0.1', port: 0 }, peers: sockets.map((address) => ({ kind: 'static', address })), secret, self }, { clock: new FakeClock(), logger: createLogger('silent') }, { timeoutMs: 5_000 }));
    for (const node of nodes) {
      cleanups.push(() => node.close());
      await node.start(
        {
          blobs: () => {
            asks++;
            const body = new PassThrough();
            body.end(bytes);
            return Promise.resolve({ status: 200, length: bytes.length, contentRange: undefined, body, source: 'cache' });
          },
          fills: () => Promise.resolve(fills()),
          stored: () => false,
        },
        { knownRegistry: () => true, fetchVerdict: () => undefined },
        new SendBuffers(),
      );
    }
    const follower = nodes[1];
    if (follower === undefined) throw new Error('no follower');
    return { follower, digest, bytes, blobAsks: () => asks };
  }

  async function read(body: NodeJS.ReadableStream): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of body) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  }

  it('falls back to the byte stream when the owner\'s fill is not written to disk (disk full: memory only)', async () => {
    const { follower, digest, bytes, blobAsks } = await pair(() => ({ kind: 'uncached' }));
    const answer = await follower.fromOwner('reg.example', 'team/app', digest);
    if (answer?.kind !== 'bytes') throw new Error(`expected bytes, got ${answer?.kind ?? 'nothing'}`);
    expect((await read(answer.blob.body)).equals(bytes)).toBe(true);
    expect(blobAsks()).toBe(1);
  });

  it('falls back to the byte stream when the owner says stored but this worker\'s index does not have it', async () => {
    const { follower, digest, bytes, blobAsks } = await pair(() => ({ kind: 'cached' }));
    const answer = await follower.fromOwner('reg.example', 'team/app', digest);
    if (answer?.kind !== 'bytes') throw new Error(`expected bytes, got ${answer?.kind ?? 'nothing'}`);
    expect((await read(answer.blob.body)).equals(bytes)).toBe(true);
    expect(blobAsks()).toBe(1);
  });
});
