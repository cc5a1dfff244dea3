import { once } from 'node:events';
import type { Writable } from 'node:stream';

const BLOCK = 512;
/** The largest size a ustar header's 11 octal digits hold; larger files get a PAX `size` record. */
const USTAR_MAX_SIZE = 8 ** 11 - 1;
/** Every entry's modification time: a bundle of the same content is the same bytes. */
const MTIME = 0;

function field(block: Buffer, offset: number, length: number, value: string): void {
  block.write(value, offset, Math.min(length, Buffer.byteLength(value)), 'utf8');
}

function octal(value: number, length: number): string {
  return `${value.toString(8).padStart(length - 1, '0')}\0`;
}

/** One PAX record: `<length> <key>=<value>\n`, the length counting itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body);
  return `${length}${body}`;
}

function header(name: string, size: number, type: '0' | '5' | 'x'): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name longer than 100 bytes: ${name}`);
  const block = Buffer.alloc(BLOCK);
  field(block, 0, 100, name);
  field(block, 100, 8, octal(type === '5' ? 0o755 : 0o644, 8));
  field(block, 108, 8, octal(0, 8));
  field(block, 116, 8, octal(0, 8));
  field(block, 124, 12, octal(size > USTAR_MAX_SIZE ? 0 : size, 12));
  field(block, 136, 12, octal(MTIME, 12));
  field(block, 148, 8, '        ');
  field(block, 156, 1, type);
  field(block, 257, 6, 'ustar\0');
  field(block, 263, 2, '00');
  let sum = 0;
  for (const byte of block) sum += byte;
  field(block, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return block;
}

/**
 * Writes a tar archive (ustar, with a PAX `size` record for a file of 8 GiB or more) to a stream as its
 * entries come, waiting for the stream to drain: a file's bytes pass through, never held whole.
 */
export class TarWriter {
  /** Bytes written to the stream so far. */
  written = 0;

  constructor(private readonly out: Writable) {}

  private async push(chunk: Buffer): Promise<void> {
    this.written += chunk.length;
    if (!this.out.write(chunk)) await once(this.out, 'drain');
  }

  async directory(name: string): Promise<void> {
    await this.push(header(name.endsWith('/') ? name : `${name}/`, 0, '5'));
  }

  async bytes(name: string, data: Buffer): Promise<void> {
    await this.file(name, data.length, [data]);
  }

  /**
   * One regular file of `size` bytes from `body`; throws when the body holds more or fewer bytes (the archive
   * is then unusable: the caller discards it).
   */
  async file(name: string, size: number, body: AsyncIterable<Buffer> | Iterable<Buffer>, onChunk?: (chunk: Buffer) => void): Promise<void> {
    if (size > USTAR_MAX_SIZE) {
      const pax = Buffer.from(paxRecord('size', String(size)));
      await this.push(header(`PaxHeaders/${name}`.slice(0, 100), pax.length, 'x'));
      await this.push(pax);
      await this.push(Buffer.alloc((BLOCK - (pax.length % BLOCK)) % BLOCK));
    }
    await this.push(header(name, size, '0'));
    let seen = 0;
    for await (const chunk of body) {
      seen += chunk.length;
      if (seen > size) throw new Error(`${name}: more than the ${size} bytes its descriptor names`);
      onChunk?.(chunk);
      await this.push(chunk);
    }
    if (seen !== size) throw new Error(`${name}: ${seen} bytes, not the ${size} its descriptor names`);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad > 0) await this.push(Buffer.alloc(pad));
  }

  /** Writes the end-of-archive blocks (the stream stays open: the caller ends it). */
  async finish(): Promise<void> {
    await this.push(Buffer.alloc(2 * BLOCK));
  }
}
