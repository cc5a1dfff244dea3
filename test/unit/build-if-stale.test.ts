import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const SCRIPT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'scripts', 'build-if-stale.mjs');
const root = mkdtempSync(path.join(tmpdir(), 'pullgate-stale-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function check(): { status: number | null; out: string } {
  const result = spawnSync(process.execPath, [SCRIPT, '--check', root], { encoding: 'utf8' });
  return { status: result.status, out: result.stdout.trim() };
}

function at(file: string, seconds: number): void {
  const when = new Date(Date.UTC(2026, 0, 1, 0, 0, seconds));
  utimesSync(path.join(root, file), when, when);
}

function write(file: string, seconds: number): void {
  mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
  writeFileSync(path.join(root, file), '');
  at(file, seconds);
}

describe('prestart: build only when the sources changed', () => {
  it('builds when dist/ has no stamped build, skips when nothing is newer than the stamp, builds when a source or a tsconfig is', () => {
    write('src/cli.ts', 10);
    write('src/cache/cache.ts', 10);
    write('tsconfig.json', 10);
    write('package.json', 10);
    expect(check()).toEqual({ status: 1, out: 'build due: no complete build in dist/' });

    write('dist/cli.js', 20);
    write('dist/.build-stamp', 20);
    expect(check()).toEqual({ status: 0, out: 'dist/ is current' });

    at('src/cache/cache.ts', 30);
    expect(check()).toEqual({ status: 1, out: `build due: ${path.join('src', 'cache', 'cache.ts')} changed since the last build` });
    at('src/cache/cache.ts', 10);

    write('tsconfig.build.json', 30);
    expect(check()).toEqual({ status: 1, out: 'build due: tsconfig.build.json changed since the last build' });
  });
});
