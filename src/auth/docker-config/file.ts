import { WatchedFile } from '../watched-file.js';
import { configFromArchive, isGzip } from './archive.js';
import { EMPTY_AUTH_FILE, parseAuthFile, type AuthFile } from './parse.js';

/** Parses a credentials file's bytes: JSON, or a gzip tar holding `.docker/config.json` (Mesos). */
function parseContent(content: Buffer, where: string): AuthFile {
  const text = isGzip(content) ? configFromArchive(content, where) : content.toString('utf8');
  return text.trim() === '' ? EMPTY_AUTH_FILE : parseAuthFile(text, where);
}

/**
 * One credentials file on disk, parsed again only when it changes (inode, size or mtime — which
 * also catches the `..data` symlink swap of a Kubernetes Secret mount). A missing file reads as
 * undefined; an unreadable or malformed one throws an error naming the path. A Mesos
 * `docker.tar.gz` is read in memory.
 */
export class WatchedAuthFile {
  private readonly file: WatchedFile<AuthFile>;

  constructor(readonly path: string) {
    this.file = new WatchedFile(path, (content) => parseContent(content, path));
  }

  /** The parsed file, or undefined when it does not exist. */
  async read(): Promise<AuthFile | undefined> {
    try {
      return await this.file.read();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== undefined) throw new Error(`cannot read ${this.path}: ${code}`);
      throw err;
    }
  }
}
