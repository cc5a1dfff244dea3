import { readFile, stat } from 'node:fs/promises';
import { EMPTY_AUTH_FILE, parseAuthFile, type AuthFile } from './parse.js';

/**
 * One credentials file on disk, parsed again only when it changes (inode, size or mtime — which
 * also catches the `..data` symlink swap of a Kubernetes Secret mount). A missing file reads as
 * empty; an unreadable or malformed one throws an error naming the path.
 */
export class WatchedAuthFile {
  private cached: { stamp: string; file: AuthFile } | undefined;

  constructor(readonly path: string) {}

  /** The parsed file, or undefined when it does not exist. */
  async read(): Promise<AuthFile | undefined> {
    let stamp: string;
    try {
      const info = await stat(this.path);
      if (info.isDirectory()) throw new Error(`${this.path} is a directory, not a credentials file`);
      stamp = `${info.ino}:${info.size}:${info.mtimeMs}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
        this.cached = undefined;
        return undefined;
      }
      throw err;
    }
    if (this.cached?.stamp === stamp) return this.cached.file;
    let content: string;
    try {
      content = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`cannot read ${this.path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const file = content.trim() === '' ? EMPTY_AUTH_FILE : parseAuthFile(content, this.path);
    this.cached = { stamp, file };
    return file;
  }
}
