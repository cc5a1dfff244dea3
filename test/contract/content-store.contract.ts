import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ContentStore, keepsLinks, listAll } from '../../src/storage/content-store.js';

/** What a suite needs from one implementation: the store (empty) and how to tear it down. */
export interface ContractSubject {
  store: ContentStore;
  teardown?: () => Promise<void>;
}

export interface ContractOptions {
  /** Size of the large-object test (default 64 MiB: enough for a multipart upload). */
  largeSize?: number;
  /** Per-test timeout for the large-object tests. */
  largeTimeoutMs?: number;
  /** Moves the store's clock on, when the store takes time from an injected clock. */
  advance?: (ms: number) => void;
  /**
   * The store publishes by replacing what is at a digest's place (the filesystem store's rename), not
   * first-writer-wins (S3's conditional put): racing writers may each report `created`.
   */
  replaces?: boolean;
}

function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

async function readAll(stream: Readable | undefined): Promise<Buffer> {
  if (stream === undefined) throw new Error('expected a stream, the object is missing');
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function hashStream(stream: Readable | undefined): Promise<{ digest: string; size: number }> {
  if (stream === undefined) throw new Error('expected a stream, the object is missing');
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/**
 * The contract every ContentStore implementation passes (after distribution's storage-driver test
 * suites): put/get/range/stat/delete/list, racing writers, no partial object ever visible, a large object.
 * Each test removes what it stored; after each test the store must be empty again.
 */
export function runContentStoreContract(name: string, open: () => Promise<ContractSubject>, options: ContractOptions = {}): void {
  const largeSize = options.largeSize ?? 64 * 1024 * 1024;
  const largeTimeout = options.largeTimeoutMs ?? 60_000;

  describe(`ContentStore contract: ${name}`, () => {
    let subject: ContractSubject;
    let staging: string;
    let store: ContentStore;

    const stage = async (bytes: Buffer): Promise<string> => {
      const file = path.join(staging, `${randomBytes(8).toString('hex')}.staged`);
      await writeFile(file, bytes);
      return file;
    };

    beforeAll(async () => {
      subject = await open();
      store = subject.store;
      staging = await mkdtemp(path.join(tmpdir(), 'pullgate-contract-'));
    });

    afterAll(async () => {
      await rm(staging, { recursive: true, force: true });
      await subject.teardown?.();
    });

    afterEach(async () => {
      const left: string[] = [];
      for await (const item of listAll(store)) left.push(item.digest);
      for (const digest of left) await store.delete(digest);
      expect(left, 'a test left objects behind').toEqual([]);
    });

    it('stores bytes and reads them back whole, with stat', async () => {
      const bytes = randomBytes(1000);
      const digest = digestOf(bytes);
      expect(await store.putBytes(digest, bytes)).toBe('created');
      expect(await readAll(await store.openRead(digest))).toEqual(bytes);
      const info = await store.stat(digest);
      expect(info?.digest).toBe(digest);
      expect(info?.size).toBe(1000);
      expect(info?.modifiedAt).toBeGreaterThan(0);
      await store.delete(digest);
    });

    it('stores a staged file: left in place without move, taken or left with move', async () => {
      const bytes = randomBytes(5000);
      const digest = digestOf(bytes);
      const file = await stage(bytes);
      expect(await store.putFile(digest, file, bytes.length)).toBe('created');
      expect(existsSync(file)).toBe(true);
      expect(await readAll(await store.openRead(digest))).toEqual(bytes);
      await store.delete(digest);
      expect(await store.putFile(digest, file, bytes.length, { move: true })).toBe('created');
      expect(await readAll(await store.openRead(digest))).toEqual(bytes);
      await store.delete(digest);
    });

    it('reads inclusive byte ranges: first byte, a middle span, the last byte, the whole', async () => {
      const bytes = randomBytes(4096);
      const digest = digestOf(bytes);
      await store.putBytes(digest, bytes);
      expect(await readAll(await store.openRead(digest, { start: 0, end: 0 }))).toEqual(bytes.subarray(0, 1));
      expect(await readAll(await store.openRead(digest, { start: 100, end: 2099 }))).toEqual(bytes.subarray(100, 2100));
      expect(await readAll(await store.openRead(digest, { start: 4095, end: 4095 }))).toEqual(bytes.subarray(4095));
      expect(await readAll(await store.openRead(digest, { start: 0, end: 4095 }))).toEqual(bytes);
      await store.delete(digest);
    });

    it('stores and reads an empty object', async () => {
      const empty = Buffer.alloc(0);
      const digest = digestOf(empty);
      expect(await store.putFile(digest, await stage(empty), 0)).toBe('created');
      expect((await store.stat(digest))?.size).toBe(0);
      expect(await readAll(await store.openRead(digest))).toEqual(empty);
      await store.delete(digest);
    });

    it('answers undefined for an unknown digest and deletes one without complaint', async () => {
      const digest = digestOf(randomBytes(16));
      expect(await store.stat(digest)).toBeUndefined();
      expect(await store.openRead(digest)).toBeUndefined();
      expect(await store.openRead(digest, { start: 0, end: 0 })).toBeUndefined();
      await store.delete(digest);
    });

    it('deletes: the object is gone from stat, reads and listings', async () => {
      const bytes = randomBytes(300);
      const digest = digestOf(bytes);
      await store.putBytes(digest, bytes);
      await store.delete(digest);
      expect(await store.stat(digest)).toBeUndefined();
      expect(await store.openRead(digest)).toBeUndefined();
      expect((await store.list()).items.map((item) => item.digest)).not.toContain(digest);
    });

    it('refresh renews the modification time of a stored object and reports a missing one', async () => {
      const bytes = randomBytes(64);
      const digest = digestOf(bytes);
      await store.putBytes(digest, bytes);
      const before = (await store.stat(digest))?.modifiedAt ?? Infinity;
      options.advance?.(60_000);
      expect(await store.refresh(digest)).toBe(true);
      const after = (await store.stat(digest))?.modifiedAt ?? -Infinity;
      expect(after).toBeGreaterThanOrEqual(before);
      if (options.advance !== undefined) expect(after).toBeGreaterThan(before);
      expect(await readAll(await store.openRead(digest))).toEqual(bytes);
      expect(await store.refresh(digestOf(randomBytes(8)))).toBe(false);
      await store.delete(digest);
    });

    it('lists in digest order, page by page, from a cursor', async () => {
      const objects = Array.from({ length: 7 }, (_, i) => randomBytes(10 + i));
      const digests = objects.map(digestOf);
      for (const [i, bytes] of objects.entries()) await store.putBytes(digests[i] ?? '', bytes);
      const sorted = [...digests].sort();
      const pages: string[][] = [];
      let after: string | undefined;
      do {
        const page = await store.list({ after, limit: 3 });
        pages.push(page.items.map((item) => item.digest));
        after = page.next;
      } while (after !== undefined && pages.length < 10);
      expect(pages.map((page) => page.length)).toEqual([3, 3, 1]);
      expect(pages.flat()).toEqual(sorted);
      const sizes = new Map(objects.map((bytes, i) => [digests[i], bytes.length]));
      for await (const item of listAll(store, 2)) expect(item.size).toBe(sizes.get(item.digest));
      const third = sorted[2] ?? '';
      expect((await store.list({ after: third })).items.map((item) => item.digest)).toEqual(sorted.slice(3));
      for (const digest of digests) await store.delete(digest);
    });

    it('a second put of a stored digest reports exists and leaves the object as it was', async () => {
      const bytes = randomBytes(2048);
      const digest = digestOf(bytes);
      expect(await store.putBytes(digest, bytes)).toBe('created');
      expect(await store.putBytes(digest, bytes)).toBe('exists');
      expect(await store.putFile(digest, await stage(bytes), bytes.length, { move: true })).toBe('exists');
      expect(await readAll(await store.openRead(digest))).toEqual(bytes);
      await store.delete(digest);
    });

    it('racing writers of one digest: one creates it (or, in a store that replaces, at least one), one intact object remains', async () => {
      const bytes = randomBytes(256 * 1024);
      const digest = digestOf(bytes);
      const files = await Promise.all(Array.from({ length: 6 }, () => stage(bytes)));
      const outcomes = await Promise.all([
        ...files.map((file, i) => store.putFile(digest, file, bytes.length, { move: i % 2 === 0 })),
        store.putBytes(digest, bytes),
        store.putBytes(digest, bytes),
      ]);
      const created = outcomes.filter((outcome) => outcome === 'created').length;
      if (options.replaces === true) expect(created).toBeGreaterThanOrEqual(1);
      else expect(created).toBe(1);
      expect(outcomes.filter((outcome) => outcome === 'exists')).toHaveLength(outcomes.length - created);
      expect(await hashStream(await store.openRead(digest))).toEqual({ digest, size: bytes.length });
      expect((await store.list()).items.map((item) => item.digest)).toEqual([digest]);
      await store.delete(digest);
    });

    it(
      'never shows a partial object while a large put is in flight',
      async () => {
        const bytes = randomBytes(largeSize);
        const digest = digestOf(bytes);
        const file = await stage(bytes);
        const state = { done: false };
        const put = store.putFile(digest, file, bytes.length, { move: true }).finally(() => {
          state.done = true;
        });
        const seen: (number | undefined)[] = [];
        while (!state.done) {
          const info = await store.stat(digest);
          seen.push(info?.size);
          const listed = (await store.list()).items.find((item) => item.digest === digest);
          if (listed !== undefined) expect(listed.size).toBe(largeSize);
          await new Promise((resolve) => setImmediate(resolve));
        }
        expect(await put).toBe('created');
        expect(seen.every((size) => size === undefined || size === largeSize)).toBe(true);
        expect((await store.stat(digest))?.size).toBe(largeSize);
        await store.delete(digest);
      },
      largeTimeout,
    );

    it(
      `stores a large object (${largeSize} bytes) and reads ranges across part boundaries`,
      async () => {
        const bytes = randomBytes(largeSize);
        const digest = digestOf(bytes);
        expect(await store.putFile(digest, await stage(bytes), bytes.length)).toBe('created');
        expect(await hashStream(await store.openRead(digest))).toEqual({ digest, size: largeSize });
        const boundary = Math.floor(largeSize / 4);
        const span = { start: boundary - 1000, end: boundary + 999 };
        expect(await readAll(await store.openRead(digest, span))).toEqual(bytes.subarray(span.start, span.end + 1));
        await store.delete(digest);
      },
      largeTimeout,
    );

    it('keeps repository links when it is a shared store (S3, memory)', async (context) => {
      if (!keepsLinks(store)) {
        process.stdout.write(`contract ${name}: no repository links (a local store; the index keeps them)\n`);
        context.skip();
        return;
      }
      const digest = digestOf(randomBytes(32));
      expect(await store.isLinked('ghcr.io', 'org/app', digest)).toBe(false);
      await store.link('ghcr.io', 'org/app', digest);
      expect(await store.isLinked('ghcr.io', 'org/app', digest)).toBe(true);
      expect(await store.isLinked('ghcr.io', 'org/other', digest)).toBe(false);
      expect(await store.isLinked('127.0.0.1:5000', 'org/app', digest)).toBe(false);
      expect((await store.list()).items).toEqual([]);
    });

    it('refuses a digest that could escape its place', async () => {
      await expect(store.putBytes('sha256:../../etc/passwd', Buffer.from('x'))).rejects.toThrow(/not a digest/);
      await expect(store.stat('sha256:a/b')).rejects.toThrow(/not a digest/);
    });
  });
}
