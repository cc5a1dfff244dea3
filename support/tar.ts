/** One entry of a tar archive: a directory (no data) or a regular file. */
export interface TarEntry {
  path: string;
  data?: Buffer;
  /** Permission bits (default 0o755 for a directory, 0o644 for a file; 0o755 for an executable). */
  mode?: number;
}

const BLOCK = 512;

function writeString(header: Buffer, value: string, offset: number, length: number): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new Error(`tar: "${value}" does not fit in ${length} bytes`);
  bytes.copy(header, offset);
}

function writeOctal(header: Buffer, value: number, offset: number, length: number): void {
  writeString(header, value.toString(8).padStart(length - 1, '0'), offset, length - 1);
}

function headerFor(entry: TarEntry): Buffer {
  const header = Buffer.alloc(BLOCK);
  const isDir = entry.data === undefined;
  const name = isDir && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path;
  writeString(header, name, 0, 100);
  writeOctal(header, entry.mode ?? (isDir ? 0o755 : 0o644), 100, 8);
  writeOctal(header, 0, 108, 8); // uid
  writeOctal(header, 0, 116, 8); // gid
  writeOctal(header, entry.data?.length ?? 0, 124, 12);
  writeOctal(header, 1_700_000_000, 136, 12); // fixed mtime: deterministic archives
  header.fill(0x20, 148, 156); // checksum field counts as spaces
  writeString(header, isDir ? '5' : '0', 156, 1);
  writeString(header, 'ustar\u000000', 257, 8);
  writeString(header, 'root', 265, 32);
  writeString(header, 'root', 297, 32);
  let sum = 0;
  for (const byte of header) sum += byte;
  writeString(header, `${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8);
  return header;
}

/** Builds a deterministic ustar archive (fixed mtime, root owner) from the given entries. */
export function buildTar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    parts.push(headerFor(entry));
    if (entry.data !== undefined) {
      parts.push(entry.data);
      const pad = (BLOCK - (entry.data.length % BLOCK)) % BLOCK;
      if (pad > 0) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}
