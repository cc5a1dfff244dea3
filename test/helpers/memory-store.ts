import { readFile, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Clock } from '../../src/core/deps.js';
import { type ByteRange, type ContentInfo, type ContentPage, type ContentStore, DEFAULT_PAGE, type LinkStore, type PutOutcome, splitDigest } from '../../src/storage/content-store.js';

/** A rejection for a malformed digest (as the other stores give), else undefined. */
function refuse(digest: string): Promise<never> | undefined {
  try {
    splitDigest(digest);
    return undefined;
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

/** Content in a Map, for fast tests; the same contract as the filesystem and S3 stores. */
export class MemoryContentStore implements ContentStore, LinkStore {
  private readonly objects = new Map<string, { bytes: Buffer; modifiedAt: number }>();
  private readonly links = new Set<string>();

  constructor(private readonly clock: Clock) {}

  get location(): string {
    return 'memory';
  }

  async putFile(digest: string, file: string, _size: number, options: { move?: boolean } = {}): Promise<PutOutcome> {
    const bytes = await readFile(file);
    if (options.move === true) await rm(file, { force: true });
    return this.putBytes(digest, bytes);
  }

  putBytes(digest: string, bytes: Buffer): Promise<PutOutcome> {
    const invalid = refuse(digest);
    if (invalid !== undefined) return invalid;
    if (this.objects.has(digest)) return Promise.resolve('exists');
    this.objects.set(digest, { bytes: Buffer.from(bytes), modifiedAt: this.clock.now() });
    return Promise.resolve('created');
  }

  openRead(digest: string, range?: ByteRange): Promise<Readable | undefined> {
    const invalid = refuse(digest);
    if (invalid !== undefined) return invalid;
    const object = this.objects.get(digest);
    if (object === undefined) return Promise.resolve(undefined);
    const bytes = range === undefined ? object.bytes : object.bytes.subarray(range.start, range.end + 1);
    return Promise.resolve(Readable.from([bytes], { objectMode: false }));
  }

  stat(digest: string): Promise<ContentInfo | undefined> {
    const invalid = refuse(digest);
    if (invalid !== undefined) return invalid;
    const object = this.objects.get(digest);
    return Promise.resolve(object === undefined ? undefined : { digest, size: object.bytes.length, modifiedAt: object.modifiedAt });
  }

  refresh(digest: string): Promise<boolean> {
    const invalid = refuse(digest);
    if (invalid !== undefined) return invalid;
    const object = this.objects.get(digest);
    if (object !== undefined) object.modifiedAt = this.clock.now();
    return Promise.resolve(object !== undefined);
  }

  delete(digest: string): Promise<void> {
    const invalid = refuse(digest);
    if (invalid !== undefined) return invalid;
    this.objects.delete(digest);
    return Promise.resolve();
  }

  isLinked(registry: string, repository: string, digest: string): Promise<boolean> {
    return Promise.resolve(this.links.has(`${registry}\n${repository}\n${digest}`));
  }

  link(registry: string, repository: string, digest: string): Promise<void> {
    this.links.add(`${registry}\n${repository}\n${digest}`);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  list(options: { after?: string; limit?: number } = {}): Promise<ContentPage> {
    const limit = Math.max(1, options.limit ?? DEFAULT_PAGE);
    const after = options.after ?? '';
    const digests = [...this.objects.keys()].filter((digest) => digest > after).sort();
    const items = digests.slice(0, limit).map((digest) => {
      const object = this.objects.get(digest);
      return { digest, size: object?.bytes.length ?? 0, modifiedAt: object?.modifiedAt ?? 0 };
    });
    return Promise.resolve({ items, next: digests.length > limit ? items[items.length - 1]?.digest : undefined });
  }
}
