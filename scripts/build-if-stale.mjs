// `npm start`'s prestart: builds dist/ with tsc only when an input (src/, the tsconfigs, package.json, the
// lockfile) changed since the last successful build, which dist/.build-stamp records (tsc takes ~10 s on
// 2 cores; a start with nothing changed should not). Usage: node scripts/build-if-stale.mjs [--check] [ROOT]
// --check only says whether a build is due (exit 1 when it is, 0 when dist/ is current) and builds nothing.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, statSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const INPUTS = ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json'];
const STAMP = path.join('dist', '.build-stamp');

/** The newest modification time (ms) under a directory, and the file that has it. */
function newestUnder(dir) {
  let newest = { file: undefined, mtimeMs: 0 };
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    const found = entry.isDirectory() ? newestUnder(file) : { file, mtimeMs: statSync(file).mtimeMs };
    if (found.mtimeMs > newest.mtimeMs) newest = found;
  }
  return newest;
}

/** Why dist/ under `root` must be built again, or undefined when it is current. */
export function staleReason(root) {
  const stamp = path.join(root, STAMP);
  if (!existsSync(path.join(root, 'dist', 'cli.js')) || !existsSync(stamp)) return 'no complete build in dist/';
  const built = statSync(stamp).mtimeMs;
  const candidates = [newestUnder(path.join(root, 'src'))];
  for (const name of INPUTS) {
    const file = path.join(root, name);
    if (existsSync(file)) candidates.push({ file, mtimeMs: statSync(file).mtimeMs });
  }
  const changed = candidates.find((c) => c.file !== undefined && c.mtimeMs > built);
  return changed === undefined ? undefined : `${path.relative(root, changed.file)} changed since the last build`;
}

function main() {
  const args = process.argv.slice(2);
  const check = args.includes('--check');
  const root = path.resolve(args.find((arg) => arg !== '--check') ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'));
  const reason = staleReason(root);
  if (check) {
    console.log(reason === undefined ? 'dist/ is current' : `build due: ${reason}`);
    process.exit(reason === undefined ? 0 : 1);
  }
  if (reason === undefined) return;
  console.error(`pullgate: building dist/ (${reason})`);
  // The stamp gets the time the build started: a file saved during the build makes the next start build again.
  const started = new Date();
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
  closeSync(openSync(path.join(root, STAMP), 'w'));
  utimesSync(path.join(root, STAMP), started, started);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
