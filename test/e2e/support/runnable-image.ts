import { readFile } from 'node:fs/promises';
import { type BuiltImage, writeOciImage } from '../../../support/oci-layout.js';
import { buildTar } from '../../../support/tar.js';

/** The static executable the runnable images carry (Debian package busybox-static). */
export const BUSYBOX_PATH = '/bin/busybox';

/** Where in the image the message file lives, and the command that prints it. */
const MESSAGE_PATH = 'etc/pullgate-e2e.txt';

/** A runnable image: what `run` prints with no command given. */
export interface RunnableImage extends BuiltImage {
  /** The image's default command's output (the message file), newline included. */
  message: string;
}

const PT_INTERP = 3;

/** True when the ELF file has no program interpreter (PT_INTERP), i.e. it runs in an image without a libc. */
export function isStaticElf(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) return false;
  if (elf[4] !== 2 || elf[5] !== 1) return false; // only 64-bit little-endian is checked here
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > elf.length) return false;
    if (elf.readUInt32LE(at) === PT_INTERP) return false;
  }
  return true;
}

/** Reads the static busybox, failing loudly (with the fix) when it is missing or dynamically linked. */
export async function readStaticBusybox(): Promise<Buffer> {
  let elf: Buffer;
  try {
    elf = await readFile(BUSYBOX_PATH);
  } catch (err) {
    throw new Error(
      `e2e: ${BUSYBOX_PATH} is missing (${String(err)}): run \`bash scripts/install-test-deps.sh\` (Debian package busybox-static)`,
    );
  }
  if (!isStaticElf(elf)) {
    throw new Error(
      `e2e: ${BUSYBOX_PATH} is not a static 64-bit little-endian executable (is the dynamic \`busybox\` package installed ` +
        'instead of busybox-static?): the test images carry no libc',
    );
  }
  return elf;
}

/**
 * Builds a two-layer image that a container runtime can execute — `/bin/busybox` (static) in the first layer, a
 * message file in the second — whose default command prints the message; as an OCI image layout in `dir`.
 */
export async function buildRunnableImage(dir: string, tag: string, seed: string, busybox: Buffer): Promise<RunnableImage> {
  const message = `hello from ${seed}:${tag}\n`;
  const tars = [
    buildTar([{ path: 'bin' }, { path: 'bin/busybox', data: busybox, mode: 0o755 }]),
    buildTar([{ path: 'etc' }, { path: MESSAGE_PATH, data: Buffer.from(message) }]),
  ];
  const image = await writeOciImage(dir, tag, tars, {
    Cmd: [BUSYBOX_PATH, 'cat', `/${MESSAGE_PATH}`],
    Env: ['PATH=/bin'],
    Labels: { 'e2e.seed': seed },
  });
  return { ...image, message };
}
