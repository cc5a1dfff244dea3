const BLOCK = 512;

/** One entry of a tar stream; its body must be read to the end (or skipped) before the next entry. */
export interface TarEntry {
  /** The path as stored, without a leading `./`. */
  name: string;
  type: 'file' | 'directory' | 'other';
  size: number;
  body: AsyncIterable<Buffer>;
}

/** Reads exact byte counts out of a stream of chunks, keeping only the current chunk. */
class ByteSource {
  private chunk: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(private readonly chunks: AsyncIterator<Buffer>) {}

  private async fill(): Promise<boolean> {
    while (this.chunk.length === 0 && !this.done) {
      const next = await this.chunks.next();
      if (next.done === true) this.done = true;
      else this.chunk = next.value;
    }
    return this.chunk.length > 0;
  }

  /** Exactly `n` bytes (a header, a PAX record), or fewer when the stream ends first. */
  async read(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n && (await this.fill())) {
      const take = this.chunk.subarray(0, n - have);
      this.chunk = this.chunk.subarray(take.length);
      parts.push(take);
      have += take.length;
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  /** The next `n` bytes as they arrive; throws when the stream ends first. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) throw new Error('the tar archive is truncated');
      const take = this.chunk.subarray(0, left);
      this.chunk = this.chunk.subarray(take.length);
      left -= take.length;
      yield take;
    }
  }

  async skip(n: number): Promise<void> {
    const chunks = this.stream(n);
    while ((await chunks.next()).done !== true);
  }
}

function text(block: Buffer, start: number, length: number): string {
  const part = block.subarray(start, start + length);
  const end = part.indexOf(0);
  return part.subarray(0, end === -1 ? part.length : end).toString('utf8');
}

function number(block: Buffer, start: number, length: number): number {
  const first = block[start] ?? 0;
  if ((first & 0x80) !== 0) {
    // GNU base-256: big-endian, the high bit of the first byte set.
    let value = first & 0x7f;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + (block[i] ?? 0);
    return value;
  }
  const value = text(block, start, length).trim();
  if (!/^[0-7]*$/.test(value)) throw new Error('a tar header has a malformed number (not a tar archive?)');
  return value === '' ? 0 : parseInt(value, 8);
}

function checksumOk(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
  return sum === number(block, 148, 8);
}

/** The records of a PAX extended header. */
function paxRecords(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let rest = data;
  while (rest.length > 0) {
    const space = rest.indexOf(0x20);
    const length = Number(rest.subarray(0, space).toString('utf8'));
    if (space === -1 || !Number.isInteger(length) || length <= space || length > rest.length) break;
    const record = rest.subarray(space + 1, length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals > 0) records.set(record.slice(0, equals), record.slice(equals + 1));
    rest = rest.subarray(length);
  }
  return records;
}

/**
 * The entries of a tar stream (ustar, GNU long names and base-256 sizes, PAX `path` and `size`) as they
 * arrive: memory holds one chunk, never a file. Throws on a truncated archive or a damaged header.
 */
export async function* readTar(input: AsyncIterable<Buffer>): AsyncGenerator<TarEntry> {
  const source = new ByteSource(input[Symbol.asyncIterator]());
  let longName: string | undefined;
  let paxSize: number | undefined;
  for (;;) {
    const block = await source.read(BLOCK);
    if (block.length === 0) return;
    if (block.length < BLOCK) throw new Error('the tar archive is truncated');
    if (block.every((byte) => byte === 0)) return;
    if (!checksumOk(block)) throw new Error('a tar header has a bad checksum (not a tar archive, or damaged)');
    const size = paxSize ?? number(block, 124, 12);
    const flag = String.fromCharCode(block[156] ?? 0);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (flag === 'L' || flag === 'x' || flag === 'g') {
      const data = await source.read(padded);
      if (data.length < padded) throw new Error('the tar archive is truncated');
      const content = data.subarray(0, size);
      if (flag === 'L') longName = text(content, 0, content.length);
      else if (flag === 'x') {
        const records = paxRecords(content);
        longName = records.get('path') ?? longName;
        const recordSize = records.get('size');
        paxSize = recordSize === undefined ? undefined : Number(recordSize);
        continue;
      }
      paxSize = undefined;
      continue;
    }
    const prefix = text(block, 257, 6).startsWith('ustar') ? text(block, 345, 155) : '';
    const name = (longName ?? (prefix ? `${prefix}/${text(block, 0, 100)}` : text(block, 0, 100))).replace(/^(\.\/)+/, '');
    longName = undefined;
    paxSize = undefined;
    const type = flag === '0' || flag === '\0' || flag === '7' ? 'file' : flag === '5' ? 'directory' : 'other';
    // What the caller left unread of the body (all of it, or the rest after a break) is skipped.
    const left = { bytes: size };
    const body = {
      async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
        for await (const chunk of source.stream(left.bytes)) {
          left.bytes -= chunk.length;
          yield chunk;
        }
      },
    };
    yield { name, type, size, body };
    await source.skip(left.bytes);
    await source.skip(padded - size);
  }
}
