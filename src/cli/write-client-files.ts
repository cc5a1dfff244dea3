import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { ClientFile } from './client-config.js';
import { removeFromHostsToml } from './hosts-toml.js';

/**
 * Replaces `target` with `content` atomically: a temp file in the same directory is written,
 * flushed, given the old file's mode, then renamed over the target, so a reader (or a crash)
 * sees the old file or the new one, never half of either.
 */
export function writeAtomic(target: string, content: string): void {
  const dir = path.dirname(target);
  const temp = path.join(dir, `.${path.basename(target)}.pullgate-${randomBytes(6).toString('hex')}.tmp`);
  let mode = 0o644;
  try {
    mode = statSync(target).mode & 0o7777;
  } catch {
    // A new file: rw-r--r--, what every client expects of its config.
  }
  const fd = openSync(temp, 'wx', mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(temp);
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(temp, target);
  } catch (err) {
    unlinkSync(temp);
    throw err;
  }
}

/** Where a file lands under --out: a drop-in goes straight into --out when --out already names its directory. */
export function targetPath(out: string, file: ClientFile): string {
  const dir = file.dropInDir;
  if (dir === undefined || path.basename(path.resolve(out)) === dir) return path.join(out, file.path);
  return path.join(out, dir, file.path);
}

function readIfExists(target: string): string | undefined {
  try {
    return readFileSync(target, 'utf8');
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return undefined;
    throw err;
  }
}

interface Plan {
  target: string;
  content: string;
  verb: 'created' | 'wrote' | 'updated' | 'unchanged';
  note?: string;
}

function plan(out: string, file: ClientFile): Plan {
  const target = targetPath(out, file);
  if (file.mergeInto === undefined) return { target, content: file.content, verb: 'wrote' };
  const existing = readIfExists(target);
  try {
    const merged = file.mergeInto(existing);
    if (existing === undefined) return { target, content: merged.content, verb: 'created', note: merged.note };
    return { target, content: merged.content, verb: merged.changed ? 'updated' : 'unchanged', note: merged.note };
  } catch (err) {
    throw new Error(`${target}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Writes the files under `out`, each atomically; a file with `mergeInto` is merged into the one on
 * disk, which is left untouched when it already says everything. Every merge is checked before
 * anything is written. Returns one line per file saying what happened.
 */
export function writeClientFiles(out: string, files: readonly ClientFile[]): string[] {
  return files
    .map((file) => plan(out, file))
    .map(({ target, content, verb, note }) => {
      if (verb !== 'unchanged') {
        mkdirSync(path.dirname(target), { recursive: true });
        writeAtomic(target, content);
      }
      return note === undefined ? `${verb} ${target}` : `${verb} ${target}: ${note}`;
    });
}

/**
 * Takes pullgate's host tables out of every `<registry>/hosts.toml` under `out` (containerd's
 * certs.d), whatever mirror address they name: a file left with other hosts is rewritten atomically,
 * one left with nothing but `server` is deleted (and its directory, when empty). Returns one line per
 * file it changed.
 */
export function removeContainerdHosts(out: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(out).sort();
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return [];
    throw err;
  }
  const lines: string[] = [];
  for (const entry of entries) {
    const target = path.join(out, entry, 'hosts.toml');
    const existing = readIfExists(target);
    if (existing === undefined) continue;
    const { content, removed } = removeFromHostsToml(existing);
    if (removed.length === 0) continue;
    if (content === undefined) {
      unlinkSync(target);
      if (readdirSync(path.dirname(target)).length === 0) rmdirSync(path.dirname(target));
      lines.push(`removed ${target}: it held only pullgate's host ${removed.join(', ')}`);
    } else {
      writeAtomic(target, content);
      lines.push(`updated ${target}: removed pullgate's host ${removed.join(', ')}, kept the others`);
    }
  }
  return lines;
}
