import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlobRow, ContentIndex } from '../../src/storage/content-index.js';

async function collect(rows: AsyncIterable<BlobRow>): Promise<BlobRow[]> {
  const out: BlobRow[] = [];
  for await (const row of rows) out.push(row);
  return out;
}

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const C = `sha256:${'c'.repeat(64)}`;

/** The contract every ContentIndex implementation passes: rows, access times, LRU order, links, tags. */
export function runContentIndexContract(name: string, open: () => ContentIndex): void {
  describe(`ContentIndex contract: ${name}`, () => {
    let index: ContentIndex;
    beforeEach(() => {
      index = open();
    });
    afterEach(async () => {
      await index.close();
    });

    it('records a blob with its origin link; a second record keeps the size and moves the access time on', async () => {
      await index.addBlob({ digest: A, size: 10, kind: 'blob', media_type: null, created_at: 1000 }, { registry: 'r', repository: 'x/y' });
      expect(await index.blob(A)).toEqual({ digest: A, size: 10, kind: 'blob', media_type: null, created_at: 1000, last_access: 1000 });
      expect(await index.isLinked('r', 'x/y', A)).toBe(true);
      expect(await index.isLinked('r', 'other', A)).toBe(false);
      await index.addBlob({ digest: A, size: 99, kind: 'blob', media_type: 'application/x', created_at: 2000 });
      const row = await index.blob(A);
      expect(row?.size).toBe(10);
      expect(row?.last_access).toBe(2000);
      expect(row?.media_type).toBe('application/x');
      expect(await index.blob(B)).toBeUndefined();
    });

    it('buffers touches, writes them on flush, and never moves an access time backwards', async () => {
      await index.addBlob({ digest: A, size: 1, kind: 'blob', media_type: null, created_at: 1000 });
      index.touch(A, 5000);
      await index.flushTouches();
      expect((await index.blob(A))?.last_access).toBe(5000);
      index.touch(A, 3000);
      await index.flushTouches();
      expect((await index.blob(A))?.last_access).toBe(5000);
    });

    it('iterates least recently used first, or by digest, and totals sizes', async () => {
      await index.addBlob({ digest: C, size: 3, kind: 'blob', media_type: null, created_at: 1000 });
      await index.addBlob({ digest: A, size: 1, kind: 'manifest', media_type: 'm', created_at: 2000 });
      await index.addBlob({ digest: B, size: 2, kind: 'blob', media_type: null, created_at: 3000 });
      index.touch(C, 9000);
      expect((await collect(index.blobs('lru'))).map((row) => row.digest)).toEqual([A, B, C]);
      expect((await collect(index.blobs('digest'))).map((row) => row.digest)).toEqual([A, B, C]);
      expect((await collect(index.blobs('mru'))).map((row) => row.digest)).toEqual([C, B, A]);
      expect(await index.totals()).toEqual({ bytes: 6, count: 3 });
    });

    it('summarises counts by kind, bytes and the range of access times, including buffered touches', async () => {
      expect(await index.summary()).toEqual({ blobs: 0, manifests: 0, bytes: 0, oldestAccess: undefined, newestAccess: undefined });
      await index.addBlob({ digest: C, size: 3, kind: 'blob', media_type: null, created_at: 1000 });
      await index.addBlob({ digest: A, size: 1, kind: 'manifest', media_type: 'm', created_at: 2000 });
      await index.addBlob({ digest: B, size: 2, kind: 'blob', media_type: null, created_at: 3000 });
      index.touch(C, 9000);
      expect(await index.summary()).toEqual({ blobs: 2, manifests: 1, bytes: 6, oldestAccess: 2000, newestAccess: 9000 });
    });

    it('streams more rows than a page in every order, with equal access times, and may delete behind the listing', async () => {
      const count = 2_345;
      const digest = (i: number): string => `sha256:${i.toString(16).padStart(64, '0')}`;
      // Three rows share each access time, so the order needs its tie-breakers (created_at, then digest).
      for (let i = 0; i < count; i++) await index.addBlob({ digest: digest(i), size: 1, kind: 'blob', media_type: null, created_at: 1_000 + Math.floor(i / 3) });
      const lru = (await collect(index.blobs('lru'))).map((row) => row.digest);
      expect(lru).toEqual(Array.from({ length: count }, (_, i) => digest(i)));
      expect((await collect(index.blobs('mru'))).map((row) => row.digest)).toEqual([...lru].reverse());
      let seen = 0;
      for await (const row of index.blobs('digest')) {
        seen++;
        if (seen % 2 === 0) await index.deleteBlob(row.digest);
      }
      expect(seen).toBe(count);
      expect((await index.totals()).count).toBe(count - Math.floor(count / 2));
    });

    it('deleting a blob forgets its links; deleting while iterating is safe', async () => {
      await index.addBlob({ digest: A, size: 1, kind: 'blob', media_type: null, created_at: 1 }, { registry: 'r', repository: 'a' });
      await index.addBlob({ digest: B, size: 1, kind: 'blob', media_type: null, created_at: 2 });
      await index.link('r', 'b', A);
      expect(await index.linksOf(A)).toEqual([
        { registry: 'r', repository: 'a' },
        { registry: 'r', repository: 'b' },
      ]);
      for await (const row of index.blobs('lru')) await index.deleteBlob(row.digest);
      expect(await index.totals()).toEqual({ bytes: 0, count: 0 });
      expect(await index.linksOf(A)).toEqual([]);
      expect(await index.isLinked('r', 'a', A)).toBe(false);
    });

    it('refuses a link to a digest it does not hold', async () => {
      await expect(index.link('r', 'a', C)).rejects.toThrow();
    });

    it('stores and replaces tags', async () => {
      expect(await index.tag('r', 'a', 'latest')).toBeUndefined();
      await index.putTag('r', 'a', 'latest', { digest: A, media_type: 'm', validated_at: 1 });
      await index.putTag('r', 'a', 'latest', { digest: B, media_type: 'm', validated_at: 2 });
      await index.putTag('r', 'a', 'v1', { digest: A, media_type: 'm', validated_at: 3 });
      expect(await index.tag('r', 'a', 'latest')).toEqual({ digest: B, media_type: 'm', validated_at: 2 });
      expect(await index.tagCount()).toBe(2);
    });

    it('keeps when a tag was imported, until a tag learnt from upstream replaces it', async () => {
      await index.putTag('r', 'a', 'v2', { digest: A, media_type: 'm', validated_at: 1, imported_at: 1 });
      expect(await index.tag('r', 'a', 'v2')).toEqual({ digest: A, media_type: 'm', validated_at: 1, imported_at: 1 });
      await index.putTag('r', 'a', 'v2', { digest: B, media_type: 'm', validated_at: 2 });
      expect(await index.tag('r', 'a', 'v2')).toEqual({ digest: B, media_type: 'm', validated_at: 2 });
    });
  });
}
