import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { PassThrough, type Readable, type Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';

/** The first bytes of a zstd frame and of a gzip member. */
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

/** zlib's zstd streams (Node ≥ 22.15), looked up by name so Node 20's typings and runtime both do without them. */
type ZstdFactory = () => Transform;

function zlibZstd(kind: 'createZstdCompress' | 'createZstdDecompress'): ZstdFactory | undefined {
  const factory: unknown = (zlib as Record<string, unknown>)[kind];
  return typeof factory === 'function' ? () => (factory as () => Transform)() : undefined;
}

/**
 * A zstd stream: zlib's when this Node has it, else the `zstd` program (Debian package `zstd`) as a child
 * process. `done` settles when the program exited (at once for zlib's), rejecting with what it said on stderr.
 */
export function zstdStream(direction: 'compress' | 'decompress'): { stream: Transform | ChildProcessStream; done: Promise<void> } {
  const native = zlibZstd(direction === 'compress' ? 'createZstdCompress' : 'createZstdDecompress');
  if (native !== undefined) return { stream: native(), done: Promise.resolve() };
  const child = spawn('zstd', direction === 'compress' ? ['-q', '-c', '-3', '-T0'] : ['-q', '-d', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  return { stream: { child, stdin: child.stdin, stdout: child.stdout }, done: exited(child) };
}

/** The zstd program's ends. */
export interface ChildProcessStream {
  child: ChildProcess;
  stdin: Writable;
  stdout: Readable;
}

function exited(child: ChildProcess): Promise<void> {
  let said = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    if (said.length < 2_000) said += chunk.toString('utf8');
  });
  return new Promise<void>((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(err.code === 'ENOENT' ? 'this Node has no zstd and the zstd program is not installed (Debian: apt-get install zstd)' : `zstd: ${err.message}`)),
    );
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`zstd exited with ${code ?? 'a signal'}${said.trim() === '' ? '' : `: ${said.trim()}`}`))));
  });
}

/** A bundle being written: `stream` takes the tar; commit() renames the finished file into place, abort() removes it. */
export interface BundleOutput {
  stream: Writable;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/**
 * Opens FILE for a bundle, zstd-compressed when it ends in `.tar.zst`. The bytes go to `FILE.partial-…`
 * first, so an export that fails leaves no file that looks like a bundle.
 */
export function createBundleOutput(file: string): BundleOutput {
  const partial = `${file}.partial-${randomBytes(4).toString('hex')}`;
  const sink = createWriteStream(partial, { flags: 'wx' });
  const head = new PassThrough({ highWaterMark: 1024 * 1024 });
  let flowing: Promise<void>;
  let child: ChildProcess | undefined;
  if (file.endsWith('.zst')) {
    const zstd = zstdStream('compress');
    if ('child' in zstd.stream) {
      const { stdin, stdout } = zstd.stream;
      child = zstd.stream.child;
      flowing = Promise.all([pipeline(head, stdin), pipeline(stdout, sink), zstd.done]).then(() => undefined);
    } else {
      flowing = pipeline(head, zstd.stream, sink);
    }
  } else {
    flowing = pipeline(head, sink);
  }
  // Failures surface at commit(); until then a write that fails shows as the stream's error.
  flowing.catch((err: unknown) => head.destroy(err instanceof Error ? err : new Error(String(err))));
  return {
    stream: head,
    async commit() {
      head.end();
      await flowing;
      await rename(partial, file);
    },
    async abort() {
      head.destroy();
      child?.kill();
      await flowing.catch(() => undefined);
      await unlink(partial).catch(() => undefined);
    },
  };
}

/** What a bundle holds under its compression: the tar's bytes as they are read. */
export interface BundleInput {
  chunks: AsyncIterable<Buffer>;
  compression: 'none' | 'zstd' | 'gzip';
  /** Settles once the decompressor finished; rejects when it failed. */
  done: Promise<void>;
  close(): void;
}

/** Opens a bundle for reading: a tar, or one compressed with zstd or gzip (told by its first bytes, not its name). */
export async function openBundleInput(file: string): Promise<BundleInput> {
  const handle = await open(file, 'r');
  const start = Buffer.alloc(4);
  try {
    await handle.read(start, 0, 4, 0);
  } finally {
    await handle.close();
  }
  const raw = createReadStream(file, { highWaterMark: 1024 * 1024 });
  if (start.subarray(0, 2).equals(GZIP_MAGIC)) {
    const gunzip = raw.pipe(zlib.createGunzip());
    raw.on('error', (err) => gunzip.destroy(err));
    return { chunks: gunzip, compression: 'gzip', done: Promise.resolve(), close: () => raw.destroy() };
  }
  if (!start.equals(ZSTD_MAGIC)) return { chunks: raw, compression: 'none', done: Promise.resolve(), close: () => raw.destroy() };
  const zstd = zstdStream('decompress');
  if (!('child' in zstd.stream)) {
    const out = raw.pipe(zstd.stream);
    raw.on('error', (err) => out.destroy(err));
    return { chunks: out, compression: 'zstd', done: zstd.done, close: () => raw.destroy() };
  }
  const { child, stdin, stdout } = zstd.stream;
  const feeding = pipeline(raw, stdin).catch(() => undefined);
  return {
    chunks: stdout,
    compression: 'zstd',
    done: Promise.all([zstd.done, feeding]).then(() => undefined),
    close: () => {
      raw.destroy();
      child.kill();
    },
  };
}
