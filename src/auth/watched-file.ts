import type { Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';

/**
 * What identifies one version of a file: inode, size and mtime — which also catches the `..data`
 * symlink swap of a Kubernetes Secret mount and a projected token's rotation.
 */
export function fileStamp(info: Stats): string {
  return `${info.ino}:${info.size}:${info.mtimeMs}`;
}

/** True for the errors that mean "there is no such file" (ENOENT, or a path through a non-directory). */
export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * A file read and parsed again only when it changes (see fileStamp). `read` answers undefined
 * when the file does not exist; other failures (a directory, no permission, a parse error) throw.
 */
export class WatchedFile<T> {
  private cached: { stamp: string; value: T } | undefined;

  constructor(
    readonly path: string,
    private readonly parse: (content: Buffer) => T,
  ) {}

  async read(): Promise<T | undefined> {
    let info: Stats;
    try {
      info = await stat(this.path);
    } catch (err) {
      if (!isMissing(err)) throw err;
      this.cached = undefined;
      return undefined;
    }
    if (info.isDirectory()) throw new Error(`${this.path} is a directory, not a file`);
    const stamp = fileStamp(info);
    if (this.cached?.stamp === stamp) return this.cached.value;
    let content: Buffer;
    try {
      content = await readFile(this.path);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    const value = this.parse(content);
    this.cached = { stamp, value };
    return value;
  }
}
