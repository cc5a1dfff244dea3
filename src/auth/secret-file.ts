import { readFile, stat } from 'node:fs/promises';

/**
 * Reads a secret from a file and re-reads it only when the file changes (mtime, size or inode,
 * which also catches the `..data` symlink swap of a Kubernetes Secret mount). Trailing newlines
 * are trimmed.
 */
export class SecretFile {
  private cached: { stamp: string; value: string } | undefined;

  constructor(readonly path: string) {}

  async read(): Promise<string> {
    const info = await stat(this.path);
    const stamp = `${info.ino}:${info.size}:${info.mtimeMs}`;
    if (this.cached?.stamp === stamp) return this.cached.value;
    const value = (await readFile(this.path, 'utf8')).replace(/[\r\n]+$/, '');
    this.cached = { stamp, value };
    return value;
  }
}
