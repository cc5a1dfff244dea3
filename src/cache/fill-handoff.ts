import { randomBytes } from 'node:crypto';
import { linkSync } from 'node:fs';
import path from 'node:path';
import type { BlobFill } from './blob-fill.js';

const FOLLOWER_SUFFIX = '.follower-';

/**
 * True when `file` has the form of a link made by linkForFollower (an absolute path in a `tmp/` directory,
 * ending in `.follower-<12 hex>`): a follower removes only such a name, whatever a peer tells it.
 */
export function isFollowerLink(file: string): boolean {
  return path.isAbsolute(file) && path.basename(path.dirname(file)) === 'tmp' && /\.follower-[0-9a-f]{12}$/.test(file) && path.normalize(file) === file;
}

/**
 * A new name (a hard link, next to it in `tmp/`) for the temp file of a running cached fill, for one
 * follower on another worker of this host to open and then remove: the owner may rename or discard its
 * own name at any time once the blob is verified, but the follower's name stays until it has opened the
 * file (a follower that dies first leaves it to the start-up sweep of `tmp/`). Undefined when the fill
 * has no temp file to share: not cached, finished, or a file system without hard links.
 */
export function linkForFollower(fill: BlobFill): string | undefined {
  const temp = fill.tempPath;
  if (temp === undefined || !fill.caching || fill.state === 'failed') return undefined;
  const name = `${temp}${FOLLOWER_SUFFIX}${randomBytes(6).toString('hex')}`;
  try {
    linkSync(temp, name);
    return name;
  } catch {
    return undefined;
  }
}
