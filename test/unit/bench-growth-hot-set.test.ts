import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { hotSet, hotTagScript } from '../../bench/measures/growth.js';
import { generateSyntheticIndex, syntheticShape } from '../../bench/lib/synthetic-index.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()?.();
});

describe('bench growth hot set', () => {
  it('is the same 2,000 tags, 20 repositories and 200 manifests at 10k, 100k and 1M rows', () => {
    for (const rows of [10_000, 100_000, 1_000_000]) {
      expect(hotSet(syntheticShape(rows)), `${rows} rows`).toEqual({ repositories: 20, tags: 2_000, manifests: 200 });
    }
  });

  it('names, in its wrk script, tags r + R·k that the generated index holds, over the manifests hotSet counts', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'pullgate-hot-set-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const index = generateSyntheticIndex(root, { rows: 20_000, registry: 'growth.bench.invalid', now: 1_767_225_600_000 });
    const hot = hotSet(index);
    // The script draws r in [0, hotRepos) and k in [0, perRepo): the tag r + R·k of repository r.
    const script = hotTagScript(index);
    expect(script).toContain(`local hotRepos, perRepo, repos = ${hot.repositories}, ${hot.tags / hot.repositories}, ${index.repositories}`);
    expect(script).toContain('local t = math.random(0, hotRepos - 1) + repos * math.random(0, perRepo - 1)');
    const db = new Database(path.join(root, 'index.db'), { readonly: true });
    cleanups.push(() => db.close());
    const get = db.prepare<[string, string], { digest: string }>('SELECT digest FROM tags WHERE repository = ? AND tag = ?');
    const manifests = new Set<string>();
    for (let r = 0; r < hot.repositories; r += 1) {
      for (let k = 0; k < hot.tags / hot.repositories; k += 1) {
        const t = r + index.repositories * k;
        const row = get.get(`growth/r${t % index.repositories}`, `t${t}`);
        expect(row, `tag t${t}`).toBeDefined();
        manifests.add(row?.digest ?? '');
      }
    }
    expect(manifests.size).toBe(hot.manifests);
  });
});
