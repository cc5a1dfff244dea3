import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { createBundleOutput, openBundleInput } from '../../src/bundle/bundle-file.js';
import { readTar } from '../../src/bundle/tar-reader.js';
import { TarWriter } from '../../src/bundle/tar-writer.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function workdir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pullgate-bundle-file-'));
  dirs.push(dir);
  return dir;
}

/** How this Node compresses zstd: zlib's (Node ≥ 22.15) or the zstd program. */
const ZSTD_IN_ZLIB = typeof (zlib as Record<string, unknown>).createZstdCompress === 'function';
function zstdProgram(): boolean {
  try {
    execFileSync('zstd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function roundTrip(file: string): Promise<{ names: string[]; body: Buffer; compression: string }> {
  const output = createBundleOutput(file);
  const tar = new TarWriter(output.stream);
  const big = Buffer.alloc(300_000, 7);
  await tar.bytes('oci-layout', Buffer.from('{}'));
  await tar.file('blobs/sha256/big', big.length, [big.subarray(0, 1000), big.subarray(1000)]);
  await tar.finish();
  await output.commit();
  const input = await openBundleInput(file);
  const names: string[] = [];
  let body = Buffer.alloc(0);
  for await (const entry of readTar(input.chunks)) {
    names.push(entry.name);
    const chunks: Buffer[] = [];
    for await (const chunk of entry.body) chunks.push(chunk);
    if (entry.name === 'blobs/sha256/big') body = Buffer.concat(chunks);
  }
  await input.done;
  input.close();
  return { names, body, compression: input.compression };
}

describe('bundle files', () => {
  it('writes a plain tar that reads back entry by entry, with no partial file left', async () => {
    const dir = workdir();
    const { names, body, compression } = await roundTrip(path.join(dir, 'b.tar'));
    expect(names).toEqual(['oci-layout', 'blobs/sha256/big']);
    expect(body.equals(Buffer.alloc(300_000, 7))).toBe(true);
    expect(compression).toBe('none');
    expect(readdirSync(dir)).toEqual(['b.tar']);
  });

  it('compresses FILE.tar.zst with zstd and reads it back by its magic bytes', async (context) => {
    if (!ZSTD_IN_ZLIB && !zstdProgram()) {
      console.warn('bundle-file: NOT RUN: this Node has no zstd in zlib and the zstd program is missing (scripts/install-test-deps.sh installs it)');
      context.skip();
    }
    console.info(`bundle-file: zstd through ${ZSTD_IN_ZLIB ? "Node's zlib" : 'the zstd program'}`);
    const dir = workdir();
    const file = path.join(dir, 'b.tar.zst');
    const { names, body, compression } = await roundTrip(file);
    expect(readFileSync(file).subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
    expect(readFileSync(file).length).toBeLessThan(10_000);
    expect(names).toEqual(['oci-layout', 'blobs/sha256/big']);
    expect(body.length).toBe(300_000);
    expect(compression).toBe('zstd');
  });

  it('abort() removes what was written, so a failed export leaves nothing that looks like a bundle', async () => {
    const dir = workdir();
    const output = createBundleOutput(path.join(dir, 'b.tar'));
    await new TarWriter(output.stream).bytes('oci-layout', Buffer.from('{}'));
    await output.abort();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a file that is not a tar, naming why', async () => {
    const names: string[] = [];
    await expect(async () => {
      for await (const entry of readTar(Readable.from([Buffer.alloc(512, 0x41)]))) names.push(entry.name);
    }).rejects.toThrow(/bad checksum|malformed/);
    expect(names).toEqual([]);
  });
});
