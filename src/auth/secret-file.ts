import { WatchedFile } from './watched-file.js';

/**
 * Reads a secret from a file and re-reads it only when the file changes (a rotated Kubernetes
 * Secret or projected token). Trailing newlines are trimmed; a missing file throws ENOENT.
 */
export class SecretFile {
  private readonly file: WatchedFile<string>;

  constructor(readonly path: string) {
    this.file = new WatchedFile(path, (content) => content.toString('utf8').replace(/[\r\n]+$/, ''));
  }

  async read(): Promise<string> {
    const value = await this.file.read();
    if (value === undefined) throw Object.assign(new Error(`${this.path} does not exist`), { code: 'ENOENT' });
    return value;
  }
}
