import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const SCRIPT = path.join(import.meta.dirname, '..', '..', 'scripts', 'check-imports.mjs');

/** A throw-away source tree: path (relative) → contents. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'pullgate-imports-'));
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
  return root;
}

function check(root: string): { status: number | null; stderr: string } {
  const result = spawnSync(process.execPath, [SCRIPT, root], { encoding: 'utf8' });
  return { status: result.status, stderr: result.stderr };
}

describe('the import-cycle check run by npm run lint', () => {
  const roots: string[] = [];
  afterEach(() => {
    for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
  });

  it('passes on src/ as it is', () => {
    expect(execFileSync(process.execPath, [SCRIPT], { encoding: 'utf8' })).toMatch(/no import cycle/);
  });

  it('names a cycle between two files, type-only imports included', () => {
    const root = tree({
      'a/one.ts': "import type { Two } from './two.js';\nexport type One = Two;\n",
      'a/two.ts': "import { one } from './one.js';\nexport type Two = typeof one;\n",
    });
    roots.push(root);
    const { status, stderr } = check(root);
    expect(status).toBe(1);
    expect(stderr).toContain('file cycle: a/one.ts <-> a/two.ts');
  });

  it('names a cycle between folders even when no two files import each other, counting subfolders as their top folder', () => {
    const root = tree({
      'low/base.ts': "import { top } from '../high/sub/top.js';\nexport const base = top;\n",
      'high/sub/top.ts': 'export const top = 1;\n',
      'high/user.ts': "import { base } from '../low/base.js';\nexport const user = base;\n",
    });
    roots.push(root);
    const { status, stderr } = check(root);
    expect(status).toBe(1);
    expect(stderr).toMatch(/folder cycle: high <-> low \(.*low\/base\.ts -> high\/sub\/top\.ts/);
  });

  it('accepts layers that import only downwards', () => {
    const root = tree({
      'util/a.ts': 'export const a = 1;\n',
      'core/b.ts': "import { a } from '../util/a.js';\nexport const b = a;\n",
      'cli.ts': "import { b } from './core/b.js';\nexport const c = b;\n",
    });
    roots.push(root);
    expect(check(root).status).toBe(0);
  });
});
