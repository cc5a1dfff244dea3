import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readHaveList, writeDigests } from '../../src/bundle/have-list.js';
import { SqliteContentIndex } from '../../src/storage/sqlite-index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

describe('cache digests and --have lists', () => {
  it('prints every blob and manifest digest once, in digest order, and reads the list back', async () => {
    const index = SqliteContentIndex.open(':memory:');
    await index.addBlob({ digest: B, size: 10, kind: 'manifest', media_type: 'application/vnd.oci.image.manifest.v1+json', created_at: 1 });
    await index.addBlob({ digest: A, size: 20, kind: 'blob', media_type: null, created_at: 2 });
    let text = '';
    const count = await writeDigests(index, (chunk) => {
      text += chunk;
      return Promise.resolve();
    });
    expect(count).toBe(2);
    expect(text).toBe(`${A}\n${B}\n`);
    const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-have-'));
    dirs.push(dir);
    const file = path.join(dir, 'have.txt');
    writeFileSync(file, `# far side\n${text}\r\n\n`);
    expect([...(await readHaveList(file))]).toEqual([A, B]);
  });

  it('refuses a line that is not a digest, naming the line, rather than sending everything', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-have-'));
    dirs.push(dir);
    const file = path.join(dir, 'have.txt');
    writeFileSync(file, `${A}\nDIGEST\tKIND\tSIZE\n`);
    await expect(readHaveList(file)).rejects.toThrow(/line 2 is not a digest/);
  });
});
