import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ContentIndex } from '../storage/content-index.js';

/** A digest as a have-list holds it: `algorithm:hex`. */
const DIGEST_LINE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/**
 * `cache digests`: every blob and manifest digest the index holds, one per line, in digest order, read a
 * page at a time (a million rows are never in memory); `write` resolves once the stream took the text.
 */
export async function writeDigests(index: ContentIndex, write: (text: string) => Promise<void>): Promise<number> {
  let pending: string[] = [];
  let count = 0;
  for await (const row of index.blobs('digest')) {
    pending.push(row.digest);
    count += 1;
    if (pending.length >= 1_000) {
      await write(`${pending.join('\n')}\n`);
      pending = [];
    }
  }
  if (pending.length > 0) await write(`${pending.join('\n')}\n`);
  return count;
}

/**
 * Reads a have-list (what `cache digests` printed on the far side): one digest per line; blank lines and
 * `#` comments are skipped; anything else fails with its line number, so a wrong file is not taken for an
 * empty list.
 */
export async function readHaveList(file: string): Promise<Set<string>> {
  const have = new Set<string>();
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY });
  let number = 0;
  for await (const raw of lines) {
    number += 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!DIGEST_LINE.test(line)) throw new Error(`--have ${file}: line ${number} is not a digest (expected sha256:<64 hex> per line, as \`pullgate cache digests\` prints)`);
    have.add(line);
  }
  return have;
}
